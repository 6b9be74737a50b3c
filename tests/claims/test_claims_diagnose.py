"""Diagnoses of the mistakes seen in courses, and the fixes the checker suggests.

Each wrong claim below is a textbook formula with one mistake of the issue-9 list; the
checker must flag it, name the mistake, give a concrete counterexample, and suggest a fix
that is itself judged correct in the same notation and reads as a person would write it.
The batch-mean rule is confirmed independently with finite differences of the mean loss.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from symbackprop import check, derive
from symbackprop.claims.judge import judge, new_context
from symbackprop.engine.numeric import NumericNetwork

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed_2_3_1.yaml")
WIKI_NET = str(ROOT / "examples" / "claims" / "wikipedia_net.yaml")
CLASSIFIER = str(ROOT / "examples" / "classifier_4_5_3.yaml")
NG = {"name": "ng-2-4-1", "inputs": 2, "loss": "binary_cross_entropy",
      "layers": [{"units": 4, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
      "optimizer": {"name": "sgd", "learning_rate": 0.1}}
NIELSEN = {"name": "nielsen-2-3-3-2", "inputs": 2, "loss": "half_sse", "optimizer": {"name": "sgd", "learning_rate": 0.5},
           "layers": [{"units": 3, "activation": "sigmoid"}, {"units": 3, "activation": "sigmoid"},
                      {"units": 2, "activation": "sigmoid"}]}
BISHOP = {"name": "bishop-2-3-2", "inputs": 2, "loss": "half_sse", "optimizer": {"name": "sgd", "learning_rate": 0.5},
          "layers": [{"units": 3, "activation": "tanh", "bias": False},
                     {"units": 2, "activation": "identity", "bias": False}]}

_CACHE: dict = {}


def judged(spec, notation, lines):
    key = spec if isinstance(spec, str) else spec["name"]
    if key not in _CACHE:
        _CACHE[key] = derive(spec, verify=False)
    ctx = new_context(_CACHE[key], notation)
    return [judge(line, ctx) for line in lines]


WRONG = [
    # (spec, notation, claim, words the diagnosis must contain)
    (NIELSEN, "seed", r"\delta^L = (y - a^L) \odot \sigma'(z^L)", "sign"),
    (SEED, "seed", r"\delta^{(2)} = a^{(2)} - y", "missing activation-derivative"),
    (WIKI_NET, "wikipedia", r"\delta_j = \frac{\partial E}{\partial o_j} \varphi(\text{net}_j)",
     "missing activation-derivative"),
    (SEED, "seed", r"\delta^{(1)} = (W^{(2)})^T \delta^{(2)} \odot \sigma'(a^{(1)})", "instead of z"),
    (NIELSEN, "seed", r"\sigma'(z^{(1)}) = z^{(1)} \odot (1 - z^{(1)})", "wrong argument"),
    (BISHOP, "bishop", r"\delta_j = (1 - a_j^2)\sum_{k=1}^{K} w_{kj}\delta_k", "wrong argument"),
    (CLASSIFIER, "seed", r"\delta^{(1)} = W^{(2)} \delta^{(2)} \odot \sigma'(z^{(1)})", "transposed"),
    (SEED, "seed", r"\frac{\partial L}{\partial W^{(2)}} = a^{(1)} \delta^{(2)T}", "transposed"),
    (NIELSEN, "seed", r"\delta^l = ((w^{l})^T \delta^{l+1}) \odot \sigma'(z^l)", "layer"),
    (SEED, "seed", r"\frac{\partial L}{\partial W^{(2)}} = \delta^{(2)} \cdot x^T", "layer"),
    (CLASSIFIER, "seed", r"\delta^{(1)}_j = \sigma'(z^{(1)}_j) W^{(2)}_{kj}\delta^{(2)}_k", "sum"),
    (SEED, "seed", r"\delta^{(2)} = 2(a^{(2)} - y) \odot \sigma'(z^{(2)})", "constant factor"),
    (NG, "seed", r"dW^{[2]} = dZ^{[2]} A^{[1]T}", "1/m"),
    (NG, "seed", r"db^{[1]} = \sum_{i=1}^{m} dz^{[1](i)}", "1/m"),
    (SEED, "seed", r"z^{(1)} = W^{(1)} x", "bias"),
    (SEED, "seed", r"W^{(2)} = W^{(2)} + \alpha \frac{\partial L}{\partial W^{(2)}}", "ascent"),
    (WIKI_NET, "wikipedia", r"\Delta w_{ij} = \eta o_i \delta_j", "ascent"),
    (CLASSIFIER, "seed", r"\delta^{(2)} = (\hat{y} - y) \odot \hat{y} \odot (1 - \hat{y})", "softmax"),
    (SEED, "seed", r"z^{(1)} = W^{(1)} a^{(1)} + b^{(1)}", "instead of x"),
    (NIELSEN, "seed", r"\delta^l = (w^{l+1})^T (\delta^{l+1} \odot \sigma'(z^l))", "Hadamard"),
    (SEED, "seed", r"\frac{\partial L}{\partial W^{(1)}} = \delta^{(1)} \odot x", "Hadamard"),
    (NIELSEN, "seed", r"\frac{\partial C}{\partial b^l_j} = \delta^l_j \sigma'(z^l_j)", "extra activation-derivative"),
    (NG, "seed", r"dz^{[2]} = (a^{[2]} - y) a^{[2]}(1 - a^{[2]})", "extra activation-derivative"),
    (SEED, "aima", r"w_{j,k} \leftarrow w{i,j} + \alpha \times a_i \times \Delta_j", "index"),
    (SEED, "seed", r"W^{(2)} \leftarrow - \alpha \delta^{(2)} a^{(1)T}", "current value"),
]


@pytest.mark.parametrize("spec, notation, text, words", WRONG)
def test_wrong_claim_is_diagnosed_with_a_counterexample_and_a_fix(spec, notation, text, words):
    v = judged(spec, notation, [text])[0]
    assert v.verdict == "incorrect", v.as_dict()
    assert words.lower() in v.diagnosis.lower(), v.diagnosis
    ce = v.counterexample
    assert ce["parameters"] and ce["x"] is not None and ce["left"] is not None and ce["right"] is not None
    assert v.expected, "a fix in the claim's own notation"
    for bad in ("--", "+ -", "- -", r"\left(", "^{l + 1}"):
        assert bad not in v.expected, v.expected
    fixed = judged(spec, notation, [v.expected])[0]
    assert fixed.verdict == "correct", (v.expected, fixed.as_dict())


def test_every_diagnosis_of_the_issue_is_covered():
    words = {w for *_, w in WRONG}
    assert {"sign", "missing activation-derivative", "instead of z", "transposed", "layer", "sum",
            "constant factor", "1/m", "bias", "ascent", "softmax", "instead of x", "Hadamard"} <= words


def test_batch_mean_rule_by_finite_differences():
    """Ng: dW2 = (1/m) dZ2 A1^T with dZ2 = A2 - Y (sigmoid + cross-entropy), J the mean loss."""
    net = NumericNetwork(derive(NG, verify=False).network)
    rng = np.random.default_rng(5)
    params, _, _ = net.random_point(rng)
    xs = rng.normal(size=(2, 6))
    ys = rng.uniform(0.1, 0.9, size=(1, 6))

    def mean_loss(p):
        return np.mean([net.loss(p, xs[:, i], ys[:, i]) for i in range(6)])

    h = 1e-6
    up, down = ({k: v.copy() for k, v in params.items()} for _ in range(2))
    up["W2"][0, 2] += h
    down["W2"][0, 2] -= h
    fd = (mean_loss(up) - mean_loss(down)) / (2 * h)
    a1 = np.tanh(params["W1"] @ xs + params["b1"].reshape(-1, 1))
    a2 = 1 / (1 + np.exp(-(params["W2"] @ a1 + params["b2"].reshape(-1, 1))))
    dz2 = a2 - ys
    assert fd == pytest.approx((dz2 @ a1.T / 6)[0, 2], rel=1e-5)
    assert abs(fd - (dz2 @ a1.T)[0, 2]) > 1e-3  # without 1/m it is m times too large
    verdicts = judged(NG, "seed", [r"dW^{[2]} = \frac{1}{m} dZ^{[2]} A^{[1]T}", r"dZ^{[2]} = A^{[2]} - Y",
                                   r"db^{[2]} = \frac{1}{m} np.sum(dZ^{[2]}, axis=1, keepdims=True)",
                                   r"Z^{[1]} = W^{[1]} X + b^{[1]}"])
    assert [v.verdict for v in verdicts] == ["correct"] * 4, [v.as_dict() for v in verdicts]
    assert "batch" in verdicts[0].note


def test_a_correct_claim_has_no_diagnosis():
    for v in judged(SEED, "seed", [r"\delta^{(1)} = (W^{(2)})^T \delta^{(2)} \odot \sigma'(z^{(1)})"]):
        assert v.verdict == "correct" and v.diagnosis is None and v.expected is None


# ----------------------------------------------------------------------------- fixes found by mutation testing

def _unreadable(formula: str) -> str | None:
    """tests/claims/test_claims_fixes.py's rule of a fix that reads as a person writes it."""
    import importlib.util

    if "fixes" in _CACHE:
        return _CACHE["fixes"].unreadable(formula)
    spec = importlib.util.spec_from_file_location("fixes_for_diagnose", ROOT / "tests" / "claims" /
                                                  "test_claims_fixes.py")
    fixes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixes)
    _CACHE["fixes"] = fixes
    return fixes.unreadable(formula)


@pytest.mark.parametrize("text", [  # two mistakes each: no single repair makes them correct
    r"\frac{\partial L}{\partial W^{(2)}_{jk}} = -\delta^{(1)}_j a^{(1)}_k",  # wrong layer and sign
    r"\frac{\partial L}{\partial W^{(1)}_{jk}} = \delta^{(1)}_k a^{(2)}_j",  # transposed and wrong layer
    r"z^{(2)}_j = \sum_k W^{(2)}_{kj} a^{(2)}_k + b^{(2)}_j",  # transposed weight and wrong layer
    r"\delta^{(1)}_j = -\sigma'(z^{(1)}_j) \sum_k W^{(2)}_{jk} \delta^{(2)}_k",  # transposed weight and sign
])
def test_claim_whose_indices_fit_no_layer_is_incorrect_with_the_true_formula(text):
    """Indices that fit no layer of the 4-5-3 classifier and no one-step repair: "incorrect", with a concrete
    counterexample and the derivation's formula for the left side at that unit, which the checker judges correct
    when fed back (mutation survivor ``checker._conflicting_indices`` 49)."""
    spec = CLASSIFIER
    (v,) = check(spec, text)
    assert v.verdict == "incorrect", v.as_dict()
    assert "fits the indices" in v.diagnosis and v.counterexample, v.as_dict()
    assert v.expected, v.as_dict()
    formula = re.sub(r"\s*\\text\{[^{}]*\}$", "", v.expected)  # " \text{ (at j=1, k=1)}"
    assert check(spec, formula)[-1].verdict == "correct", formula
    assert _unreadable(formula) is None, formula


@pytest.mark.parametrize("text,layer", [  # a general layer off by one more than it should be
    (r"\frac{\partial E}{\partial W^{(l)}} = \delta^{(l)} (a^{(l-2)})^T", "l - 1"),
    (r"\delta^{(l)} = ((W^{(l+2)})^T \delta^{(l+1)}) \odot \sigma'(z^{(l)})", "l + 1"),
    (r"\delta^{(l)}_j = \sigma'(z^{(l)}_j) \sum_k W^{(l+2)}_{kj} \delta^{(l+1)}_k", "l + 1"),
])
def test_layer_fix_writes_the_layer_as_a_person_does(text, layer):
    """The textbook dE/dW^(l) = delta^(l) (a^(l-1))^T and delta^(l) = ((W^(l+1))^T delta^(l+1)) * sigma'(z^(l)),
    with one layer moved by one: the fix moves it back, is judged correct, and writes ``l - 1``, never
    ``l - 2 + 1`` (mutation survivor ``diagnose._shift`` 20; the layer repair of every occurrence built
    ``l-2+1`` before it used ``_shift``)."""
    spec = CLASSIFIER
    (v,) = check(spec, text)
    assert v.verdict == "incorrect" and v.diagnosis.startswith("wrong layer"), v.as_dict()
    layers = re.findall(r"\^\{\(([^(){}]*)\)", v.expected)
    assert layer in [x.replace(" ", "").replace("+", " + ").replace("-", " - ") for x in layers], v.expected
    assert all(re.fullmatch(r"\d+|[a-zA-Z](\s*[+-]\s*\d+)?", x) for x in layers), v.expected
    assert check(spec, v.expected)[-1].verdict == "correct", v.expected
    assert _unreadable(v.expected) is None, v.expected


@pytest.mark.parametrize("text,fixed", [  # a transpose too many on the textbook z = W x + b and dE/dW = delta a^T
    (r"z^{(1)} = (W^{(1)})^T x + b^{(1)}", r"z^{(1)} = W^{(1)} x + b^{(1)}"),
    (r"\frac{\partial E}{\partial W^{(2)}} = (\delta^{(2)})^T (a^{(1)})^T",
     r"\frac{\partial E}{\partial W^{(2)}} = \delta^{(2)} a^{(1)T}"),
])
def test_transpose_too_many_is_removed_not_transposed_again(text, fixed):
    """The fix removes the extra transpose; transposing it back, (W^T)^T, is correct too but is not how a person
    writes W (mutation survivor ``diagnose.candidates`` 404).  The expected fixes are the textbook formulas."""
    (v,) = check(CLASSIFIER, text)
    assert v.verdict == "incorrect" and v.diagnosis.startswith("transposed"), v.as_dict()
    assert v.expected.replace(" ", "") == fixed.replace(" ", ""), v.expected
    assert check(CLASSIFIER, v.expected)[-1].verdict == "correct", v.expected


def test_outer_product_in_the_wrong_order_is_swapped_back():
    """a^T delta, a 1x5 times a 3x1 matrix, for the textbook dE/dW^(2) = delta^(2) (a^(1))^T: the fix swaps the two
    factors and is judged correct (mutation survivor ``diagnose.candidates`` 475)."""
    (v,) = check(CLASSIFIER, r"\frac{\partial E}{\partial W^{(2)}} = (a^{(1)})^T \delta^{(2)}")
    assert v.verdict == "incorrect" and v.expected, v.as_dict()
    assert v.expected.replace(" ", "") == r"\frac{\partialE}{\partialW^{(2)}}=\delta^{(2)}a^{(1)T}", v.expected
    assert check(CLASSIFIER, v.expected)[-1].verdict == "correct", v.expected
