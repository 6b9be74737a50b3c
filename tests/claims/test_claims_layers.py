"""Claims about the layers of a graph spec (claims/layers.py, claims/scenes.py).

The truth is independent of the code under test: the batch-normalization paper's equations as
printed (arXiv:1502.03167, sec. 3), finite differences of a plain NumPy batch norm, and the
textbook forms of dropout and weight decay.  The scene's derivatives are checked against
finite differences here, and the corpus's expected verdicts (tests/data/claims_layers/) are
spot-checked with NumPy formulas before the checker is held to them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbackprop import check
from symbackprop.claims.layers import LayerClaims, claim_target, prepare
from symbackprop.claims.lexer import split_claims
from symbackprop.claims.scenes import SIZES, scenes_for
from symbackprop.cli import main
from symbackprop.engine.derive import Derivation

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "examples" / "claims" / "batchnorm_spec.yaml")
NOTES = ROOT / "examples" / "notes" / "batchnorm_paper.md"
CORPUS = yaml.safe_load((ROOT / "tests" / "data" / "claims_layers" / "batchnorm.yaml").read_text())
MIXED = {"inputs": 4, "loss": "categorical_cross_entropy", "regularization": {"l2": 1.0e-4},
         "layers": [{"units": 5, "activation": "relu"}, {"type": "batchnorm", "epsilon": 1.0e-5},
                    {"type": "dropout", "rate": 0.5}, {"units": 5, "activation": "tanh"},
                    {"type": "layernorm", "epsilon": 1.0e-5}, {"units": 3, "activation": "softmax"}]}

PAPER = [  # the six backward equations of section 3, as printed
    r"\frac{\partial \ell}{\partial \widehat{x}_i} = \frac{\partial \ell}{\partial y_i} \cdot \gamma",
    (r"\frac{\partial \ell}{\partial \sigma_\mathcal{B}^2} = \sum_{i=1}^m \frac{\partial \ell}{\partial \widehat{x}_i}"
     r" \cdot (x_i - \mu_\mathcal{B}) \cdot \frac{-1}{2} (\sigma_\mathcal{B}^2 + \epsilon)^{-3/2}"),
    (r"\frac{\partial \ell}{\partial \mu_\mathcal{B}} = \bigg(\sum_{i=1}^m \frac{\partial \ell}{\partial \widehat{x}_i}"
     r" \cdot \frac{-1}{\sqrt{\sigma_\mathcal{B}^2 + \epsilon}} \bigg) + \frac{\partial \ell}{\partial \sigma_\mathcal{B}^2}"
     r" \cdot \frac{\sum_{i=1}^m -2(x_i - \mu_\mathcal{B})}{m}"),
    (r"\frac{\partial \ell}{\partial x_i} = \frac{\partial \ell}{\partial \widehat{x}_i} \cdot"
     r" \frac{1}{\sqrt{\sigma_\mathcal{B}^2 + \epsilon}} + \frac{\partial \ell}{\partial \sigma_\mathcal{B}^2} \cdot"
     r" \frac{2(x_i - \mu_\mathcal{B})}{m} + \frac{\partial \ell}{\partial \mu_\mathcal{B}} \cdot \frac{1}{m}"),
    r"\frac{\partial \ell}{\partial \gamma} = \sum_{i=1}^m \frac{\partial \ell}{\partial y_i} \cdot \widehat{x}_i",
    r"\frac{\partial \ell}{\partial \beta} = \sum_{i=1}^m \frac{\partial \ell}{\partial y_i}",
]
DROPPED_HALF = PAPER[1].replace(r"\frac{-1}{2} ", "")


def one(spec, text):
    (v,) = check(spec, text)
    return v


# ----------------------------------------------------------------------------- independent truth in NumPy

def bn_loss(x, g, gamma, beta, eps):
    mu = x.mean()
    var = ((x - mu) ** 2).mean()
    return float(np.sum(g * (gamma * (x - mu) / np.sqrt(var + eps) + beta)))


def fd(f, x, h=1e-6):
    out = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (f(x + e) - f(x - e)) / (2 * h)
    return out


def paper_dx(x, g, gamma, eps):
    """The paper's four chain-rule equations, in NumPy."""
    m, mu = x.size, x.mean()
    var = ((x - mu) ** 2).mean()
    dxhat = g * gamma
    dvar = np.sum(dxhat * (x - mu)) * -0.5 * (var + eps) ** -1.5
    dmu = np.sum(dxhat * -1 / np.sqrt(var + eps)) + dvar * np.sum(-2 * (x - mu)) / m
    return dxhat / np.sqrt(var + eps) + dvar * 2 * (x - mu) / m + dmu / m, dvar


@pytest.mark.parametrize("m", [3, 4, 7])
def test_paper_equations_match_finite_differences(m):
    rng = np.random.default_rng(m)
    x, g = rng.normal(size=m), rng.normal(size=m)
    gamma, beta, eps = 1.3, -0.2, 0.1
    dx, dvar = paper_dx(x, g, gamma, eps)
    assert np.allclose(dx, fd(lambda z: bn_loss(z, g, gamma, beta, eps), x), atol=1e-6)
    mu = x.mean()
    var = ((x - mu) ** 2).mean()
    held = (lambda v: float(np.sum(g * (gamma * (x - mu) / np.sqrt(v[0] + eps) + beta))))  # x, mu fixed
    assert np.isclose(dvar, fd(held, np.array([var]))[0], atol=1e-6)
    dropped = np.sum(g * gamma * (x - mu)) * (var + eps) ** -1.5  # the -1/2 dropped: really wrong
    assert not np.isclose(dropped, dvar)


@pytest.mark.parametrize("size", SIZES)
def test_scene_derivatives_match_finite_differences(size):
    (scene,) = [s for s in scenes_for("batchnorm") if s.size == size]
    for point in range(scene.points):
        vals = scene.base[point]
        x = np.array([vals[scene.symbols[("x", i)]] for i in range(size)])
        g = np.array([scene.value(point, ("y", i), ("adj", "loss")) for i in range(size)])
        gamma, beta = vals[scene.symbols[("gamma", None)]], vals[scene.symbols[("beta", None)]]
        eps = vals[scene.symbols[("eps", None)]]
        truth = fd(lambda z, g=g, c=(gamma, beta, eps): bn_loss(z, g, *c), x)
        got = [scene.value(point, ("x", i), ("adj", "loss")) for i in range(size)]
        assert np.allclose(got, truth, atol=1e-6)
        assert np.isclose(scene.value(point, ("var", None), ("adj", "loss")), paper_dx(x, g, gamma, eps)[1])


# ----------------------------------------------------------------------------- reading

def test_prepare_reads_the_papers_typography():
    assert prepare(r"\bigg(a\bigg)") .replace(" ", "") == "(a)"
    assert prepare(r"\frac{-1}{\sqrt{\sigma_B^2+\epsilon}}") == r"\frac{-1}{(\sigma_B^2+\epsilon)^{1/2}}"
    assert prepare(r"\sigma^2_\mathcal{B}") == r"\sigma_\mathcal{B}^2"
    assert prepare(r"\sigma^2 = 1") == r"(\sigma)^2 = 1"
    assert prepare(r"\sum_{i=1}^m -2(x_i)").replace(" ", "") == r"\sum_{i=1}^m(-1)2(x_i)"


def test_graph_spec_dispatch_and_dense_spec_unchanged():
    assert isinstance(claim_target(SPEC), LayerClaims)
    assert isinstance(claim_target(str(ROOT / "examples" / "seed_2_3_1.yaml")), Derivation)


# ----------------------------------------------------------------------------- the acceptance

@pytest.mark.parametrize("k", range(6))
def test_paper_backward_equations_are_correct(k):
    v = one(SPEC, PAPER[k])
    assert v.verdict == "correct", (v.reason, v.diagnosis)
    assert v.checked >= len(SIZES)


def test_dropped_half_is_incorrect_with_the_fix():
    v = one(SPEC, DROPPED_HALF)
    assert v.verdict == "incorrect"
    assert "-1/2" in v.diagnosis
    assert r"\frac{-1}{2}" in v.expected
    assert v.counterexample["left"] != v.counterexample["right"]
    assert one(SPEC, v.expected).verdict == "correct"


def test_notes_file_holds_the_paper_equations():
    claims = split_claims(NOTES.read_text().split(r"\begin{aligned}")[1].split(r"\end{aligned}")[0])
    assert [c.replace("&", "").replace(" ", "") for c in claims] == [p.replace(" ", "") for p in PAPER]


def test_cli_paper_notes_exit_0(capsys):
    assert main(["check", SPEC, str(NOTES)]) == 0
    out = capsys.readouterr().out
    assert sum(line.split(" ", 2)[1] == "✓" for line in out.splitlines() if r"\partial \ell}{\partial" in
               line.split("=")[0] and ".md:" in line) == 6
    assert "0 incorrect" in out


def test_cli_dropped_half_exit_1_and_names_the_fix(tmp_path, capsys):
    wrong = tmp_path / "wrong.md"
    wrong.write_text(NOTES.read_text().replace(r"\cdot \frac{-1}{2} (\sigma", r"\cdot (\sigma"))
    assert main(["check", SPEC, str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "1 incorrect" in out and "-1/2" in out
    assert r"fix:       \frac{\partial \ell}{\partial \sigma_B^{2}}" in out and r"\frac{-1}{2}" in out


# ----------------------------------------------------------------------------- corpus of mistakes

def test_corpus_expectations_are_right_in_numpy():
    """Spot checks of the corpus's expected verdicts with NumPy formulas (independent of the checker)."""
    rng = np.random.default_rng(5)
    x, g = rng.normal(size=4), rng.normal(size=4)
    gamma, eps = 1.7, 0.2
    mu = x.mean()
    var = ((x - mu) ** 2).mean()
    truth = fd(lambda z: bn_loss(z, g, gamma, 0.0, eps), x)
    dxhat, (_, dvar) = g * gamma, paper_dx(x, g, gamma, eps)
    dmu = np.sum(dxhat * -1 / np.sqrt(var + eps))
    xhat = (x - mu) / np.sqrt(var + eps)
    compact = gamma / (4 * np.sqrt(var + eps)) * (4 * g - g.sum() - xhat * np.sum(g * xhat))
    assert np.allclose(compact, truth, atol=1e-6)  # the compact entry is correct
    no_m = dxhat / np.sqrt(var + eps) + dvar * 2 * (x - mu) + dmu / 4
    assert not np.allclose(no_m, truth)  # the missing-1/m entry is wrong
    assert not np.isclose(np.sum(dxhat / np.sqrt(var + eps)), dmu)  # the mu-path sign entry is wrong


@pytest.mark.parametrize("entry", CORPUS["entries"], ids=[e["claim"][:50] for e in CORPUS["entries"]])
def test_corpus_entry(entry):
    v = one(str(ROOT / CORPUS["network"]), entry["claim"])
    assert v.verdict == entry["expect"], (v.reason, v.diagnosis)
    assert entry["source"]
    if entry["expect"] == "incorrect":
        assert v.counterexample
        if entry["mistake"] != "other":
            assert entry["mistake"] in v.diagnosis
            assert one(SPEC, v.expected).verdict == "correct"



def test_corpus_fixes_read_as_written():
    """Every fix suggested for a wrong entry reads as a person writes it: a square root as \\sqrt{...} (not
    (...)^{1 / 2}), an exponent -3/2 without spaces, no doubled sign (issue 14, item 3); the sign fix of
    dl/dmu_B is the paper's formula, written here by hand with the minus sign in front."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fixes_for_layers", ROOT / "tests" / "claims" / "test_claims_fixes.py")
    fixes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixes)
    fixed = {}
    for entry in CORPUS["entries"]:
        if entry["expect"] == "incorrect":
            v = one(str(ROOT / CORPUS["network"]), entry["claim"])
            if v.expected:
                fixed[entry["claim"]] = v.expected
                assert fixes.unreadable(v.expected) is None and "^{1/2}" not in v.expected \
                    and " / " not in v.expected, v.expected
    assert len(fixed) >= 4
    mu = next(c for c in fixed if r"\partial \mu" in c.split("=")[0] and "-1" not in c)
    assert fixed[mu].replace(" ", "") == (r"\frac{\partial \ell}{\partial \mu_B} = -\sum_{i=1}^{m} \frac{\partial \ell}"
                                          r"{\partial \hat{x}_i} \cdot \frac{1}{\sqrt{\sigma_B^{2} + \epsilon}}").replace(" ", "")


# ----------------------------------------------------------------------------- other layers

LAYER_CLAIMS = [
    (r"\mu = \frac{1}{H} \sum_{i=1}^H x_i", "correct", None),
    (r"\sigma^2 = \frac{1}{H} \sum_{i=1}^H (x_i - \mu)^2", "correct", None),
    (r"\frac{\partial E}{\partial \gamma_i} = \frac{\partial E}{\partial y_i} \hat{x}_i", "correct", None),
    (r"y_i = \frac{m_i x_i}{1-p}", "correct", None),
    (r"\frac{\partial E}{\partial x_i} = \frac{\partial E}{\partial y_i} \frac{r_i}{1-p}", "correct", None),
    (r"\frac{\partial E}{\partial x_i} = \frac{\partial E}{\partial y_i} \frac{1}{1-p}", "incorrect", "mask"),
    (r"\frac{\partial E}{\partial x_i} = \frac{\partial E}{\partial y_i} m_i", "incorrect", "1/(1-p)"),
    (r"\frac{\partial E}{\partial w_{jk}} = \frac{\partial E_0}{\partial w_{jk}} + \lambda w_{jk}", "correct", None),
    (r"\frac{\partial E}{\partial w_{jk}} = \frac{\partial E_0}{\partial w_{jk}} + \frac{\lambda}{2} w_{jk}",
     "incorrect", "factor 2"),
    (r"w_{jk} \leftarrow (1 - \eta\lambda) w_{jk} - \eta \frac{\partial E_0}{\partial w_{jk}}", "correct", None),
    (r"w_{jk} \leftarrow w_{jk} - \eta \frac{\partial E_0}{\partial w_{jk}}", "incorrect", None),
]


@pytest.mark.parametrize("text,expect,word", LAYER_CLAIMS)
def test_layernorm_dropout_and_decay_claims(text, expect, word):
    v = one(MIXED, text)
    assert v.verdict == expect, (v.reason, v.diagnosis)
    if word:
        assert word in v.diagnosis


@pytest.mark.parametrize("text", [
    r"\frac{\partial E}{\partial W^{(1)}} = \delta^{(1)} x^T",  # a dense layer
    r"\hat{y}_i = \gamma",
    r"x_{ijk} = 1",
    r"\frac{\partial \ell}{\partial x_i} = \sqrt 2",
    r"\sigma(x_i) = \frac{1}{1 + \exp(-x_i)}",
    r"q_i = x_i",
    r"\mathcal{B} = \{x_1, \ldots, x_m\}",
    r"\frac{\partial \ell}{\partial x_9} = 0",
    r"\frac{\partial}{\partial x_i} y_i = 1",
])
def test_unreadable_formulas_are_cannot_check_never_a_traceback(text):
    v = one(MIXED, text)
    assert v.verdict in ("cannot-check", "skipped"), (v.verdict, v.diagnosis)
    assert v.reason


def test_layernorm_missing_mean_names_its_own_size_letter():
    v = one(MIXED, r"\mu = \sum_{i=1}^H x_i")
    assert v.verdict == "incorrect"
    assert "1/H" in v.diagnosis and "units" in v.diagnosis
    assert r"\frac{1}{H}" in v.expected and one(MIXED, v.expected).verdict == "correct"


def test_cli_one_claim_exit_codes(capsys):
    assert main(["check", SPEC, "--claim", PAPER[0]]) == 0
    assert main(["check", SPEC, "--claim", PAPER[0].replace(r" \cdot \gamma", "")]) == 1
    out = capsys.readouterr().out
    assert "gamma is missing" in out and "counterexample at size" in out


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 30)), min_size=1, max_size=4))
def test_mutated_paper_notes_never_crash(cuts, tmp_path_factory, capsys):
    text = NOTES.read_text()
    for pos, n in cuts:
        text = text[:pos] + text[pos + n:]
    path = tmp_path_factory.mktemp("notes") / "n.md"
    path.write_text(text)
    assert main(["check", SPEC, str(path)]) in (0, 1)
    capsys.readouterr()


def test_engine_layer_derivation_is_accepted_as_the_truth_source():
    from symbackprop.engine.layergraph import LayerDerivation
    from symbackprop.spec import load

    d = LayerDerivation(load(SPEC))
    (v,) = check(SPEC, PAPER[5], derivation=d)
    assert v.verdict == "correct"
    (v,) = check(SPEC, PAPER[5].replace(r"\sum_{i=1}^m", ""), derivation=d)
    assert v.verdict == "incorrect" and "sum" in v.diagnosis


@pytest.mark.parametrize("text", [  # Algorithm 1 of the paper: definitions written with \leftarrow
    r"\mu_\mathcal{B} \leftarrow \frac{1}{m} \sum_{i=1}^m x_i",
    r"\sigma_\mathcal{B}^2 \leftarrow \frac{1}{m} \sum_{i=1}^m (x_i - \mu_\mathcal{B})^2",
    r"\widehat{x}_i \leftarrow \frac{x_i - \mu_\mathcal{B}}{\sqrt{\sigma_\mathcal{B}^2 + \epsilon}}",
    r"y_i \leftarrow \gamma \widehat{x}_i + \beta \equiv \mathrm{BN}_{\gamma,\beta}(x_i)",
])
def test_algorithm_1_definitions(text):
    assert one(SPEC, text).verdict == "correct"
    wrong = text.replace(r"\frac{1}{m}", r"\frac{1}{m-1}").replace(r"+ \beta", r"- \beta").replace(
        r"x_i - \mu", r"x_i + \mu")
    assert one(SPEC, wrong).verdict == "incorrect"


# ----------------------------------------------------------------------------- fixes of one-factor mistakes

def _juxtaposed_number(tex: str) -> str | None:
    """A number written right after a symbol or a brace (``w_{jk} 2``, ``\\frac{1}{m} -2``): a person writes
    ``w_{jk} \\cdot 2``; ``x -2`` even reads as a subtraction."""
    m = re.search(r"[\w})]\s+-?\d", tex.replace(r"\cdot", "*").replace(r"\times", "*"))
    return m and m.group(0)


FACTOR_MISTAKES = [  # (spec, claim with one constant factor dropped from a textbook formula, the term it is in)
    (MIXED, r"\frac{\partial E}{\partial w_{jk}} = \frac{\partial E_0}{\partial w_{jk}} + \frac{\lambda}{2} w_{jk}", 2),
    (SPEC, PAPER[3].replace(r"\frac{2(x_i", r"\frac{(x_i"), 2),  # d l/d x_i without the 2 of d sigma^2/d x_i
    (SPEC, r"\frac{\partial \ell}{\partial \beta} = \sum_{i=1}^m \frac{\partial \ell}{\partial y_i} \cdot \frac{1}{2}",
     None),  # a single sum, halved
]


@pytest.mark.parametrize("spec,text,term", FACTOR_MISTAKES)
def test_factor_fix_names_its_term_reads_as_written_and_is_correct(spec, text, term):
    """Each claim is a textbook formula (the paper's, the weight-decay gradient) with a constant factor 2 dropped:
    the diagnosis names the factor and, for a side of several terms, which term; the fix is judged correct when
    fed back and writes the factor with a multiplication sign (mutation survivors ``layers._scaled`` 47, 64 and
    ``layers.candidates`` 7)."""
    v = one(spec, text)
    assert v.verdict == "incorrect" and "factor 2 is missing" in v.diagnosis, (v.verdict, v.diagnosis)
    assert (f"(term {term} of the right side)" in v.diagnosis) == (term is not None), v.diagnosis
    assert _juxtaposed_number(v.expected) is None, v.expected
    assert one(spec, v.expected).verdict == "correct", v.expected
