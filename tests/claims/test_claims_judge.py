"""judge(): one claim text -> verdict, on the seeds' formulas verbatim and the issue-9 semantics.

Expected verdicts come from the textbooks and the issue; where a claim is concrete it is
confirmed independently of the checker with the forward pass and central finite
differences of :class:`symbackprop.engine.numeric.NumericNetwork`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from symbackprop import derive
from symbackprop.claims.judge import judge, new_context
from symbackprop.engine.numeric import NumericNetwork

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed_2_3_1.yaml")
WIKI_NET = str(ROOT / "examples" / "claims" / "wikipedia_net.yaml")
CLASSIFIER = str(ROOT / "examples" / "classifier_4_5_3.yaml")
TANH_NET = {"name": "tanh-sigmoid", "inputs": 2, "loss": "binary_cross_entropy",
            "layers": [{"units": 4, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
            "optimizer": {"name": "sgd", "learning_rate": 0.1}}
DEEP = {"name": "deep", "inputs": 3, "loss": "half_sse", "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "layers": [{"units": 4, "activation": "sigmoid"}, {"units": 3, "activation": "sigmoid"},
                   {"units": 2, "activation": "sigmoid"}]}
LOSS_NAMED = {"name": "loss-named", "inputs": 2, "loss": "half_sse", "optimizer": {"name": "sgd", "learning_rate": 0.1},
              "layers": [{"units": 3, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
              "notation": {"profile": "aima", "loss": "Loss"}}

_CACHE: dict = {}


def derivation(spec):
    key = spec if isinstance(spec, str) else spec["name"]
    if key not in _CACHE:
        _CACHE[key] = derive(spec, verify=False)
    return _CACHE[key]


def judged(spec, notation, lines):
    ctx = new_context(derivation(spec), notation)
    return [judge(line, ctx) for line in lines]


# ----------------------------------------------------------------------------- the seeds, verbatim

# /work/shared/seeds/000_dd6527256766149b.txt: the align rows, exactly as written there
SEED_000 = [
    r"z^{(1)} = W^{(1)}x + b^{(1)}",
    r"a^{(1)} = \sigma(z^{(1)}) \text{ (Apply activation function)}",
    r"z^{(2)} = W^{(2)}a^{(1)} + b^{(2)}",
    r"a^{(2)} = \sigma(z^{(2)}) \text{ (Apply activation function)}",
    r"\hat{y} = a^{(2)}",
    r"\delta^{(2)} = \frac{\partial L}{\partial a^{(2)}} \cdot \sigma'(z^{(2)})",
    r"\frac{\partial L}{\partial W^{(2)}} = \delta^{(2)} \cdot a^{(1)T}",
    r"\frac{\partial L}{\partial b^{(2)}} = \delta^{(2)}",
    r"\delta^{(1)} = (W^{(2)})^T \cdot \delta^{(2)} \cdot \sigma'(z^{(1)})",
    r"\frac{\partial L}{\partial W^{(1)}} = \delta^{(1)} \cdot x^T",
    r"\frac{\partial L}{\partial b^{(1)}} = \delta^{(1)}",
    r"W^{(2)} = W^{(2)} - \alpha \cdot \frac{\partial L}{\partial W^{(2)}}",
    r"b^{(2)} = b^{(2)} - \alpha \cdot \frac{\partial L}{\partial b^{(2)}}",
    r"W^{(1)} = W^{(1)} - \alpha \cdot \frac{\partial L}{\partial W^{(1)}}",
    r"b^{(1)} = b^{(1)} - \alpha \cdot \frac{\partial L}{\partial b^{(1)}}",
]
SEED_000_NOTATION_LIST = [r"& x \text{ - Input features (a vector)}",
                          r"& W^{(1)} \text{ - Weights of the hidden layer}",
                          r"& \hat{y} \text{ - Predicted output}"]

MONASH = [r"\Delta_k \leftarrow (y_k - a_k)g'(in_k)",
          r"w_{j,k} \leftarrow w_{j,k} + \alpha \times a_j \times \Delta_k",
          r"\Delta_j \leftarrow g'(in_j)\sum_k w_{j,k}\Delta_k",
          r"w_{j,k} \leftarrow w{i,j} + \alpha \times a_i \times \Delta_j"]

# the Wikipedia section, the chains split into links as the notes reader does
WIKIPEDIA = [
    r"o_j = \varphi(net_j)",
    r"\varphi(net_j) = \varphi \left ( \sum_{k=1}^n w_{kj} x_k \right )",
    r"\varphi(z) = \frac{1}{1+e^{-z}}",
    r"\frac{\delta \varphi}{\delta z} = \varphi (z) (1-\varphi(z))",
    r"\frac{\delta E}{\delta w_{ij}} = \frac{\delta E}{\delta o_j}\frac{\delta o_j}{\delta w_{ij}}",
    (r"\frac{\delta E}{\delta o_j}\frac{\delta o_j}{\delta w_{ij}} = "
     r"\frac{\delta E}{\delta o_j}\frac{\delta o_j}{\delta net_j}\frac{\delta net_j}{\delta w_{ij}}"),
    r"\frac{\delta net_j}{\delta w_{ij}} = \frac{\delta}{\delta w_{ij}}\left ( \sum_{k=1}^n w_{kj}o_k \right )",
    r"\frac{\delta}{\delta w_{ij}}\left ( \sum_{k=1}^n w_{kj}o_k \right ) = \frac{\delta}{\delta w_{ij}} w_{ij}o_i",
    r"\frac{\delta}{\delta w_{ij}} w_{ij}o_i = o_i",
    r"\frac{\delta o_j}{\delta net_j} = \frac{\delta \varphi(net_j)}{\delta net_j} ",
    r"\frac{\delta o_j}{\delta net_j} = \frac{\delta}{\delta net_j} \varphi(net_j)",
    r"\frac{\delta}{\delta net_j} \varphi(net_j) = \varphi(net_j)(1 - \varphi (net_j))",
    r"\varphi(net_j)(1 - \varphi (net_j)) = o_j(1-o_j)",
    r"\frac{\delta E}{\delta o_j} = \frac{\delta E}{\delta y}",
    r"\frac{\delta E}{\delta y} = \frac{\delta}{\delta y}\frac12(t-y)^2",
    r"\frac{\delta}{\delta y}\frac12(t-y)^2 = y-t",
]


def test_seed_000_verbatim_every_formula_correct_with_notes():
    verdicts = judged(SEED, "seed", SEED_000)
    assert [v.verdict for v in verdicts] == ["correct"] * 15, [v.as_dict() for v in verdicts]
    # the seed's \cdot between two column vectors is read elementwise, with a note suggesting \odot
    assert r"\odot" in verdicts[8].note
    assert verdicts[6].note is None  # delta a^T: a matrix product, nothing to note
    # with two outputs the output layer's \cdot is elementwise too
    v = judged(CLASSIFIER, "seed", [r"\delta^{(1)} = (W^{(2)})^T \cdot \delta^{(2)} \cdot \sigma'(z^{(1)})"])[0]
    assert v.verdict == "correct" and r"\odot" in v.note


def test_seed_000_notation_list_is_skipped_not_cannot_check():
    for v in judged(SEED, "seed", SEED_000_NOTATION_LIST):
        assert v.verdict == "skipped" and v.reason, v.as_dict()


@pytest.mark.parametrize("spec", [WIKI_NET, SEED])
def test_seed_001_monash_section_flags_only_the_typo(spec):
    verdicts = judged(spec, "aima", MONASH)
    assert [v.verdict for v in verdicts] == ["correct"] * 3 + ["incorrect"]
    typo = verdicts[3]
    assert typo.diagnosis.startswith("transposed or wrong index") and typo.expected
    assert typo.counterexample["left"] != typo.counterexample["right"]
    assert judged(spec, "aima", MONASH[:3] + [typo.expected])[3].verdict == "correct"


def test_seed_001_wikipedia_section_all_correct():
    verdicts = judged(WIKI_NET, "wikipedia", WIKIPEDIA)
    assert [v.verdict for v in verdicts] == ["correct"] * len(WIKIPEDIA), [
        (v.claim, v.verdict, v.reason) for v in verdicts if v.verdict != "correct"]
    assert "partial derivative" in verdicts[4].note  # \delta read as \partial, and said


def test_seed_001_non_claims_are_skipped():
    lines = [r"E = L(t,y)", r"W^l = (w^l_{jk})", "x", "C", r"f^l"]
    for v in judged(WIKI_NET, "wikipedia", lines):
        assert v.verdict == "skipped" and v.reason, v.as_dict()


def test_setting_a_parameter_is_not_an_update():
    # "=" is an update only when both sides name the parameter (issue 9, item 2)
    for v in judged(SEED, "seed", [r"W^{(1)} = 0", r"b^{(2)} = 0"]):
        assert v.verdict == "skipped" and "initial value" in v.reason
    v = judged(SEED, "seed", [r"W^{(2)} = W^{(2)} - \alpha \delta^{(2)} a^{(1)T}"])[0]
    assert v.verdict == "correct"


def test_generic_definition_of_phi_is_skipped_on_a_network_that_does_not_use_it():
    v = judged(DEEP, "wikipedia", [r"\varphi(z) = \tanh(z)"])[0]
    assert v.verdict == "skipped" and "tanh" in v.reason
    v = judged(TANH_NET, "wikipedia", [r"\varphi(z) = \frac{1}{1+e^{-z}}"])[0]
    assert v.verdict == "correct" and "layer 2" in v.note
    # a wrong derivative identity is still wrong, not skipped
    v = judged(WIKI_NET, "wikipedia", [r"\frac{\delta \varphi}{\delta z} = \varphi(z)(1+\varphi(z))"])[0]
    assert v.verdict == "incorrect"


# ----------------------------------------------------------------------------- never a traceback

CRASHERS = [
    (DEEP, "seed", r"\delta^l = ((w^{l+1})^T \delta^{l+1}) \odot \sigma'(z^l)"),
    (SEED, "seed", r"W^{(3)} = W^{(2)} - \alpha \frac{\partial L}{\partial W^{(3)}}"),
    (SEED, "seed", r"\delta^{(0)} = (W^{(1)})^T \delta^{(1)}"),
    (SEED, "seed", r"\frac{\partial L}{\partial W^{(3)}} = \delta^{(3)} a^{(2)T}"),
    (SEED, "seed", r"z^{(q)}_j = 1"),
    (SEED, "seed", r"\frac{\partial L}{\partial W^{(2)}_{jk}} = \delta^{(2)}_j a^{(1)}_j"),
    (SEED, "seed", r"\sum_k = 1"),
    (SEED, "seed", r"= ="),
    (SEED, "seed", "\\frac{\\partial E}{ = 1"),
    (SEED, "seed", r"\nabla = 2"),
    (SEED, "seed", r"a^{(1)} = \sigma(z^{(1)}, z^{(2)})"),
    (SEED, "seed", "δ^{(2)} = ∂L/∂a^{(2)} ⊙ σ′(z^{(2)})"),
    (SEED, "seed", "\x00\x01 = \ufffd"),
    (SEED, "bishop", r"y_k = h(a_k) = h(h)"),
    (SEED, "seed", "∂E←dW"),
    (SEED, "seed", r"\sum_{i=1}^m dz^{(i)} = x^{(i)}"),
]


@pytest.mark.parametrize("spec, notation, text", CRASHERS)
def test_no_text_raises(spec, notation, text):
    v = judged(spec, notation, [text])[0]
    assert v.verdict in ("correct", "incorrect", "skipped", "cannot-check")
    if v.verdict in ("skipped", "cannot-check"):
        assert v.reason and "\n" not in v.reason
        assert not v.reason.startswith("could not judge"), v.reason  # a reason, not an internal error


def test_nielsen_bp2_with_letter_layers_holds_for_every_layer():
    v = judged(DEEP, "seed", [CRASHERS[0][2]])[0]
    assert v.verdict == "correct", v.as_dict()
    wrong = judged(DEEP, "seed", [r"\delta^l = ((w^{l+1}) \delta^{l+1}) \odot \sigma'(z^l)"])[0]
    assert wrong.verdict == "incorrect" and wrong.diagnosis.startswith("transposed")


@pytest.mark.parametrize("text", [r"W^{(3)} = W^{(2)} - \alpha \frac{\partial L}{\partial W^{(3)}}",
                                  r"\delta^{(0)} = (W^{(1)})^T \delta^{(1)}"])
def test_a_layer_the_network_lacks_is_explained(text):
    v = judged(SEED, "seed", [text])[0]
    assert v.verdict in ("cannot-check", "incorrect")
    assert "layer" in (v.reason or v.diagnosis)


# ----------------------------------------------------------------------------- precedence, sign, no cascade

def test_hadamard_binds_looser_than_juxtaposition():
    # sigma'(z) (.) (W^T delta): read as the textbooks mean it
    for spec in (SEED, CLASSIFIER, DEEP):
        v = judged(spec, "seed", [r"\delta^{(1)} = \sigma'(z^{(1)})\odot (W^{(2)})^T\delta^{(2)}"])[0]
        assert v.verdict == "correct", v.as_dict()
    v = judged(CLASSIFIER, "seed", [r"\delta^{(1)} = \sigma'(z^{(1)})\odot W^{(2)T}\delta^{(2)}"])[0]
    assert v.verdict == "correct"


def test_output_delta_with_the_other_sign_is_a_sign_error_not_a_convention():
    v = judged(DEEP, "seed", [r"\delta^L = (y - a^L)\odot\sigma'(z^L)"])[0]
    assert v.verdict == "incorrect" and v.diagnosis.startswith("sign"), v.as_dict()
    assert judged(DEEP, "seed", [v.expected])[0].verdict == "correct"


def test_a_wrong_line_does_not_cascade():
    lines = [r"\delta^{(2)} = (y - a^{(2)}) \odot \sigma'(z^{(2)})",  # wrong sign
             r"\delta^{(1)} = (W^{(2)})^T \delta^{(2)} \odot \sigma'(z^{(1)})",
             r"\frac{\partial L}{\partial W^{(1)}} = \delta^{(1)} x^T"]
    verdicts = judged(SEED, "seed", lines)
    assert [v.verdict for v in verdicts] == ["incorrect", "correct", "correct"]


# ----------------------------------------------------------------------------- counterexamples

@pytest.mark.parametrize("spec, text", [
    (SEED, r"\frac{\partial L}{\partial W^{(2)}} = a^{(1)} \delta^{(2)}"),  # shapes
    (CLASSIFIER, r"\delta^{(1)} = W^{(2)} \delta^{(2)} \odot \sigma'(z^{(1)})"),  # shapes
    (SEED, r"\frac{\partial L}{\partial W^{(2)}_{jk}} = \delta^{(2)}_j a^{(1)}_j"),  # one letter, two layers
    (CLASSIFIER, r"\delta^{(1)}_j = \sigma'(z^{(1)}_j) W^{(2)}_{kj}\delta^{(2)}_k"),  # sum missing
])
def test_every_incorrect_claim_has_a_concrete_counterexample(spec, text):
    v = judged(spec, "seed", [text])[0]
    assert v.verdict == "incorrect", v.as_dict()
    ce = v.counterexample
    assert ce["parameters"] and ce["x"] is not None and ce["target"] is not None
    assert ce["left"] is not None and ce["right"] is not None and ce["left"] != ce["right"]


# ----------------------------------------------------------------------------- named functions

def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_sigma_is_the_sigmoid_on_a_tanh_sigmoid_network():
    # independent truth: the network's forward pass, output layer sigmoid
    net = NumericNetwork(derivation(TANH_NET).network)
    params, x, _ = net.random_point(np.random.default_rng(1))
    _, acts = net.forward(params, x)
    assert np.allclose(acts[2], _sigmoid(params["W2"] @ acts[1] + params["b2"]))
    assert np.allclose(acts[1], np.tanh(params["W1"] @ x + params["b1"]))
    lines = [r"a^{(2)} = \sigma(W^{(2)} a^{(1)} + b^{(2)})", r"a^{(1)} = \tanh(W^{(1)} x + b^{(1)})",
             r"a^{(2)} = \sigma(z^{(2)})"]
    assert [v.verdict for v in judged(TANH_NET, "seed", lines)] == ["correct"] * 3
    # in a profile where sigma is not the generic activation, sigma on the tanh layer is wrong
    v = judged(TANH_NET, "wikipedia", [r"o^{(1)}_j = \sigma(net^{(1)}_j)"])[0]
    assert v.verdict == "incorrect"


def test_loss_override_in_the_spec_is_a_name():
    # independent truth: dLoss/dw_{j,k} of the output layer = -a_j Delta_k with Delta_k = (t - a) g'(in)
    net = NumericNetwork(derivation(LOSS_NAMED).network)
    params, x, t = net.random_point(np.random.default_rng(2))
    _, acts = net.forward(params, x)
    h = 1e-6
    up, down = ({k: v.copy() for k, v in params.items()} for _ in range(2))
    up["W2"][0, 1] += h
    down["W2"][0, 1] -= h
    fd = (net.loss(up, x, t) - net.loss(down, x, t)) / (2 * h)
    out = acts[2][0]
    delta_k = (t[0] - out) * out * (1 - out)
    assert fd == pytest.approx(-acts[1][1] * delta_k, rel=1e-5)
    v = judged(LOSS_NAMED, None, [r"\frac{\partial Loss}{\partial w_{j,k}} = -a_j\Delta_k"])[0]
    assert v.verdict == "correct", v.as_dict()
    v = judged(LOSS_NAMED, None, [r"\frac{\partial Loss}{\partial w_{j,k}} = a_j\Delta_k"])[0]
    assert v.verdict == "incorrect"


# ----------------------------------------------------------------------------- the documents' own notation
# Expected verdicts: the batch form with one row per sample (dE/dW = (1/B) Delta^T A, Z = X W^T + 1 b^T),
# the spec's own hyper-parameters and layer widths, and d b / d b = 1 -- each with a wrong variant that
# must be judged incorrect, so the new readings cannot pass everything.

DEEP_MIXED = str(ROOT / "examples" / "deep_mixed.toml")
XOR = str(ROOT / "examples" / "xor.yaml")


@pytest.mark.parametrize("text, verdict", [
    (r"\frac{\partial L}{\partial W^{(2)}} = \frac{1}{B} \boldsymbol{\delta}^{(2)T} \mathbf{a}^{(1)}", "correct"),
    (r"\frac{\partial L}{\partial W^{(2)}} = \boldsymbol{\delta}^{(2)T} \mathbf{a}^{(1)}", "incorrect"),
    (r"\frac{\partial L}{\partial W^{(1)}} = \frac{1}{B} \boldsymbol{\delta}^{(1)T} \mathbf{X}", "correct"),
    (r"\frac{\partial L}{\partial W^{(1)}} = \frac{1}{B} \mathbf{X}^{T} \boldsymbol{\delta}^{(1)}", "incorrect"),
    (r"\frac{\partial L}{\partial b^{(1)}} = \frac{1}{B} \boldsymbol{\delta}^{(1)T} \mathbf{1}", "correct"),
    (r"\frac{\partial L}{\partial b^{(1)}} = \boldsymbol{\delta}^{(1)T} \mathbf{1}", "incorrect"),
    (r"\mathbf{z}^{(1)} = \mathbf{X} \bigl(W^{(1)}\bigr)^{T} + \mathbf{1} b^{(1)T}", "correct"),
    (r"\mathbf{z}^{(1)} = \mathbf{X} \bigl(W^{(1)}\bigr)^{T}", "incorrect"),
    (r"\boldsymbol{\delta}^{(1)} = \boldsymbol{\delta}^{(2)} W^{(2)} \odot \sigma'\bigl(\mathbf{z}^{(1)}\bigr)",
     "correct"),
    (r"\boldsymbol{\delta}^{(1)} = \boldsymbol{\delta}^{(2)} W^{(2)} \odot \sigma\bigl(\mathbf{z}^{(1)}\bigr)",
     "incorrect"),
])
def test_batch_form_with_one_row_per_sample(text, verdict):
    v = judge(text, new_context(derivation(SEED), "seed"))
    assert v.verdict == verdict, v
    if verdict == "correct":
        assert "stacked as rows" in v.note


def test_bold_column_vectors_are_still_read_as_one_sample():
    """The row reading is a fallback: a bold one-sample matrix form keeps its column reading."""
    v = judge(r"\boldsymbol{\delta}^{(1)} = \bigl(W^{(2)}\bigr)^{T} \boldsymbol{\delta}^{(2)} \odot "
              r"\sigma'\bigl(\mathbf{z}^{(1)}\bigr)", new_context(derivation(SEED), "seed"))
    assert v.verdict == "correct" and "rows" not in (v.note or "")


@pytest.mark.parametrize("spec, text, verdict", [
    (SEED, r"\alpha = 0.5", "correct"),
    (SEED, r"\alpha = 0.05", "incorrect"),
    (XOR, r"\mu = 0.9", "correct"),
    (XOR, r"\mu = 0.5", "incorrect"),
    (CLASSIFIER, r"\beta_2 = 0.999", "correct"),
    (CLASSIFIER, r"\epsilon = 1 \times 10^{-8}", "correct"),
    (CLASSIFIER, r"\epsilon = 1 \times 10^{-6}", "incorrect"),
])
def test_hyper_parameters_are_the_specs(spec, text, verdict):
    assert judge(text, new_context(derivation(spec), "seed")).verdict == verdict


def test_optimizer_state_cannot_be_checked_and_says_why():
    v = judge(r"v_{W^{(2)}} \leftarrow \mu v_{W^{(2)}} - \alpha \frac{\partial L}{\partial W^{(2)}}",
              new_context(derivation(XOR), "seed"))
    assert v.verdict == "cannot-check" and "optimizer's running state" in v.reason


@pytest.mark.parametrize("text, verdict", [
    (r"n_{0} = 2", "correct"), (r"n_{1} = 3", "correct"), (r"n_{1} = 2", "incorrect"),
    (r"z^{(2)}_{j} = \sum_{k=1}^{n_{1}} W^{(2)}_{jk} a^{(1)}_{k} + b^{(2)}_{j}", "correct"),
    (r"z^{(2)}_{j} = \sum_{k=1}^{n_{0}} W^{(2)}_{jk} a^{(1)}_{k} + b^{(2)}_{j}", "incorrect"),
    (r"\frac{\partial b^{(1)}_{2}}{\partial b^{(1)}_{2}} = 1", "correct"),
    (r"\frac{\partial z^{(1)}_{2}}{\partial b^{(1)}_{2}} = \frac{\partial b^{(1)}_{2}}{\partial b^{(1)}_{2}}", "correct"),
    (r"\frac{\partial b^{(1)}_{2}}{\partial b^{(1)}_{1}} = 1", "incorrect"),
])
def test_widths_and_derivatives_of_a_parameter(text, verdict):
    assert judge(text, new_context(derivation(SEED), "seed")).verdict == verdict


@pytest.mark.parametrize("notation, text, verdict", [
    ("wikipedia", r"\varphi_{2}(u) = \tanh(u)", "correct"),
    ("wikipedia", r"\varphi_{1}(u) = \tanh(u)", "incorrect"),
    ("wikipedia", r"\varphi_{2}'(\mathrm{net}^{(2)}_{j}) = 1 - \varphi_{2}^{2}(\mathrm{net}^{(2)}_{j})", "correct"),
    ("bishop", r"z^{(3)}_{j} = h_{3}(a^{(3)}_{j})", "correct"),
    ("seed", r"a^{(3)}_{j} = \operatorname{id}(z^{(3)}_{j})", "correct"),
    ("seed", r"a^{(2)}_{j} = \operatorname{id}(z^{(2)}_{j})", "incorrect"),
    ("aima", r"\Delta_{j} = g_{2}'(\mathrm{in}_{j}) \sum_{k=1}^{n_{3}} w_{j,k} \Delta_{k}", "correct"),
    ("aima", r"\Delta_{j} = g_{1}'(\mathrm{in}_{j}) \sum_{k=1}^{n_{2}} w_{j,k} \Delta_{k}", "correct"),
    ("aima", r"\Delta_{j} = g_{1}'(\mathrm{in}_{j}) \sum_{k=1}^{n_{3}} w_{j,k} \Delta_{k}", "incorrect"),
])
def test_activation_with_its_layer_as_a_subscript(notation, text, verdict):
    """deep_mixed: relu, tanh, identity; the subscript names the layer whose activation is meant."""
    assert judge(text, new_context(derivation(DEEP_MIXED), notation)).verdict == verdict
