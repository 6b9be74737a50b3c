"""The chain-rule steps that every document prints (``Derivation.steps``), each checked as an equation.

Independent truth: every partial derivative in a step is recomputed here with ``sympy.diff`` of the
network's definitions (the forward pass from the variable's own layer to the loss), every delta
symbol is replaced by dE/dz computed the same way, and then both sides of the step are evaluated at
random points (inputs, targets, parameters; the z's and a's from the forward pass).  A step whose two
sides differ is a wrong line in the documents.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symbackprop import derive
from symbackprop.engine.derive import E, Step

EXAMPLES = ["examples/seed_2_3_1.yaml", "examples/classifier_4_5_3.yaml", "examples/deep_mixed.toml",
            "examples/xor.yaml"]


class StepOracle:
    """Values of the symbols and derivatives that appear in steps, from the definitions alone."""

    def __init__(self, d):
        self.d, self.g = d, d.graph
        g = self.g
        self.layer = {}
        for l in range(1, d.L + 1):
            self.layer.update({s: ("z", l) for s in g.z[l]})
            self.layer.update({s: ("a", l) for s in g.a[l]})
        self.layer.update({s: ("a", 0) for s in g.x})
        self.deltas = {d.delta_symbol(l, j): sp.diff(self.loss_from("z", l), g.z[l][j - 1])
                       for l in range(1, d.L + 1) for j in range(1, len(g.z[l]) + 1)}

    def loss_from(self, kind: str, l: int) -> sp.Expr:
        """E written in the symbols of layer l's z (kind "z") or a (kind "a"), parameters and targets."""
        g = self.g
        cur = dict(zip(g.a[l], g.a_def[l])) if kind == "z" else {}
        for m in range(l + 1, self.d.L + 1):
            z = {zs: zd.xreplace(cur) for zs, zd in zip(g.z[m], g.z_def[m])}
            cur = {a: ad.xreplace(z) for a, ad in zip(g.a[m], g.a_def[m])}
        return g.loss_def.xreplace(cur)

    def derivative(self, f: sp.Expr, v: sp.Symbol) -> sp.Expr:
        g = self.g
        if f == E:
            if v in self.layer:
                return sp.diff(self.loss_from(*self.layer[v]), v)
            return sp.diff(self.loss_from("a", 0), v)  # a parameter: E in the inputs
        if f in self.layer:
            kind, l = self.layer[f]
            definition = (g.z_def if kind == "z" else g.a_def)[l][(g.z if kind == "z" else g.a)[l].index(f)]
            return sp.diff(definition, v)
        return sp.diff(f, v)

    def value(self, expr: sp.Expr) -> sp.Expr:
        expr = expr.replace(lambda e: isinstance(e, sp.Derivative),
                            lambda e: self.derivative(e.expr, e.variables[0]))
        return expr.xreplace(self.deltas)

    def point(self, rng) -> dict:
        g, d = self.g, self.d
        values = {s: rng.uniform(-1, 1) for s in g.x + g.parameters}
        t = rng.uniform(0.1, 1, len(g.t))
        if d.network.loss.targets_sum_to_one:
            t = t / t.sum()
        values.update(zip(g.t, t))
        for l in range(1, d.L + 1):
            for zs, zd in zip(g.z[l], g.z_def[l]):
                values[zs] = float(zd.xreplace(values))
            for a, ad in zip(g.a[l], g.a_def[l]):
                values[a] = float(sp.N(ad.xreplace(values)))
        return values


def step_errors(d, steps: list[Step], oracle: StepOracle, points) -> list[str]:
    bad = []
    for s in steps:
        lhs, rhs = oracle.value(s.lhs), oracle.value(s.rhs)
        for values in points:
            left, right = complex(sp.N(lhs.xreplace(values))), complex(sp.N(rhs.xreplace(values)))
            if abs(left - right) > 1e-9 * max(1.0, abs(left)):
                bad.append(f"{s.rule}: {s.lhs} = {s.rhs} ({left} != {right})")
                break
    return bad


@pytest.mark.parametrize("path", EXAMPLES)
def test_every_printed_step_is_a_true_equation(path):
    d = derive(path, verify=False)
    oracle = StepOracle(d)
    rng = np.random.default_rng(14)
    points = [oracle.point(rng) for _ in range(2)]
    for l in range(1, d.L + 1):
        for p in d.representatives(l):
            assert step_errors(d, d.steps(p), oracle, points) == [], (path, p)


def test_a_wrong_step_is_caught():
    d = derive("examples/seed_2_3_1.yaml", verify=False)
    oracle = StepOracle(d)
    points = [oracle.point(np.random.default_rng(1))]
    p = d.graph.W[1][0][1]
    steps = d.steps(p)
    assert step_errors(d, steps, oracle, points) == []
    wrong = [Step(s.rule, s.lhs, 2 * s.rhs) if s.rule == "derivative of the activation" else s for s in steps]
    assert step_errors(d, wrong, oracle, points)
    dropped = [Step(steps[0].rule, steps[0].lhs, steps[0].rhs.args[0])] + steps[1:]  # dz/dp factor lost
    assert step_errors(d, dropped, oracle, points)


def test_step_labels_follow_the_textbook_chain():
    """Rule names in the order a textbook derivation goes (backprop: chain rule, sum rule, product rule,
    definition of delta, then delta's own chain), and notes that name the right layer and reason."""
    d = derive("examples/seed_2_3_1.yaml", verify=False)
    steps = d.steps(d.graph.W[1][0][1])
    one_term = "sum rule (only one term varies)"
    assert [s.rule for s in steps] == [
        "chain rule", one_term, "constant factor rule", "definition of delta",
        "chain rule", one_term, "constant factor rule", "derivative of the activation",
        "derivative of the activation (convenient form)", "result", "result"]
    notes = [s.note for s in steps]
    assert "z1_1" in notes[0] and "W1_1_2" in notes[1] and notes[3] == "delta1_1 = dE/dz1_1"
    assert "layer 2" in notes[4] and "z2_k" in notes[5] and "sigmoid" in notes[7]
    assert "output" in notes[8] and "recursion" in notes[9]
    bias = d.steps(d.graph.b[1][0])
    assert [s.rule for s in bias[:3]] == ["chain rule", one_term, "derivative of a variable by itself"]
    out = derive("examples/classifier_4_5_3.yaml", verify=False)
    steps = out.steps(out.graph.W[2][0][1])
    rules = [s.rule for s in steps]
    assert rules[4:] == ["chain rule", "derivative of the loss", "derivative of the activation", "substitution",
                         "simplification", "sum of the targets is one", "result"]
    assert "softmax" in steps[4].note and "a - t" in steps[8].note and "sum to one" in steps[8].note
    out = d.steps(d.graph.W[2][0][0])  # the seed's sigmoid output under half SSE: no simplification
    assert [s.rule for s in out[4:]] == ["chain rule", "derivative of the loss", "derivative of the activation",
                                         "derivative of the activation (convenient form)", "result", "result"]
