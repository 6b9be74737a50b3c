"""Verification, part of every derive: symbolic for small nets, numeric at any size.

* Symbolic: up to :data:`SYMBOLIC_LIMIT` parameters, each closed-form gradient
  equals ``sympy.diff`` of the closed-form E exactly.
* Numeric: at several random points, the derived gradients are compared with
  central finite differences of the forward pass (``NumericNetwork``, which knows
  nothing of derivatives): per parameter for up to :data:`FD_SAMPLE` parameters
  (all of them in small nets) and along random directions over all parameters.
  Pass rule: ``|g - n| <= ATOL + RTOL * |n|``; NaN never passes.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import sympy as sp

from .derive import Derivation

SYMBOLIC_LIMIT = 100
MAX_KINKS = 10
GENERAL_DEPTH_LIMIT = 4
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


@dataclass
class Verification:
    """What was checked, how, and the figures."""

    parameters: int
    symbolic: str
    symbolic_checked: int = 0
    symbolic_equal: int = 0
    general_form: str = "not checked"
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

    def as_dict(self, timing: bool = False) -> dict:
        """JSON-ready; without timing the result is the same bytes on every run."""
        out = asdict(self)
        out["passed"] = self.passed
        for key in ("max_abs_error", "max_rel_error"):  # 2 significant digits: stable across machines
            out[key] = float(f"{out[key]:.1e}")
        if not timing:
            del out["seconds"]
        return out

    def summary(self) -> str:
        sym = (f"symbolic: {self.symbolic_equal}/{self.symbolic_checked} gradients equal sympy.diff "
               f"of the closed-form E" if self.symbolic_checked else f"symbolic: {self.symbolic}")
        num = (f"numeric: {self.numeric_points} random points, {self.numeric_per_parameter} parameters "
               f"one by one and {self.numeric_directions} random directions against central finite "
               f"differences, max error {self.max_abs_error:.1e} (relative {self.max_rel_error:.1e})")
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.failures)} problems)"
        return f"verification {verdict}: {sym}; general form: {self.general_form}; {num}; rule {self.rule}"


def verify(derivation: Derivation, seed: int = 0, symbolic: bool = True) -> Verification:
    """Check every gradient of ``derivation``; see the module docstring for the tiers."""
    start = time.perf_counter()
    n = len(derivation.parameters)
    report = Verification(parameters=n, symbolic="skipped")
    if not symbolic:
        report.symbolic = report.general_form = "not requested (numeric verification only)"
    elif n <= SYMBOLIC_LIMIT:
        _symbolic(derivation, report)
        _general_form(derivation, report)
    else:
        report.symbolic = f"skipped: {n} parameters, more than {SYMBOLIC_LIMIT}"
        report.general_form = f"checked symbolically only up to {SYMBOLIC_LIMIT} parameters"
    _numeric(derivation, report, np.random.default_rng(seed))
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def constraint_substitution(derivation: Derivation) -> dict[sp.Symbol, sp.Expr]:
    """Eliminate the last target when the targets must sum to one."""
    t = derivation.targets
    if derivation.network.loss.targets_sum_to_one:
        return {t[-1]: 1 - sp.Add(*t[:-1])}
    return {}


def _symbolic(derivation: Derivation, report: Verification) -> None:
    loss = derivation.loss
    sub = constraint_substitution(derivation)
    report.symbolic = "sympy.diff of the closed form"
    for p in derivation.parameters:
        report.symbolic_checked += 1
        ours = derivation.gradient(p).xreplace(sub)
        direct = sp.diff(loss, p).xreplace(sub)
        try:
            equal = symbolic_equal(ours, direct)
        except ValueError as exc:
            report.symbolic = f"partly skipped: {exc}"
            report.symbolic_checked -= 1
            continue
        if equal:
            report.symbolic_equal += 1
        else:
            report.failures.append(f"{p}: derived gradient differs symbolically from sympy.diff(E, {p})")


def _general_form(derivation: Derivation, report: Verification) -> None:
    from .general import check_widths

    if derivation.L > GENERAL_DEPTH_LIMIT:
        report.general_form = f"skipped: depth {derivation.L} > {GENERAL_DEPTH_LIMIT}"
        return
    problems = check_widths(derivation.network, GENERAL_WIDTHS)
    widths = " and ".join(str(w) for w in GENERAL_WIDTHS)
    report.general_form = (f"the index form, derived once, equals sympy.diff of the concrete graph "
                           f"at widths {widths}" if not problems else "FAILED")
    report.failures.extend(problems)


def _numeric(derivation: Derivation, report: Verification, rng: np.random.Generator) -> None:
    from .numeric import DerivedGradients

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
