"""The general index form: width-independent, collapsed, and equal to direct differentiation."""

import pytest
import sympy as sp

from symbackprop import derive, load
from symbackprop.engine import general
from symbackprop.engine.general import GeneralForm, J, K, base, check_widths, size


def test_index_form_of_the_seed_network():
    g = GeneralForm(load("examples/seed_2_3_1.yaml"))
    assert not g.layers[1].delta.has(sp.KroneckerDelta) and not g.layers[1].delta.has(sp.Piecewise)
    assert g.layers[1].dz_dW == base("a", 0)[K]
    assert g.layers[2].dz_dW == base("a", 1)[K]
    assert g.layers[1].dnext_da == base("W", 2)[K, J]
    a1, d2 = base("a", 1), base("delta", 2)
    textbook = a1[J] * (1 - a1[J]) * sp.Sum(base("W", 2)[K, J] * d2[K], (K, 1, size(2)))
    assert sp.simplify(g.layers[1].delta - textbook) == 0
    assert g.layers[1].dz_dW_raw.has(sp.KroneckerDelta)  # SymPy produced the delta; we collapsed it


def test_softmax_cross_entropy_index_form_is_a_minus_t():
    g = GeneralForm(load("examples/classifier_4_5_3.yaml"))
    assert sp.expand(g.layers[2].delta - (base("a", 2)[J] - base("t")[J])) == 0


@pytest.mark.parametrize("path", ["examples/seed_2_3_1.yaml", "examples/xor.yaml", "examples/deep_mixed.toml",
                                  "examples/classifier_4_5_3.yaml"])
def test_general_form_agrees_at_two_widths(path):
    assert check_widths(load(path), (2, 3)) == []


def test_width_check_can_fail(monkeypatch):
    original = general.output_delta
    monkeypatch.setattr(general, "output_delta", lambda L, act, loss: 2 * original(L, act, loss))
    general.layer_form.cache_clear()
    try:
        assert check_widths(load("examples/seed_2_3_1.yaml"), (2,))
    finally:
        monkeypatch.undo()
        general.layer_form.cache_clear()


def test_collapse_picks_the_in_range_branch():
    expr = sp.Piecewise((base("a", 0)[K], size(0) >= K), (0, True))
    assert general.collapse(expr, [(K, size(0))]) == base("a", 0)[K]


def test_matrix_form_agrees_with_concrete_deltas():
    for path in ["examples/seed_2_3_1.yaml", "examples/classifier_4_5_3.yaml", "examples/deep_mixed.toml"]:
        d = derive(path, verify=False)
        assert d.matrix.check() == []
    eqs = {str(e.lhs): e.rhs for e in derive("examples/seed_2_3_1.yaml", verify=False).matrix.backward()}
    assert str(eqs["delta1"]) == "HadamardProduct(W2.T*delta2, fprime1)"
    assert str(eqs["dW1"]) == "delta1*x.T"


def test_matrix_check_can_fail():
    from symbackprop.engine.matrix import MatrixEquation, MatrixForm

    class NoTranspose(MatrixForm):
        def backward(self):
            eqs = super().backward()
            return [MatrixEquation(e.lhs, e.rhs.subs(self.W[2].T, self.W[2]), e.rule) if str(e.lhs) == "delta1"
                    else e for e in eqs]

    d = derive({"inputs": 2, "layers": [{"units": 2, "activation": "tanh"}, {"units": 2, "activation": "tanh"}],
                "loss": "half_sse"}, verify=False)
    assert NoTranspose(d).check()
