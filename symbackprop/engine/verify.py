"""Verification, part of every derive: three independent truths, tiered by cost.

* **local** (symbolic, width-independent, cheap at any depth): for every layer,
  each local derivative of the index-form templates (dz/dW, dz/db) and the delta
  of the layer (the output delta from the loss, the recursion from an arbitrary
  linear function of the next layer's z) equals ``sympy.diff`` of the concrete
  graph at widths 2 and 3.  This is the part that is actually derived.
* **closed form** (symbolic): a parameter's gradient, with every delta expanded
  down to inputs, targets and parameters, equals ``sympy.diff`` of the closed-form
  E exactly.  ``auto`` checks one weight and one bias per layer while the closed
  form stays small (see :func:`closed_form_plan`); ``full`` checks every parameter.
* **numeric** (any size): at several random points the derived gradients are
  compared with central finite differences of the forward pass (``NumericNetwork``,
  which knows nothing of derivatives): per parameter for up to :data:`FD_SAMPLE`
  parameters and along random directions over all parameters.
  Pass rule: ``|g - n| <= ATOL + RTOL * |n|``; NaN never passes.

Modes (``derive --verify``): ``auto`` (default: local, closed form within budget,
numeric), ``full`` (every tier without budget, plus the whole-network width check),
``numeric`` and ``none``.  Everything reported is deterministic: the same spec
gives the same report, whatever the machine's speed.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import sympy as sp

from .derive import Derivation

MAX_KINKS = 10
SPOT_CHECKS = 20
GENERAL_WIDTHS = (2, 3)
FD_SAMPLE = 96
POINTS = 3
DIRECTIONS = 3
STEP = 1e-5
RTOL = 1e-6
ATOL = 1e-8
RULE = f"|derived - finite difference| <= {ATOL:g} + {RTOL:g} * |finite difference|"


def _normalized_exponent(arg: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Split ``arg`` as ``c * u`` with a rational c and a sign-normalized u."""
    c, u = arg.primitive() if isinstance(arg, sp.Add) else arg.as_coeff_Mul()
    if u.could_extract_minus_sign():
        c, u = -c, -u
    return c, u


def _rationalize(expr: sp.Expr, table: dict, memo: dict) -> sp.Expr:
    """Replace every ``exp(c*u)`` by ``s_u**c`` (bottom-up), one fresh symbol per u.

    Memoized on sub-expressions: closed forms share subtrees, so this walks the DAG, not the tree.
    """
    done = memo.get(expr)
    if done is not None:
        return done
    if not expr.args:
        result = expr
    elif isinstance(expr, sp.exp):
        c, u = _normalized_exponent(_rationalize(expr.args[0], table, memo))
        result = table.setdefault(u, sp.Dummy("e")) ** c
    else:
        result = expr.func(*(_rationalize(arg, table, memo) for arg in expr.args))
    memo[expr] = result
    return result


def _branches(expr: sp.Expr):
    """``expr`` once for every truth assignment of its Piecewise conditions."""
    conds = sorted({c for pw in expr.atoms(sp.Piecewise) for _, c in pw.args
                    if c not in (sp.true, sp.false)}, key=sp.default_sort_key)
    if len(conds) > MAX_KINKS:
        raise ValueError(f"{len(conds)} piecewise conditions (at most {MAX_KINKS})")
    for values in itertools.product((sp.true, sp.false), repeat=len(conds)):
        chosen = dict(zip(conds, values))

        def pick(pw: sp.Piecewise, chosen: dict = chosen) -> sp.Expr:
            for value, cond in pw.args:
                if cond.xreplace(chosen) == sp.true:
                    return value
            return sp.nan

        yield expr.replace(lambda e: isinstance(e, sp.Piecewise), pick)


def symbolic_equal(a: sp.Expr, b: sp.Expr) -> bool:
    """Exact equality of two expressions.

    Each distinct ``exp`` becomes an independent symbol (sign- and multiple-
    normalized), each Piecewise condition an independent truth value; the
    difference must then be the zero rational function in every branch.  Treating
    atoms as independent only makes the test stricter, never looser.
    """
    table: dict = {}
    memo: dict = {}
    diff = _rationalize(a, table, memo) - _rationalize(b, table, memo)
    for branch in _branches(diff):
        numerator, _ = sp.together(branch).as_numer_denom()
        if sp.expand(numerator) != 0:
            return False
    return True


MODES = ("auto", "full", "numeric", "none")
LOCAL_WIDTHS = (2, 3)
CLOSED_PARAMETER_LIMIT = 100
CLOSED_BUDGET = 16
"""auto checks a layer's representatives in closed form while 2**kinks * 4**(layers above) <= this."""


@dataclass
class Tier:
    """One independent check: what it compared, what it covered and what it left out (in words)."""

    name: str
    how: str
    covered: str = ""
    not_covered: str = ""
    checked: int = 0
    equal: int = 0
    run: bool = True

    @property
    def result(self) -> str:
        if not self.run:
            return "not run"
        return f"{self.equal} of {self.checked} equal" if self.checked else "skipped"


@dataclass
class Verification:
    """What was checked, how, and the figures."""

    parameters: int
    mode: str = "auto"
    tiers: list[Tier] = field(default_factory=list)
    numeric_points: int = 0
    numeric_per_parameter: int = 0
    numeric_directions: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    rule: str = RULE
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def tier(self, name: str) -> Tier | None:
        return next((t for t in self.tiers if t.name == name), None)

    def as_dict(self, timing: bool = False) -> dict:
        """JSON-ready; without timing the result is the same bytes on every run."""
        out = asdict(self)
        out["passed"] = self.passed
        for tier, item in zip(self.tiers, out["tiers"]):
            item["result"] = tier.result
        for key in ("max_abs_error", "max_rel_error"):  # 2 significant digits: stable across machines
            out[key] = float(f"{out[key]:.1e}")
        if not timing:
            del out["seconds"]
        return out

    def headline(self) -> str:
        """One line: the verdict and each tier's result."""
        verdict = "passed" if self.passed else "FAILED"
        return (f"Verification {verdict} (--verify {self.mode}): "
                + "; ".join(f"{t.name} {t.result}" for t in self.tiers) + ".")

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.failures)} problems)"
        lines = [f"verification {verdict} (--verify {self.mode}):"]
        for t in self.tiers:
            text = f"  {t.name}: {t.result}" + (f"; {t.covered}" if t.covered else "")
            if t.not_covered:
                text += f"; not checked: {t.not_covered}"
            lines.append(text)
        return "\n".join(lines)


def verify(derivation: Derivation, seed: int = 0, mode: str = "auto", progress=None) -> Verification:
    """Check ``derivation`` with the tiers of ``mode``; see the module docstring."""
    if mode not in MODES or mode == "none":
        raise ValueError(f"verify mode must be one of {', '.join(MODES[:3])}, not {mode!r}")
    start = time.perf_counter()
    report = Verification(parameters=len(derivation.parameters), mode=mode)
    step = progress or (lambda name: None)
    if mode != "numeric":
        step("verify: local derivatives")
        _local(derivation, report)
        step("verify: closed form")
        _closed_form(derivation, report, full=mode == "full")
        if mode == "full":
            step("verify: general form at widths 2, 3")
            _general_form(derivation, report)
    else:
        for name in ("local", "closed form"):
            report.tiers.append(Tier(name, "", not_covered="--verify numeric was asked for", run=False))
    step("verify: numeric")
    _numeric(derivation, report, np.random.default_rng(seed))
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def constraint_substitution(derivation: Derivation) -> dict[sp.Symbol, sp.Expr]:
    """Eliminate the last target when the targets must sum to one."""
    t = derivation.targets
    if derivation.network.loss.targets_sum_to_one:
        return {t[-1]: 1 - sp.Add(*t[:-1])}
    return {}


# ----------------------------------------------------------------------------- local tier


def _at_width(derivation: Derivation, width: int) -> Derivation:
    """The same network with every layer ``width`` wide, reusing the templates derived once."""
    from dataclasses import replace

    net = derivation.network
    variant = replace(net, inputs=width, layers=tuple(replace(layer, units=width) for layer in net.layers))
    d = Derivation(variant)
    d.general = derivation.general
    return d


def _local(derivation: Derivation, report: Verification) -> None:
    """Each layer's templates against sympy.diff of the concrete graph, one layer at a time."""
    tier = Tier("local", "each layer's dz/dW, dz/db and delta, instantiated from the index form, against "
                "sympy.diff of the concrete graph (the recursion against an arbitrary linear function of the "
                "next layer's z), by exact equality")
    report.tiers.append(tier)
    for width in LOCAL_WIDTHS:
        d = _at_width(derivation, width)
        for l in range(1, d.L + 1):
            for what, ours, truth in _layer_checks(d, l):
                tier.checked += 1
                if symbolic_equal(ours, truth):
                    tier.equal += 1
                else:
                    report.failures.append(f"local, layer {l}, width {width}: {what} differs from sympy.diff")
    widths = " and ".join(map(str, LOCAL_WIDTHS))
    tier.covered = (f"all {derivation.L} layers at widths {widths}: local derivatives of every weight and bias, "
                    f"the output delta and the delta recursion; width-independent, so it holds at "
                    f"{derivation.network.architecture}")


def _layer_checks(d: Derivation, l: int):
    """(what, derived, truth) triples for layer ``l`` of a small concrete net ``d``."""
    g = d.graph
    net = d.network
    for j, zdef in enumerate(g.z_def[l], start=1):
        for k, w in enumerate(g.W[l][j - 1], start=1):
            yield f"dz{l}_{j}/d{w}", d.local(w), sp.diff(zdef, w)
        if g.b[l] is not None:
            yield f"dz{l}_{j}/d{g.b[l][j - 1]}", d.local(g.b[l][j - 1]), sp.diff(zdef, g.b[l][j - 1])
    acts = {a: ad for a, ad in zip(g.a[l], g.a_def[l])}
    if l == d.L:
        sub = constraint_substitution(d)
        E = g.loss_def.xreplace(acts)
        for j, z in enumerate(g.z[l], start=1):
            ours = d.delta(l, j).xreplace(acts).xreplace(sub)
            yield f"output delta{l}_{j}", ours, sp.diff(E, z).xreplace(sub)
        return
    coeffs = [sp.Dummy(f"c{k}") for k in range(1, net.sizes[l + 1] + 1)]
    z_next = [zd.xreplace(acts) for zd in g.z_def[l + 1]]
    E = sp.Add(*(c * zn for c, zn in zip(coeffs, z_next)))  # dE/dz{l+1}_k = c_k by construction
    named = {d.delta_symbol(l + 1, k): c for k, c in enumerate(coeffs, start=1)}
    for j, z in enumerate(g.z[l], start=1):
        ours = d.delta(l, j).xreplace(acts).xreplace(named)
        yield f"delta{l}_{j} recursion", ours, sp.diff(E, z)


# ----------------------------------------------------------------------------- closed-form tier


def kinks(network) -> int:
    """Units whose activation has a kink (each doubles the branches of an exact comparison)."""
    return sum(layer.units for layer in network.layers if layer.activation.kink)


def closed_form_plan(derivation: Derivation, full: bool = False) -> tuple[list[sp.Symbol], str]:
    """The parameters the closed-form tier checks, and what it leaves out, in words.

    ``auto``: one weight and one bias per layer, from the output layer down, while
    ``2**kinks * 4**(layers above)`` stays within :data:`CLOSED_BUDGET` (the exact
    comparison branches at every kink and its expansion grows with the nesting).
    """
    params = derivation.parameters
    n = len(params)
    if full:
        return list(params), ""
    if n > CLOSED_PARAMETER_LIMIT:
        return [], (f"every parameter: {n} parameters is more than {CLOSED_PARAMETER_LIMIT}, and the closed forms "
                    "grow with every width (--verify full forces it)")
    g, L, branches = derivation.graph, derivation.L, 2 ** kinks(derivation.network)
    chosen, too_deep = [], []
    for l in range(L, 0, -1):
        if branches * 4 ** (L - l) > CLOSED_BUDGET:
            too_deep.append(l)
            continue
        chosen.append(g.W[l][0][0])
        if g.b[l] is not None:
            chosen.append(g.b[l][0])
    reasons = []
    in_layers = sum(1 for p in params if g.layer_of(p)[0] not in too_deep)
    if chosen and len(chosen) < in_layers:
        reasons.append(f"the {in_layers - len(chosen)} other parameters of the layers covered, whose gradients "
                       "instantiate the same checked templates (--verify full checks every one)")
    if too_deep:
        kinked = f" through {kinks(derivation.network)} kinks" if branches > 1 else ""
        layers = ", ".join(map(str, sorted(too_deep)))
        reasons.append(f"the parameters of layer{'s' if len(too_deep) > 1 else ''} {layers}: their closed forms "
                       f"nest up to {L - min(too_deep)} layers{kinked}, too large to expand cheaply "
                       "(--verify full forces it)")
    return chosen, "; ".join(reasons)


def _closed_form(derivation: Derivation, report: Verification, full: bool) -> None:
    tier = Tier("closed form", "the gradient with every delta expanded down to inputs, targets and parameters, "
                "against sympy.diff of the closed-form E, by exact equality")
    report.tiers.append(tier)
    chosen, tier.not_covered = closed_form_plan(derivation, full)
    sub = constraint_substitution(derivation)
    skipped = []
    for p in chosen:
        loss = derivation.loss  # built on first use: the closed form is only paid for when checked
        ours = derivation.gradient(p).xreplace(sub)
        direct = sp.diff(loss, p).xreplace(sub)
        try:
            equal = symbolic_equal(ours, direct)
        except ValueError as exc:
            skipped.append(f"{p} ({exc})")
            continue
        tier.checked += 1
        if equal:
            tier.equal += 1
        else:
            report.failures.append(f"{p}: derived gradient differs symbolically from sympy.diff(E, {p})")
    names = ", ".join(str(p) for p in chosen[:8]) + (", ..." if len(chosen) > 8 else "")
    tier.covered = f"{tier.checked} of {len(derivation.parameters)} parameters ({names})" if chosen else ""
    if skipped:
        tier.not_covered = "; ".join(filter(None, [tier.not_covered, "too many kinks: " + ", ".join(skipped)]))


def _general_form(derivation: Derivation, report: Verification) -> None:
    from .general import check_widths

    tier = Tier("general form", "the whole network at widths 2 and 3, every delta from the index form derived "
                "once, against sympy.diff of the concrete E")
    report.tiers.append(tier)
    problems = check_widths(derivation.network, GENERAL_WIDTHS)
    tier.checked = derivation.L * sum(GENERAL_WIDTHS)
    tier.equal = tier.checked - len(problems)
    tier.covered = "every delta of the network at widths 2 and 3"
    report.failures.extend(problems)


def _numeric(derivation: Derivation, report: Verification, rng: np.random.Generator) -> None:
    from .numeric import DerivedGradients

    tier = Tier("numeric", "derived gradients evaluated in float64 against central finite differences of a "
                f"forward pass that knows no derivatives; rule {RULE}")
    report.tiers.append(tier)
    failures_before = len(report.failures)
    evaluator = DerivedGradients(derivation)
    net = evaluator.numeric
    names = [p.name for p in derivation.parameters]
    slots = [(key, index) for key, shape in net.shapes().items() for index in np.ndindex(*shape)]
    for point in range(POINTS):
        params, x, t = net.random_point(rng)
        derived = net.flatten(evaluator.gradients(params, x, t))
        n = derived.size
        sample = np.arange(n) if n <= FD_SAMPLE else np.sort(rng.choice(n, FD_SAMPLE, replace=False))
        for i in sample:
            key, index = slots[i]
            _compare(report, names[i], derived[i], _central_difference(net, params, x, t, key, index))
        theta = net.flatten(params)
        for d in range(DIRECTIONS):
            v = rng.normal(size=n)
            v /= np.linalg.norm(v)
            plus, minus = net.unflatten(theta + STEP * v), net.unflatten(theta - STEP * v)
            fd = (net.loss(plus, x, t) - net.loss(minus, x, t)) / (2 * STEP)
            _compare(report, f"random direction {d + 1}", float(derived @ v), fd)
        report.numeric_points += 1
        report.numeric_per_parameter = len(sample)
        report.numeric_directions += DIRECTIONS
        if point == 0:  # the concrete expressions do not depend on the point: one is enough
            _spot_check_concrete(derivation, evaluator, report, params, x, t, derived, rng)
    n = len(names)
    tier.checked = report.numeric_points * (report.numeric_per_parameter + DIRECTIONS)
    tier.equal = max(0, tier.checked - (len(report.failures) - failures_before))
    tier.covered = (f"{report.numeric_points} random points: " + (
        f"all {n} parameters one by one" if report.numeric_per_parameter == n
        else f"{report.numeric_per_parameter} of {n} parameters one by one (a random sample)")
        + f" and {DIRECTIONS} random directions over all of them; max error {report.max_abs_error:.1e} "
        f"(relative {report.max_rel_error:.1e})")


def _central_difference(net, params, x, t, key: str, index: tuple) -> float:
    """(E(p + h) - E(p - h)) / 2h for one parameter, perturbed in place and restored."""
    array = params[key]
    original = array[index]
    array[index] = original + STEP
    up = net.loss(params, x, t)
    array[index] = original - STEP
    down = net.loss(params, x, t)
    array[index] = original
    return (up - down) / (2 * STEP)


def _spot_check_concrete(derivation, evaluator, report, params, x, t, derived, rng) -> None:
    """The concrete per-unit deltas and per-parameter SymPy expressions give the same numbers
    as the vectorized templates, for a random sample of parameters."""
    g = derivation.graph
    deltas, acts = evaluator.deltas(params, x, t)
    zs, _ = evaluator.numeric.forward(params, x)
    values: dict[sp.Symbol, float] = dict(zip(g.x, x))
    values.update(zip(g.t, t))
    for l in range(1, derivation.L + 1):
        values.update(zip(g.a[l], acts[l]))
        values.update(zip(g.z[l], zs[l]))
        values.update({derivation.delta_symbol(l, j + 1): v for j, v in enumerate(deltas[l])})
        if l >= 2:  # deltas use the weights of the layer above; W1 never appears
            values.update(zip((w for row in g.W[l] for w in row), params[f"W{l}"].ravel()))
    picks = rng.choice(len(derivation.parameters), min(SPOT_CHECKS, len(derivation.parameters)), replace=False)
    for i in sorted(picks):
        p = derivation.parameters[i]
        l, j, _ = g.layer_of(p)
        concrete_delta = float(derivation.delta(l, j).xreplace(values))
        _compare(report, f"delta{l}_{j} (concrete expression)", concrete_delta, deltas[l][j - 1],
                 rtol=1e-12, atol=1e-14)
        value = float(derivation.compact_gradient(p).xreplace(values))
        _compare(report, f"{p} (compact form)", value, derived[i], rtol=1e-12, atol=1e-14)


def _compare(report: Verification, what: str, derived: float, reference: float,
             rtol: float = RTOL, atol: float = ATOL) -> None:
    err = abs(derived - reference)
    if not np.isfinite(derived) or not np.isfinite(reference) or err > atol + rtol * abs(reference):
        report.failures.append(f"{what}: derived {derived!r}, reference {reference!r}, "
                               f"error {err:.3g} > {atol:g} + {rtol:g}*|reference|")
        return
    report.max_abs_error = max(report.max_abs_error, float(err))
    if abs(reference) > atol:
        report.max_rel_error = max(report.max_rel_error, float(err / abs(reference)))
