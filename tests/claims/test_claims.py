"""The claim checker: seed derivations, wrong variants with their diagnoses, correct rewrites, safety.

The truth a claim is judged against is the Derivation, and the expected verdicts
below are written by hand from the mathematics.  One concrete pair is also
checked with central finite differences of the forward pass (NumericNetwork):
the wrong dE/dW1_12 = delta1_2 x_1 really is wrong and its fix delta1_1 x_2
(also a correct rewrite below) really is right.  The corpus spot checks
(tests/claims/test_claims_corpus.py) check more expected verdicts with finite differences.
Timings of hostile input are in benchmarks/hostile_claims.py, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from symbackprop import check, derive
from symbackprop.claims import ClaimSyntaxError
from symbackprop.claims.parse import parse_claim
from symbackprop.cli import main
from symbackprop.engine.numeric import NumericNetwork

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed_2_3_1.yaml")
CLASSIFIER = str(ROOT / "examples" / "classifier_4_5_3.yaml")
WIKI_NET = str(ROOT / "examples" / "claims" / "wikipedia_net.yaml")
CLAIMS = ROOT / "examples" / "claims"


@pytest.fixture(scope="module")
def derivations():
    return {spec: derive(spec, verify=False) for spec in (SEED, CLASSIFIER, WIKI_NET)}


def run(derivations, spec, text, notation="seed"):
    return check(spec, text, notation=notation, derivation=derivations[spec])


# ----------------------------------------------------------------------------- the seeds

def test_seed_matrix_equations_all_correct(derivations):
    verdicts = run(derivations, SEED, (CLAIMS / "seed_matrix.tex").read_text(), "seed")
    assert len(verdicts) == 15
    assert [v.verdict for v in verdicts] == ["correct"] * 15, [v.as_dict() for v in verdicts]


def test_wikipedia_derivation_all_correct(derivations):
    verdicts = run(derivations, WIKI_NET, (CLAIMS / "wikipedia.tex").read_text(), "wikipedia")
    assert len(verdicts) == 10
    # E = L(t, y) only names the loss (issue 9: skipped with the reason); the rest are checked
    assert [v.verdict for v in verdicts] == ["skipped"] + ["correct"] * 9, [v.as_dict() for v in verdicts]
    assert "loss" in verdicts[0].reason


def test_monash_rules_correct_except_the_index_typo(derivations):
    verdicts = run(derivations, SEED, (CLAIMS / "monash_aima.tex").read_text(), "aima")
    assert [v.verdict for v in verdicts] == ["correct", "correct", "correct", "incorrect"]
    typo = verdicts[3]
    assert typo.diagnosis.startswith("transposed or wrong index")
    assert typo.expected.startswith(r"w_{i,j} \leftarrow w_{i,j}")
    ce = typo.counterexample
    assert ce["left"] != ce["right"] and "W1" in ce["parameters"] and "indices" in ce


def test_wikipedia_output_line_reads_j_as_an_output_unit(derivations):
    # the seed's own line (no remark): o_j = y only for the output neuron, so j is read as one
    v = run(derivations, WIKI_NET, r"\frac{\delta E}{\delta o_j} = \frac{\delta E}{\delta y}", "wikipedia")[0]
    assert v.verdict == "correct" and "output" in v.note
    # a claim that is wrong for the output unit too stays wrong
    v = run(derivations, WIKI_NET, r"\frac{\delta E}{\delta o_j} = 2\frac{\delta E}{\delta y}", "wikipedia")[0]
    assert v.verdict == "incorrect"


# ----------------------------------------------------------------------------- wrong variants

SIGN, ACT, AT_A, INDEX, LAYER, SUM, FACTOR, BIAS, ASCENT = (
    "sign flipped", "missing activation-derivative factor", "applied to a instead of z",
    "transposed or wrong index", "wrong layer", "sum missing or over the wrong index",
    "off by a constant factor", "missing bias term", "an ascent")
DELTA2 = "\\delta^{(2)}_k = (a^{(2)}_k - y_k)\\sigma'(z^{(2)}_k)\n"
DELTA_AIMA = "\\Delta_k \\leftarrow (y_k - a_k)g'(in_k)\n"

WRONG = [
    # (spec, notation, claim text (last line is judged), diagnosis)
    (SEED, "seed", r"\frac{\partial E}{\partial W^{(2)}_{11}} = -\delta^{(2)}_1 a^{(1)}_1", SIGN),
    (SEED, "seed", DELTA2 + r"\delta^{(2)}_1 = (y_1 - a^{(2)}_1)\sigma'(z^{(2)}_1)", SIGN),
    (SEED, "seed", r"\frac{\partial L}{\partial b^{(1)}} = -\delta^{(1)}", SIGN),
    (WIKI_NET, "wikipedia", r"\frac{\partial E}{\partial w_{ij}} = -\delta_j o_i", SIGN),
    (SEED, "aima", DELTA_AIMA + r"\Delta_j \leftarrow -g'(in_j)\sum_k w_{j,k}\Delta_k", SIGN),
    (CLASSIFIER, "seed", r"\frac{\partial E}{\partial z^{(2)}_k} = y_k - a^{(2)}_k", SIGN),
    (SEED, "seed", r"\delta^{(2)}_k = a^{(2)}_k - y_k", ACT),
    (SEED, "seed", r"\frac{\partial E}{\partial W^{(2)}_{11}} = (a^{(2)}_1 - y_1) a^{(1)}_1", ACT),
    (SEED, "seed", r"\delta^{(1)}_j = \sum_k W^{(2)}_{kj} \delta^{(2)}_k", ACT),
    (SEED, "seed", r"\delta^{(1)} = (W^{(2)})^T \delta^{(2)}", ACT),
    (SEED, "aima", r"\Delta_k \leftarrow y_k - a_k", ACT),
    (SEED, "aima", DELTA_AIMA + r"\Delta_j \leftarrow \sum_k w_{j,k}\Delta_k", ACT),
    (CLASSIFIER, "seed", r"\delta^{(1)}_j = \sum_k W^{(2)}_{kj} \delta^{(2)}_k", ACT),
    (SEED, "seed", r"\delta^{(2)}_k = (a^{(2)}_k - y_k)\sigma'(a^{(2)}_k)", AT_A),
    (SEED, "seed", r"\delta^{(1)} = (W^{(2)})^T \delta^{(2)} \odot \sigma'(a^{(1)})", AT_A),
    (SEED, "aima", r"\Delta_k \leftarrow (y_k - a_k)g'(a_k)", AT_A),
    (SEED, "seed", r"\delta^{(1)}_j = \sigma'(a^{(1)}_j) \sum_k W^{(2)}_{kj}\delta^{(2)}_k", AT_A),
    (CLASSIFIER, "seed", r"\delta^{(1)}_j = \sigma'(a^{(1)}_j) \sum_k W^{(2)}_{kj}\delta^{(2)}_k", AT_A),
    (SEED, "seed", r"\frac{\partial E}{\partial W^{(1)}_{12}} = \delta^{(1)}_2 x_1", INDEX),
    (SEED, "seed", r"\frac{\partial L}{\partial W^{(2)}} = a^{(1)} \delta^{(2)T}", INDEX),
    (WIKI_NET, "wikipedia", r"\frac{\partial E}{\partial w_{ij}} = \delta_i o_j", INDEX),
    (SEED, "aima", r"w_{j,k} \leftarrow w_{j,k} + \alpha \times a_k \times \Delta_j", INDEX),
    (SEED, "seed", r"\frac{\partial L}{\partial W^{(1)}} = x \delta^{(1)T}", INDEX),
    (CLASSIFIER, "seed", r"\frac{\partial E}{\partial W^{(2)}_{31}} = \delta^{(2)}_1 a^{(1)}_3", INDEX),
    (CLASSIFIER, "seed", r"\delta^{(1)} = W^{(2)} \delta^{(2)} \odot \sigma'(z^{(1)})", INDEX),
    (SEED, "seed", r"\frac{\partial E}{\partial W^{(2)}_{11}} = \delta^{(2)}_1 a^{(2)}_1", LAYER),
    (SEED, "seed", r"\frac{\partial E}{\partial W^{(1)}_{11}} = \delta^{(2)}_1 x_1", LAYER),
    (SEED, "seed", r"\delta^{(1)} = (W^{(1)})^T \delta^{(2)} \odot \sigma'(z^{(1)})", LAYER),
    (SEED, "seed", r"\frac{\partial L}{\partial W^{(2)}} = \delta^{(2)} a^{(2)T}", LAYER),
    (CLASSIFIER, "seed", r"\frac{\partial E}{\partial b^{(1)}_2} = \delta^{(2)}_2", LAYER),
    (CLASSIFIER, "seed", r"\delta^{(1)}_j = \sigma'(z^{(1)}_j) W^{(2)}_{kj}\delta^{(2)}_k", SUM),
    (SEED, "aima", DELTA_AIMA + r"\Delta_j \leftarrow g'(in_j) w_{j,k}\Delta_k", SUM),
    (SEED, "seed", r"z^{(1)}_j = W^{(1)}_{jk} x_k + b^{(1)}_j", SUM),
    (CLASSIFIER, "seed", r"\delta^{(1)}_j = \sigma'(z^{(1)}_j) \sum_j W^{(2)}_{kj}\delta^{(2)}_k", SUM),
    (CLASSIFIER, "seed", r"\frac{\partial E}{\partial a^{(1)}_j} = \sum_j W^{(2)}_{kj}\delta^{(2)}_k", SUM),
    (SEED, "seed", r"\delta^{(2)}_k = 2(a^{(2)}_k - y_k)\sigma'(z^{(2)}_k)", FACTOR),
    (SEED, "seed", r"\frac{\partial E}{\partial W^{(2)}_{11}} = \frac12 \delta^{(2)}_1 a^{(1)}_1", FACTOR),
    (WIKI_NET, "wikipedia", r"\frac{\delta E}{\delta y} = 2(y - t)", FACTOR),
    (SEED, "seed", r"\frac{\partial L}{\partial b^{(2)}} = 2\delta^{(2)}", FACTOR),
    (SEED, "seed", r"z^{(1)} = W^{(1)} x", BIAS),
    (SEED, "seed", r"z^{(2)}_j = \sum_k W^{(2)}_{jk} a^{(1)}_k", BIAS),
    (SEED, "seed", r"a^{(1)} = \sigma(W^{(1)} x)", BIAS),
    (CLASSIFIER, "seed", r"z^{(1)}_j = \sum_{k=1}^{4} W^{(1)}_{jk} x_k", BIAS),
    (SEED, "seed", r"W^{(2)} = W^{(2)} + \alpha \frac{\partial L}{\partial W^{(2)}}", ASCENT),
    (SEED, "aima", r"w_{j,k} \leftarrow w_{j,k} - \alpha \times a_j \times \Delta_k", ASCENT),
    (SEED, "seed", r"b^{(1)} = b^{(1)} + \alpha \delta^{(1)}", ASCENT),
    (CLASSIFIER, "seed", r"W^{(1)}_{12} \leftarrow W^{(1)}_{12} + \alpha \delta^{(1)}_1 x_2", ASCENT),
    (SEED, "seed", "dE/dW2[1,1] = delta2[1]*a1[2]", INDEX),
]


def test_wrong_variants_cover_every_diagnosis_the_checker_has():
    """Each diagnosis label of symbackprop.claims.diagnose is expected by at least one wrong variant."""
    from symbackprop.claims import diagnose

    labels = {diagnose.SIGN, diagnose.ACT_FACTOR, diagnose.PRIME_AT_A, diagnose.INDEX, diagnose.LAYER,
              diagnose.SUM, diagnose.FACTOR, diagnose.BIAS, diagnose.ASCENT}
    assert all(any(kind in label for *_, kind in WRONG) for label in labels)


@pytest.mark.parametrize("spec, notation, text, diagnosis", WRONG)
def test_wrong_variant_is_flagged_with_its_diagnosis(derivations, spec, notation, text, diagnosis):
    v = run(derivations, spec, text, notation)[-1]
    assert v.verdict == "incorrect", v.as_dict()
    assert diagnosis in v.diagnosis, v.as_dict()
    assert v.expected, "the fix is suggested in the same notation"
    fixed = run(derivations, spec, "\n".join(text.split("\n")[:-1] + [v.expected]), notation)[-1]
    assert fixed.verdict == "correct", (v.expected, fixed.as_dict())


def _fd_gradient(spec, name, index, seed=3):
    """dE/d(param) by central finite differences of the forward pass (independent of the checker)."""
    d = derive(spec, verify=False)
    net = NumericNetwork(d.network)
    params, x, t = net.random_point(np.random.default_rng(seed))
    h = 1e-6
    up = {k: v.copy() for k, v in params.items()}
    down = {k: v.copy() for k, v in params.items()}
    up[name][index] += h
    down[name][index] -= h
    return params, x, t, (net.loss(up, x, t) - net.loss(down, x, t)) / (2 * h)


def test_wrong_gradient_claim_really_is_wrong_by_finite_differences():
    # dE/dW1_12 claimed as delta1_2 * x_1 (indices swapped): compare with delta1_1 * x_2 from FD of b1
    _, x, _, g = _fd_gradient(SEED, "W1", (0, 1))
    _, _, _, delta1_1 = _fd_gradient(SEED, "b1", (0,))
    _, _, _, delta1_2 = _fd_gradient(SEED, "b1", (1,))
    assert g == pytest.approx(delta1_1 * x[1], rel=1e-5)
    assert abs(g - delta1_2 * x[0]) > 1e-4


def test_counterexample_shows_both_sides_and_parameters(derivations):
    v = run(derivations, SEED, r"\frac{\partial E}{\partial W^{(2)}_{11}} = -\delta^{(2)}_1 a^{(1)}_1")[0]
    ce = v.counterexample
    assert ce["left"] == pytest.approx(-ce["right"], rel=1e-6)
    assert set(ce["parameters"]) == {"W1", "b1", "W2", "b2"} and ce["learning_rate"] > 0


# ----------------------------------------------------------------------------- correct rewrites

CORRECT = [
    (SEED, "seed", r"\frac{\partial E}{\partial W^{(1)}_{12}} = \delta^{(1)}_1 x_2"),
    (SEED, "seed", r"\frac{\partial E}{\partial W^{(1)}_{12}} = x_2 \cdot \delta^{(1)}_1"),
    (SEED, "seed", r"\delta^{(2)}_1 = (a^{(2)}_1 - y_1) a^{(2)}_1 (1 - a^{(2)}_1)"),
    (SEED, "seed", (r"\delta^{(2)}_1 = a^{(2)}_1 a^{(2)}_1 - a^{(2)}_1 a^{(2)}_1 a^{(2)}_1 - y_1 a^{(2)}_1"
                    r" + y_1 a^{(2)}_1 a^{(2)}_1")),
    (SEED, "seed", r"\delta^{(2)}_1 = \left(a^{(2)}_1 - y_1\right)\sigma(z^{(2)}_1)\left(1-\sigma(z^{(2)}_1)\right)"),
    (SEED, "seed", r"\delta^{(2)}_1 = (a^{(2)}_1 - y_1) \frac{\exp(-z^{(2)}_1)}{(1+\exp(-z^{(2)}_1))^2}"),
    (SEED, "seed", r"\delta^{(1)}_j = \sigma'(z^{(1)}_j)\sum_{k=1}^{1} W^{(2)}_{kj}\delta^{(2)}_k"),
    (SEED, "seed", r"\delta^{(1)}_j = \sum_k \delta^{(2)}_k W^{(2)}_{kj} \sigma'(z^{(1)}_j)"),
    (SEED, "seed", r"\delta^{(1)} = \sigma'(z^{(1)}) \odot (W^{(2)})^\top \delta^{(2)}"),
    (SEED, "seed", r"\frac{\partial L}{\partial W^{(2)}} = \delta^{(2)} (a^{(1)})^{T}"),
    (SEED, "seed", r"E = \tfrac12 (a^{(2)}_1 - y_1)^2"),
    (SEED, "seed", r"E = \frac{1}{2} (y_1 - \hat y_1)^2"),
    (SEED, "seed", r"W^{(1)}_{21} \leftarrow W^{(1)}_{21} - \alpha \times \delta^{(1)}_2 \times x_1"),
    (SEED, "seed", "dE/dW1[2,1] = delta1[2]*x[1]"),
    (SEED, "seed", "a2[1] = sigma(z2[1])"),
    (SEED, "seed", "delta2[1] = (a2[1] - y[1])*sigma'(z2[1])"),
    (SEED, "seed", r"\delta^{(2)}_1 = (a^{(2)}_1 - y_1)\,\sigma^{\prime}(z^{(2)}_1)"),
    (SEED, "seed", r"\frac{\partial E}{\partial W^{(l)}_{jk}} = \delta^{(l)}_j a^{(l-1)}_k"),
    (SEED, "seed", r"\delta^{(l)}_j = \sigma'(z^{(l)}_j) \sum_k W^{(l+1)}_{kj} \delta^{(l+1)}_k"),
    (SEED, "aima", DELTA_AIMA + r"w_{j,k} \leftarrow w_{j,k} + \alpha \cdot \Delta_k a_j"),
    (WIKI_NET, "wikipedia", r"\frac{\partial E}{\partial w_{ij}} = o_i \delta_j"),
    (WIKI_NET, "wikipedia", r"\frac{\partial E}{\partial w^{(2)}_{kj}} = \delta^{(2)}_j o^{(1)}_k"),
    (CLASSIFIER, "seed", r"\delta^{(2)}_k = \hat{y}_k - y_k"),
    (CLASSIFIER, "seed", r"E = -\sum_k y_k \log \hat y_k"),
    (CLASSIFIER, "seed", r"\frac{\partial L}{\partial W^{(1)}} = ((W^{(2)})^T \delta^{(2)} \odot \sigma'(z^{(1)})) x^T"),
]


@pytest.mark.parametrize("spec, notation, text", CORRECT)
def test_correct_rewrite_passes(derivations, spec, notation, text):
    verdicts = run(derivations, spec, text, notation)
    assert all(v.verdict == "correct" for v in verdicts), [v.as_dict() for v in verdicts]


def test_the_sign_convention_is_the_profiles_and_a_wrong_line_does_not_cascade(derivations):
    # issue 9: a delta defined with the other sign is diagnosed, not adopted, and the
    # following update is judged against the true delta (so it is correct)
    text = "\\delta^{(2)}_k = (y_k - a^{(2)}_k)\\sigma'(z^{(2)}_k)\n" + \
           r"W^{(2)}_{kj} \leftarrow W^{(2)}_{kj} - \alpha \delta^{(2)}_k a^{(1)}_j"
    first, second = run(derivations, SEED, text)
    assert first.verdict == "incorrect" and SIGN in first.diagnosis
    assert second.verdict == "correct"
    # the same update with + is an ascent whatever came before
    text = text.replace("- \\alpha", "+ \\alpha")
    assert ASCENT in run(derivations, SEED, text)[1].diagnosis
    # aima: Delta is -dE/dz; (a - y) g' is the other sign
    aima = DELTA_AIMA.replace("(y_k - a_k)", "(a_k - y_k)") + r"w_{j,k} \leftarrow w_{j,k} + \alpha a_j \Delta_k"
    first, second = run(derivations, SEED, aima, "aima")
    assert first.verdict == "incorrect" and SIGN in first.diagnosis and second.verdict == "correct"


# ----------------------------------------------------------------------------- safety

HOSTILE = [
    "__import__('os').system('touch /tmp/symbackprop_pwned')",
    r"\input{/etc/passwd} = 1",
    r"\write18{touch /tmp/symbackprop_pwned} = 1",
    "(" * 5000 + "x" + ")" * 5000 + " = 1",
    "{" * 200 + "x" + "}" * 200 + " = 1",
    r"e^{99999999} = 1",
    "x = " + "9" * 500,
    "E = " + "x_1 + " * 3000 + "1",
    "lambda: 0 = 1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_is_refused(text, tmp_path):
    """Refused with a one-line reason, nothing run (timings: benchmarks/hostile_claims.py)."""
    with pytest.raises(ClaimSyntaxError) as info:
        parse_claim(text)
    assert str(info.value) and "\n" not in str(info.value)
    assert not Path("/tmp/symbackprop_pwned").exists()


def test_huge_exponent_tower_cannot_be_checked(derivations):
    v = run(derivations, SEED, "2^{2^{2^{2^{2^{2}}}}} = 1")[0]
    assert v.verdict == "cannot-check" and "exponent" in v.reason


# ----------------------------------------------------------------------------- CLI

def test_cli_exit_codes_and_json(capsys, tmp_path):
    assert main(["check", SEED, str(CLAIMS / "seed_matrix.tex")]) == 0
    out = capsys.readouterr().out
    assert out.count("✓") == 15
    assert main(["check", SEED, str(CLAIMS / "monash_aima.tex"), "--notation", "aima", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [c["verdict"] for c in data] == ["correct"] * 3 + ["incorrect"]
    assert [c["line"] for c in data] == [3, 4, 5, 6]  # the lines of the four formulas in the file
    for item in data:
        assert {"line", "claim", "verdict", "note", "diagnosis", "counterexample", "expected"} <= set(item)
    assert main(["check", SEED, "--claim", r"\frac{\partial E}{\partial W^{(1)}_{11}} = "]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symbackprop: error:") and err.count("\n") == 1
    assert main(["check", SEED, "--claim", r"\write18{ls} = 1"]) == 2
    assert main(["check", SEED, str(tmp_path / "missing.tex")]) == 2


def test_cli_output_is_deterministic(capsys):
    main(["check", SEED, str(CLAIMS / "monash_aima.tex"), "--notation", "aima", "--json"])
    first = capsys.readouterr().out
    main(["check", SEED, str(CLAIMS / "monash_aima.tex"), "--notation", "aima", "--json"])
    assert capsys.readouterr().out == first


def test_fix_from_the_derivation_when_no_common_mistake_explains(derivations):
    text = r"\frac{\partial E}{\partial W^{(1)}_{12}} = \delta^{(1)}_1 x_1 x_2"
    v = run(derivations, SEED, text)[0]
    assert v.verdict == "incorrect" and v.expected
    assert run(derivations, SEED, v.expected)[0].verdict == "correct"


def test_unparseable_claim_names_its_line(derivations):
    with pytest.raises(ClaimSyntaxError, match="claim 2"):
        run(derivations, SEED, "E = E\n" + r"\frac{\partial E}{ = 1")


def test_relation_inside_parentheses_is_refused_with_the_way_to_write_it(derivations):
    """1(y_i = k) is not an expression (it once reached the evaluator and failed with an AttributeError):
    the reader refuses it and names the indicator it reads, \\mathbb{1}(y_i = k)."""
    from symbackprop.claims.judge import judge, new_context

    with pytest.raises(ClaimSyntaxError, match=r"mathbb\{1\}") as info:
        parse_claim(r"\frac{\partial L_i}{\partial f_k} = p_k - 1(y_i = k)")
    assert "\n" not in str(info.value)
    v = judge(r"\frac{\partial L_i}{\partial f_k} = p_k - 1(y_i = k)", new_context(derivations[CLASSIFIER]))
    assert v.verdict == "cannot-check" and "mathbb{1}" in v.reason and "Error" not in v.reason, v.as_dict()


@pytest.mark.parametrize("text, diagnosis", [
    (r"\delta^{(1)}_j = \sigma'(z^{(1)}_j) \sum_k W^{(2)}_{jk}\delta^{(2)}_k", INDEX),
    (r"\delta^{(1)}_j = \sigma'(z^{(2)}_j) \sum_k W^{(2)}_{kj}\delta^{(2)}_k", LAYER),
    (r"\frac{\partial E}{\partial W^{(l)}_{jk}} = \delta^{(l)}_k a^{(l-1)}_j", INDEX),
])
def test_indices_that_fit_no_layer_are_diagnosed(derivations, text, diagnosis):
    v = run(derivations, CLASSIFIER, text)[0]
    assert v.verdict == "incorrect" and v.diagnosis.startswith(diagnosis), v.as_dict()
    assert run(derivations, CLASSIFIER, v.expected)[0].verdict == "correct"


def _sigmoid(u):
    return 1 / (1 + np.exp(-u))


def _softmax(u):
    e = np.exp(u - u.max())
    return e / e.sum()


@pytest.mark.parametrize("spec, notation, text, fix, f", [
    (SEED, "seed", r"\hat{y} = \sigma(W^{(2)} a^{(1)})", r"\hat{y} = \sigma(W^{(2)} a^{(1)} + b^{(2)})", _sigmoid),
    (SEED, "seed", r"\hat{y}_1 = \sigma(\sum_k W^{(2)}_{1k} a^{(1)}_k)",
     r"\hat{y}_1 = \sigma(\sum_k W^{(2)}_{1k} a^{(1)}_k + b^{(2)}_1)", _sigmoid),
    (SEED, "bishop", r"y_k = h(\sum_j w^{(2)}_{kj} z^{(1)}_j)", r"y_k = h(\sum_j w^{(2)}_{kj} z^{(1)}_j + b^{(2)}_k)",
     _sigmoid),
    (CLASSIFIER, "seed", r"\hat{y} = \operatorname{softmax}(W^{(2)} a^{(1)})",
     r"\hat{y} = \operatorname{softmax}(W^{(2)} a^{(1)} + b^{(2)})", _softmax),
], ids=["seed-vector", "seed-unit", "bishop-y", "softmax"])
def test_output_without_bias_is_diagnosed(derivations, spec, notation, text, fix, f):
    """The network's output (\\hat y; y in bishop's profile) is the output layer's activation, so an output
    written without its bias is diagnosed like a^{(2)} is, and the fix is the textbook formula (written here by
    hand).  Truth: the forward pass (NumericNetwork) gives f(W2 a1 + b2), not f(W2 a1), at a random point."""
    net = NumericNetwork(derivations[spec].network)
    params, x, _ = net.random_point(np.random.default_rng(5))
    _, acts = net.forward(params, x)
    assert not np.allclose(acts[-1], f(params["W2"] @ acts[1]), atol=1e-6)
    assert np.allclose(acts[-1], f(params["W2"] @ acts[1] + params["b2"]), atol=1e-12)
    v = run(derivations, spec, text, notation)[0]
    assert v.verdict == "incorrect" and BIAS in v.diagnosis, v.as_dict()
    assert v.expected.replace(" ", "") == fix.replace(" ", ""), v.expected
    assert run(derivations, spec, v.expected, notation)[0].verdict == "correct", v.expected
