"""Every labelled step is a true equation, and its rule is the one that applies.

For the general index-form steps (:func:`symbackprop.engine.steps.general_steps`) of every dense
example and of every (output activation, loss) pair the registry allows, and for the concrete
chain-rule steps of ``Derivation.steps(p)``:

(a) **the two sides are equal.**  The steps are instantiated at widths 2 and 3 (every layer that
    wide, several index values j, k; a step marked ``where=Ne(k, j)`` only at k != j), every partial
    derivative is recomputed with ``sympy.diff`` of the network's own definitions (z = W a + b,
    a = f(z), E = loss(a, t): the forward graph), every delta is replaced by dE/dz computed the same
    way, and both sides are evaluated at random points of the forward pass.

(b) **the rule applies.**  Each rule of :data:`symbackprop.engine.derive.RULES` has a predicate that
    looks at the step's shape: the chain rule's right side is a (sum of) product(s) of derivatives
    that chain from the left side's function to its variable; the sum rule differentiates a sum
    (one term only: the other terms are free of the variable); the constant factor rule a product
    with one factor depending on the variable, the product rule two; a simplification holds as pure
    algebra (every derivative an opaque number, every symbol independent); a definition holds only
    once the definition is put in; a substitution replaces derivatives the earlier steps derived.
    Planted wrong labels (and a wrong side) are caught.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

import pytest
import sympy as sp

from symbackprop.engine.derive import RULES, Derivation, E, Step
from symbackprop.engine.general import J, K, size
from symbackprop.engine.steps import general_steps
from symbackprop.registry import ops
from symbackprop.spec import load

EXAMPLES = ["examples/seed_2_3_1.yaml", "examples/classifier_4_5_3.yaml", "examples/xor.yaml",
            "examples/deep_mixed.toml"]
PAIRS = ops.allowed_pairs()
CORE_PAIRS = [("softmax", "categorical_cross_entropy"), ("sigmoid", "binary_cross_entropy"),
              ("tanh", "half_sse"), ("relu", "mse")]
INDICES = {2: [(1, 1), (1, 2), (2, 1)], 3: [(2, 3), (3, 3), (1, 2)]}


def pair_network(output: str, loss: str):
    """A 2-3-2 net with the pair at its output and the same activation (sigmoid for softmax) hidden."""
    hidden = "sigmoid" if output == "softmax" else output
    return load({"name": f"{output}-{loss}", "inputs": 2, "loss": loss,
                 "layers": [{"units": 3, "activation": hidden}, {"units": 2, "activation": output}]})


def at_width(network, width: int):
    return replace(network, inputs=width, layers=tuple(replace(layer, units=width) for layer in network.layers))


# ----------------------------------------------------------------------------- instantiation


def expand_sums(expr: sp.Expr) -> sp.Expr:
    """Write out every Sum with integer limits, innermost first (no derivative evaluated)."""
    def write_out(s: sp.Sum) -> sp.Expr:
        (var, lo, hi), = s.limits
        return sp.Add(*(s.function.xreplace({var: sp.Integer(v)}) for v in range(int(lo), int(hi) + 1)))

    while expr.has(sp.Sum):
        expr = expr.replace(lambda e: isinstance(e, sp.Sum) and not e.function.has(sp.Sum), write_out)
    return expr


def to_symbols(expr: sp.Expr) -> sp.Expr:
    """``W2[1, 3]`` -> ``W2_1_3`` (the graph's names; real symbols)."""
    return expr.xreplace({e: sp.Symbol(f"{e.base.label}_{'_'.join(str(int(i)) for i in e.indices)}", real=True)
                          for e in expr.atoms(sp.Indexed)})


def instantiate(expr: sp.Expr, network, width: int, j: int, k: int) -> sp.Expr:
    e = expr.xreplace({size(l): sp.Integer(width) for l in range(network.depth + 1)})
    e = expand_sums(e).xreplace({J: sp.Integer(j), K: sp.Integer(k)})
    return to_symbols(e)


def concrete(step: Step, network, width: int, j: int, k: int) -> Step:
    return Step(step.rule, instantiate(step.lhs, network, width, j, k),
                instantiate(step.rhs, network, width, j, k), step.note)


def holds(step: Step, j: int, k: int) -> bool:
    return step.where is None or bool(step.where.xreplace({J: j, K: k}))


# ----------------------------------------------------------------------------- the oracle


class Oracle:
    """Values from the network's definitions only: sympy.diff of the forward graph, and a forward pass."""

    def __init__(self, d: Derivation):
        self.d, g = d, d.graph
        self.g = g
        self.kind = {s: ("a", 0) for s in g.x} | {s: ("t", 0) for s in g.t}
        for l in range(1, d.L + 1):
            self.kind |= {s: ("z", l) for s in g.z[l]} | {s: ("a", l) for s in g.a[l]}
            self.kind |= {s: ("W", l) for row in g.W[l] for s in row}
            self.kind |= {s: ("b", l) for s in (g.b[l] or [])}
        self.a_def = {s: e for l in range(1, d.L + 1) for s, e in zip(g.a[l], g.a_def[l])}
        self.z_def = {s: e for l in range(1, d.L + 1) for s, e in zip(g.z[l], g.z_def[l])}

    def unfold(self, f: sp.Expr, v: sp.Symbol) -> sp.Expr:
        """f written in the quantities that v feeds: E, then a and z from the top layer down to v's."""
        g, L = self.g, self.d.L
        kind, l = self.kind[v]
        a_from, z_from = {"z": (l, l + 1), "a": (l + 1, l + 1), "W": (l, l), "b": (l, l),
                          "t": (L + 1, L + 1)}[kind]
        f = f.xreplace({E: g.loss_def})
        for m in range(L, 0, -1):
            if m >= a_from:
                f = f.xreplace({s: self.a_def[s] for s in g.a[m]})
            if m >= z_from:
                f = f.xreplace({s: self.z_def[s] for s in g.z[m]})
        return f

    def derivative(self, f: sp.Expr, v: sp.Symbol) -> sp.Expr:
        return sp.diff(self.unfold(f, v), v)

    def delta(self, name: str) -> sp.Expr:
        l, j = name[len("delta"):].split("_")
        return self.derivative(E, self.g.z[int(l)][int(j) - 1])

    def value(self, expr: sp.Expr, point: dict) -> complex:
        e = expr.replace(lambda x: isinstance(x, sp.Derivative), lambda x: self.derivative(x.expr, x.variables[0]))
        e = e.xreplace({s: self.delta(s.name) for s in e.free_symbols if s.name.startswith("delta")})
        e = e.xreplace({E: self.g.loss_def})
        return complex(sp.N(e.xreplace(point)))

    def point(self, rng: random.Random) -> dict:
        g, d = self.g, self.d
        values = {s: rng.uniform(-1, 1) for s in g.x + g.parameters}
        t = [rng.uniform(0.1, 0.9) for _ in g.t]
        if d.network.loss.targets_sum_to_one:
            t = [v / sum(t) for v in t]
        values.update(zip(g.t, t))
        for l in range(1, d.L + 1):
            for zs, zd in zip(g.z[l], g.z_def[l]):
                values[zs] = float(zd.xreplace(values))
            for a, ad in zip(g.a[l], g.a_def[l]):
                values[a] = float(sp.N(ad.xreplace(values)))
        return values


def close(x: complex, y: complex) -> bool:
    return abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))


def algebra_equal(lhs: sp.Expr, rhs: sp.Expr, rng: random.Random, fix: dict | None = None) -> bool:
    """lhs = rhs as pure algebra: every derivative an opaque number, every symbol independent."""
    atoms = list(lhs.atoms(sp.Derivative) | rhs.atoms(sp.Derivative))
    for _ in range(2):
        opaque = {a: sp.Float(rng.uniform(-2, 2)) for a in atoms}
        l, r = lhs.xreplace(opaque), rhs.xreplace(opaque)
        if fix:
            l, r = l.xreplace(fix), r.xreplace(fix)
        free = {s: sp.Float(rng.uniform(0.1, 0.9)) for s in l.free_symbols | r.free_symbols}
        if not close(complex(sp.N(l.xreplace(free))), complex(sp.N(r.xreplace(free)))):
            return False
    return True


# ----------------------------------------------------------------------------- rule predicates


class Rules:
    """One predicate per rule, on a step instantiated at a width (and its index-form original)."""

    def __init__(self, oracle: Oracle, rng: random.Random):
        self.o, self.rng = oracle, rng

    def kind(self, s: sp.Expr):
        return self.o.kind.get(s, (None, None))

    def depends(self, f: sp.Expr, v: sp.Symbol) -> bool:
        return self.o.unfold(f, v).has(v)

    def as_derivative(self, e: sp.Expr):
        """(f, v) of a first derivative; a delta symbol counts as dE/dz."""
        if isinstance(e, sp.Derivative) and len(e.variables) == 1:
            return e.expr, e.variables[0]
        if isinstance(e, sp.Symbol) and e.name.startswith("delta"):
            l, j = e.name[len("delta"):].split("_")
            return E, self.o.g.z[int(l)][int(j) - 1]
        return None

    def split_constant(self, f: sp.Expr, v: sp.Symbol):
        """f = c * core with c free of v."""
        c, core = [], []
        for factor in sp.Mul.make_args(f):
            (core if self.depends(factor, v) else c).append(factor)
        return sp.Mul(*c), sp.Mul(*core)

    def check(self, c: Step, general: Step | None, earlier: list[Step]) -> bool:
        method = getattr(self, "rule_" + "".join(ch if ch.isalnum() else "_" for ch in c.rule))
        return method(c, general, earlier)

    def rule_chain_rule(self, c, *_):
        left = self.as_derivative(c.lhs)
        if left is None or c.rhs.has(sp.KroneckerDelta):
            return False
        f, v = left
        for term in sp.Add.make_args(sp.expand(c.rhs)):
            links = [self.as_derivative(x) for x in sp.Mul.make_args(term)]
            if len(links) < 2 or None in links:
                return False
            pairs, cur = list(links), f
            while pairs:  # follow the chain f -> u -> ... -> v
                nxt = [p for p in pairs if p[0] == cur]
                if len(nxt) != 1:
                    return False
                pairs.remove(nxt[0])
                cur = nxt[0][1]
            if cur != v:
                return False
        return True

    def _sum_rule(self, c, only_one: bool) -> bool:
        left = self.as_derivative(c.lhs)
        if left is None:
            return False
        f, v = left
        if f in self.o.z_def:  # z_j is by definition a sum
            f = self.o.z_def[f]
        if f == E:
            f = self.o.g.loss_def
        terms = sp.Add.make_args(sp.expand(f))
        if len(terms) < 2:
            return False
        derivs = [x for x in sp.Mul.make_args(c.rhs) if isinstance(x, sp.Derivative)]
        if only_one:
            if len(derivs) != 1 or derivs[0].variables != (v,):
                return False
            constant = sp.Mul(*[x for x in sp.Mul.make_args(c.rhs) if x is not derivs[0]])
            if constant.has(v) or constant.has(sp.Derivative):
                return False
            picked = sp.Add.make_args(sp.expand(constant * derivs[0].expr))
            rest = [t for t in terms if t not in picked]
            return (len(rest) == len(terms) - len(picked) and bool(rest)
                    and all(not self.depends(t, v) for t in rest) and any(self.depends(t, v) for t in picked))
        return sp.Add.make_args(c.rhs) and all(isinstance(x, sp.Derivative) for x in sp.Add.make_args(c.rhs))

    def rule_sum_rule(self, c, *_):
        return self._sum_rule(c, only_one=False)

    def rule_sum_rule__only_one_term_varies_(self, c, *_):
        return self._sum_rule(c, only_one=True)

    def rule_constant_factor_rule(self, c, *_):
        left = self.as_derivative(c.lhs)
        if left is None or not isinstance(left[0], sp.Mul):
            return False
        f, v = left
        scale, core = self.split_constant(f, v)
        return scale != 1 and len(sp.Mul.make_args(core)) == 1

    def rule_product_rule(self, c, *_):
        left = self.as_derivative(c.lhs)
        if left is None:
            return False
        f, v = left
        _, core = self.split_constant(f, v)
        numerator = [x for x in sp.Mul.make_args(core) if not (isinstance(x, sp.Pow) and x.exp.is_negative)]
        return sum(self.depends(x, v) for x in numerator) >= 2

    def rule_quotient_rule(self, c, *_):
        left = self.as_derivative(c.lhs)
        if left is None:
            return False
        f, v = left
        _, denominator = sp.fraction(f)
        return self.depends(denominator, v) and not c.rhs.has(sp.Derivative)

    def rule_derivative_of_a_variable_by_itself(self, c, *_):
        left = self.as_derivative(c.lhs)
        return left is not None and left[0] == left[1] and c.rhs == 1

    def rule_definition_of_the_loss(self, c, *_):
        return c.lhs == E and sp.expand(c.rhs - self.o.g.loss_def) == 0

    def rule_definition_of_the_pre_activation(self, c, *_):
        left, right = self.as_derivative(c.lhs), self.as_derivative(c.rhs)
        return (left is not None and right is not None and left[1] == right[1] and left[0] in self.o.z_def
                and sp.expand(right[0] - self.o.z_def[left[0]]) == 0)

    def rule_definition_of_the_activation(self, c, *_):
        """Equal once a = f(z) is put in, not before (as pure algebra)."""
        lhs, rhs = c.lhs, c.rhs
        left, right = self.as_derivative(lhs), self.as_derivative(rhs)
        if (left is None) != (right is None):
            return False
        if left is not None:
            if left[1] != right[1]:
                return False
            lhs, rhs = left[0], right[0]
        if lhs.has(sp.Derivative) or rhs.has(sp.Derivative):
            return False
        uses = (lhs.free_symbols | rhs.free_symbols) & set(self.o.a_def)
        return bool(uses) and algebra_equal(lhs, rhs, self.rng, self.o.a_def) and (
            left is not None or not algebra_equal(lhs, rhs, self.rng))

    def rule_definition_of_delta(self, c, *_):
        sides = [c.lhs, c.rhs]
        deltas = [s for s in sides if isinstance(s, sp.Symbol) and s.name.startswith("delta")]
        others = [s for s in sides if s not in deltas]
        if len(deltas) != 1 or len(others) != 1 or not isinstance(others[0], sp.Derivative):
            return False
        return self.as_derivative(deltas[0]) == self.as_derivative(others[0])

    def rule_derivative_of_the_loss(self, c, *_):
        derivs = [x for x in sp.Mul.make_args(c.lhs) if isinstance(x, sp.Derivative)]
        if len(derivs) != 1 or c.rhs.has(sp.Derivative):
            return False
        f, v = self.as_derivative(derivs[0])
        return self.kind(v) == ("a", self.o.d.L) and (f == E or bool(f.free_symbols & set(self.o.g.t)))

    def rule_derivative_of_the_activation(self, c, *_):
        left = self.as_derivative(c.lhs)
        if left is None or c.rhs.has(sp.Derivative):
            return False
        f, v = left
        if self.kind(v)[0] != "z":
            return False
        return f in self.o.a_def or f.free_symbols <= {v}

    def rule_derivative_of_the_activation__convenient_form_(self, c, *_):
        """da/dz written with the output a, or a form in z with f(z) named a again."""
        if not c.rhs.free_symbols & set(self.o.a_def) or c.rhs.has(sp.Derivative):
            return False
        left = self.as_derivative(c.lhs)
        if left is not None:
            return self.rule_derivative_of_the_activation(c)
        return algebra_equal(c.lhs, c.rhs, self.rng, self.o.a_def) and not c.lhs.has(sp.Derivative)

    def rule_split_the_sum_at_k___j(self, c, general, *_):
        return (not general.lhs.has(sp.KroneckerDelta) and general.rhs.has(sp.KroneckerDelta)
                and algebra_equal(c.lhs, c.rhs, self.rng))

    def rule_join_the_k___j_term_into_the_sum(self, c, general, *_):
        return (general.lhs.has(sp.KroneckerDelta) and not general.rhs.has(sp.KroneckerDelta)
                and algebra_equal(c.lhs, c.rhs, self.rng))

    def rule_sum_of_the_targets_is_one(self, c, *_):
        """lhs holds t_1 + ... + t_n, and putting 1 for it gives rhs (pure algebra otherwise)."""
        total = sp.Add(*self.o.g.t)
        return c.lhs.has(total) and algebra_equal(c.lhs.xreplace({total: 1}), c.rhs, self.rng) and not (
            algebra_equal(c.lhs, c.rhs, self.rng))

    def rule_substitution(self, c, general, earlier):
        """Each derivative that disappears is the lhs of an earlier step (up to the free indices),
        directly or once the loss or the activation is written out by an earlier definition step."""
        lhs = general.lhs
        if not lhs.has(sp.Derivative):  # "delta_j = ...": the chain rule's right side, derivatives put in
            chains = [s.rhs for s in earlier if s.lhs == lhs and s.rhs.has(sp.Derivative)]
            lhs = chains[-1] if chains else lhs
        gone = [x for x in lhs.atoms(sp.Derivative) if not general.rhs.has(x)]
        if not gone:
            return False
        shapes = {re.sub(r"_\d+", "_#", str(s.lhs)) for s in earlier}  # concrete steps: the same for each unit
        wild = {J: sp.Wild("wj"), K: sp.Wild("wk")}
        patterns = [s.lhs.xreplace(wild) for s in earlier]
        rewrites = [(s.lhs.xreplace(wild), s.rhs.xreplace(wild)) for s in earlier if s.rule.startswith("definition")]

        def rewrite(x, p, r):
            try:
                return x.replace(p, r)
            except ValueError:  # a rewrite that puts an expression where a variable must be
                return x

        def known(x):
            forms = [x] + [rewrite(x, p, r) for p, r in rewrites]
            return (any(form.match(p) is not None for form in forms for p in patterns)
                    or re.sub(r"_\d+", "_#", str(x)) in shapes)

        return all(known(x) for x in gone)

    def rule_simplification(self, c, general, *_):
        return (not c.lhs.has(sp.Derivative) and not c.rhs.has(sp.Derivative) and general.lhs != general.rhs
                and algebra_equal(c.lhs, c.rhs, self.rng))

    def rule_result(self, c, general, earlier):
        return any(s.lhs == general.lhs for s in earlier) and not c.rhs.has(sp.Derivative)


def test_every_rule_has_a_predicate():
    for rule in RULES:
        name = "rule_" + "".join(ch if ch.isalnum() else "_" for ch in rule)
        assert hasattr(Rules, name), rule


# ----------------------------------------------------------------------------- the checks


def general_errors(network, steps_by_key: dict[str, list[Step]], widths=(2, 3)) -> list[str]:
    """(a) and (b) for every index-form step; the problems found (empty if none)."""
    bad: list[str] = []
    for width in widths:
        d = Derivation(at_width(network, width))
        oracle, rng = Oracle(d), random.Random(width)
        rules = Rules(oracle, rng)
        points = [oracle.point(rng) for _ in range(2)]
        for key, steps in steps_by_key.items():
            for n, s in enumerate(steps):
                if s.rule not in RULES:
                    bad.append(f"{key}: unknown rule {s.rule!r}")
                    continue
                for j, k in INDICES[width]:
                    if not holds(s, j, k):
                        continue
                    c = concrete(s, network, width, j, k)
                    where = f"{key}[{n}] {s.rule}: {s.lhs} = {s.rhs} (width {width}, j={j}, k={k})"
                    if not all(close(oracle.value(c.lhs, p), oracle.value(c.rhs, p)) for p in points):
                        bad.append("unequal " + where)
                    if not rules.check(c, s, steps[:n]):
                        bad.append("wrong rule " + where)
    return bad


def derive_errors(d: Derivation, params) -> list[str]:
    oracle, rng = Oracle(d), random.Random(0)
    rules, points = Rules(oracle, rng), [oracle.point(rng) for _ in range(2)]
    bad = []
    for p in params:
        steps = d.steps(p)
        for n, s in enumerate(steps):
            where = f"{p} [{n}] {s.rule}: {s.lhs} = {s.rhs}"
            if s.rule not in RULES:
                bad.append("unknown rule " + where)
                continue
            if not all(close(oracle.value(s.lhs, q), oracle.value(s.rhs, q)) for q in points):
                bad.append("unequal " + where)
            if not rules.check(s, s, steps[:n]):
                bad.append("wrong rule " + where)
    return bad


@pytest.mark.parametrize("path", EXAMPLES)
def test_general_steps_of_the_examples(path):
    network = load(path)
    steps = general_steps(network)
    assert {"output_delta", "weight"} <= set(steps)
    assert {f"activation:{layer.activation.name}" for layer in network.layers} <= set(steps)
    assert general_errors(network, steps) == []


@pytest.mark.parametrize("path", EXAMPLES)
def test_derivation_steps_of_the_examples(path):
    d = Derivation(load(path))
    params = [p for l in range(1, d.L + 1) for p in d.representatives(l)]
    assert derive_errors(d, params) == []


def _pair_test(output, loss):
    network = pair_network(output, loss)
    steps = general_steps(network)
    assert general_errors(network, steps, widths=(2,)) == []
    d = Derivation(network)
    assert derive_errors(d, [d.graph.W[1][0][1], d.graph.b[2][1]]) == []


@pytest.mark.parametrize("output, loss", CORE_PAIRS)
def test_core_pairs(output, loss):
    _pair_test(output, loss)


@pytest.mark.slow
@pytest.mark.parametrize("output, loss", [p for p in PAIRS if p not in CORE_PAIRS])
def test_every_allowed_pair(output, loss):
    _pair_test(output, loss)


def test_the_output_deltas_end_where_the_textbooks_do():
    """softmax + CE and sigmoid + BCE end at a - t; the softmax derivation passes both Jacobian cases."""
    for pair in [("softmax", "categorical_cross_entropy"), ("sigmoid", "binary_cross_entropy")]:
        steps = general_steps(pair_network(*pair))["output_delta"]
        a, t = sp.IndexedBase("a2", real=True), sp.IndexedBase("t", real=True)
        assert steps[-1].rhs == a[J] - t[J]
    rules = [s.rule for s in general_steps(pair_network("softmax", "categorical_cross_entropy"))["output_delta"]]
    assert rules.count("quotient rule") == 2 and "split the sum at k = j" in rules
    assert "sum of the targets is one" in rules
    tanh = general_steps(pair_network("tanh", "half_sse"))["activation:tanh"]
    assert tanh[-1].rhs == 1 - sp.IndexedBase("a1", real=True)[J] ** 2
    relu = general_steps(pair_network("relu", "mse"))["activation:relu"]
    assert "convention" in relu[-1].note


# ----------------------------------------------------------------------------- planted mistakes


def relabel(steps: list[Step], old: str, new: str) -> list[Step]:
    return [Step(new, s.lhs, s.rhs, s.note, s.where) if s.rule == old else s for s in steps]


def test_a_wrong_label_is_caught():
    network = load("examples/seed_2_3_1.yaml")
    weight = general_steps(network)["weight"]
    assert general_errors(network, {"weight": weight}, widths=(2,)) == []
    for old, new in [("constant factor rule", "product rule"),  # issue 12's complaint
                     ("sum rule (only one term varies)", "chain rule"),
                     ("chain rule", "sum rule"), ("definition of delta", "simplification")]:
        planted = relabel(weight, old, new)
        assert any("wrong rule" in e for e in general_errors(network, {"weight": planted}, widths=(2,))), (old, new)
    bias = general_steps(network)["bias"]  # issue 12: the bias blocks said "sum rule" twice
    planted = relabel(bias, "derivative of a variable by itself", "sum rule")
    assert any("wrong rule" in e for e in general_errors(network, {"bias": planted}, widths=(2,)))
    sigmoid = general_steps(network)["activation:sigmoid"]
    planted = relabel(sigmoid, "derivative of the activation (convenient form)", "simplification")
    assert any("wrong rule" in e for e in general_errors(network, {"a": planted}, widths=(2,)))


def test_a_wrong_label_in_the_concrete_steps_is_caught():
    d = Derivation(load("examples/seed_2_3_1.yaml"))
    p = d.graph.W[1][0][1]
    assert derive_errors(d, [p]) == []
    d.steps = lambda q: relabel(Derivation.steps(d, q), "constant factor rule", "product rule")
    assert any("wrong rule" in e for e in derive_errors(d, [p]))


def test_a_wrong_side_is_caught():
    network = pair_network("softmax", "categorical_cross_entropy")
    steps = general_steps(network)["output_delta"]
    wrong = [Step(s.rule, s.lhs, -s.rhs, s.note, s.where) if s.rule == "quotient rule" and s.where is not None
             else s for s in steps]
    assert any(e.startswith("unequal") for e in general_errors(network, {"out": wrong}, widths=(2,)))


def test_a_custom_activation():
    """A formula activation: differentiated by SymPy, no convenient form, steps still true and labelled."""
    network = load({"name": "custom", "inputs": 2, "loss": "half_sse",
                    "layers": [{"units": 3, "activation": {"expr": "x**3 + x"}},
                               {"units": 1, "activation": "identity", "bias": False}]})
    steps = general_steps(network)
    assert "activation:custom" in steps and "bias" in steps
    assert general_errors(network, steps, widths=(2,)) == []
