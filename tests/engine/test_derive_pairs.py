"""Acceptance: for every (output activation, loss) pair the registry allows, on nets of
depth 1-3, every gradient equals sympy.diff of the closed-form E, computed here."""

import random

import pytest
import sympy as sp

from symbackprop import derive
from symbackprop.engine.verify import constraint_substitution, symbolic_equal
from symbackprop.registry import ops


def _net(out_act, loss, depth):
    hidden = out_act if out_act != "softmax" else "tanh"
    m = 2 if (out_act == "softmax" or depth == 1) else 1
    widths = {1: [], 2: [2], 3: [1, 1]}[depth]
    layers = [{"units": w, "activation": hidden} for w in widths] + [{"units": m, "activation": out_act}]
    return {"name": f"{out_act}-{loss}-{depth}", "inputs": 2, "layers": layers, "loss": loss}


CASES = [(a, l, depth) for a, l in ops.allowed_pairs() for depth in (1, 2, 3)]


@pytest.mark.parametrize("act,loss,depth", CASES, ids=[f"{a}-{l}-d{d}" for a, l, d in CASES])
def test_every_gradient_equals_sympy_diff_of_closed_form(act, loss, depth):
    d = derive(_net(act, loss, depth), verify=False)
    E = d.loss
    sub = constraint_substitution(d)  # softmax + CCE assumes targets sum to one
    rng = random.Random(hash((act, loss, depth)) & 0xFFFF)
    point = {s: sp.Rational(rng.randint(-9, 9), 7) for s in [*d.parameters, *d.inputs]}
    point.update({t: sp.Rational(rng.randint(1, 9), 10) for t in d.targets})
    point = {k: v for k, v in point.items() if k not in sub}
    for p in d.parameters:
        ours = d.gradient(p).xreplace(sub)
        truth = sp.diff(E, p).xreplace(sub)  # the test differentiates the closed form itself
        assert symbolic_equal(ours, truth), f"{p}: {ours} != {truth}"
        # and the two agree as numbers at a rational point, to 30 digits
        a, b = ours.xreplace(point).evalf(30), truth.xreplace(point).evalf(30)
        assert abs(a - b) <= sp.Float("1e-25", 30) * (1 + abs(b)), p


def test_symbolic_equal_rejects_wrong_gradients():
    d = derive(_net("sigmoid", "half_sse", 2), verify=False)
    p, q = d.parameters[0], d.parameters[1]
    truth = sp.diff(d.loss, p)
    assert not symbolic_equal(d.gradient(p) * 2, truth)
    assert not symbolic_equal(-d.gradient(p), truth)
    assert not symbolic_equal(d.gradient(q), truth)


def test_cross_entropy_deltas_simplify_to_error():
    for act, loss in [("sigmoid", "binary_cross_entropy"), ("softmax", "categorical_cross_entropy")]:
        d = derive({"inputs": 2, "layers": [{"units": 3, "activation": act}], "loss": loss}, verify=False)
        assert d.simplifies_to_error
        for j in (1, 2, 3):
            assert sp.expand(d.delta(1, j) - (d.graph.a[1][j - 1] - d.targets[j - 1])) == 0
            assert "simplification" in [s.rule for s in d.steps(d.parameters[0])[-4:]]
    d = derive({"inputs": 2, "layers": [{"units": 3, "activation": "sigmoid"}], "loss": "half_sse"}, verify=False)
    assert not d.simplifies_to_error


def test_textbook_delta_recursion_for_the_seed_network():
    """The textbook result (checked, never pasted): delta1_j = a(1-a) W2_1j delta2_1."""
    d = derive({"inputs": 2, "layers": [{"units": 3, "activation": "sigmoid"},
                                        {"units": 1, "activation": "sigmoid"}], "loss": "half_sse"}, verify=False)
    g = d.graph
    a2, t = g.a[2][0], g.t[0]
    assert sp.expand(d.delta(2, 1) - (a2 - t) * a2 * (1 - a2)) == 0
    for j in (1, 2, 3):
        a1 = g.a[1][j - 1]
        textbook = a1 * (1 - a1) * g.W[2][0][j - 1] * d.delta_symbol(2, 1)
        assert sp.expand(d.delta(1, j) - textbook) == 0
    assert d.compact_gradient(g.W[1][1][0]) == d.delta_symbol(1, 2) * g.x[0]
    assert d.compact_gradient(g.b[2][0]) == d.delta_symbol(2, 1)
