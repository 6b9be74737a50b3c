"""Check hand-derived claims against a Derivation: verdict, counterexample, diagnosis, fix.

Method: every claim is evaluated numerically at several random points of the
network (parameters, input, target, learning rate), at every valid value of its
free indices, against the derivation's own deltas and gradients.  Both sides
of an identity between analytic functions agreeing at independent random
points is overwhelming evidence of equality; one disagreement is a proof of
inequality, reported as the counterexample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..engine.derive import Derivation
from ..render.latex import NotationPrinter, latex
from ..render.notation import Profile
from .diagnose import INDEX, LAYER, SUM, candidates, diagnose, named_mistake
from .evaluate import CannotCheck, Evaluator, NoBinding, Resolver, ShapeMismatch, Truth, close, kind_of
from .lexer import ClaimSyntaxError, split_claims
from .nodes import Claim, Deriv, Idx, SumOver, Sym, children, walk
from .parse import parse_claim
from .printer import NAMES, print_claim
from .symbolic import SymbolicClaim, symbolic_check

POINTS = 4
SYMBOLIC_PARAMETERS = 60
SYMBOLIC_BINDINGS = 12
RTOL, ATOL = 1e-5, 1e-6
METHOD = (f"numeric: both sides evaluated at {POINTS} random points (parameters, input, target, learning "
          f"rate) and at every valid index value, against the derivation's deltas and gradients; "
          f"pass rule |lhs - rhs| <= {ATOL:g} + {RTOL:g}*max(|lhs|, |rhs|)")


@dataclass
class Verdict:
    """The outcome for one claim."""

    claim: str
    verdict: str  # "correct", "incorrect", "skipped", "cannot-check"
    diagnosis: str | None = None
    counterexample: dict | None = None
    expected: str | None = None
    reason: str | None = None
    method: str | None = None
    confidence: str | None = None
    checked: int = 0
    line: int = 0
    symbolic: str | None = None
    note: str | None = None

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    def as_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "verdict": self.verdict, "diagnosis": self.diagnosis,
                "counterexample": self.counterexample, "expected": self.expected, "reason": self.reason,
                "method": self.method, "symbolic": self.symbolic, "confidence": self.confidence, "checked": self.checked,
                "line": self.line, "note": self.note}


@dataclass
class Context:
    """The judging state: the profile's sign of each delta symbol, the readings noted for the
    current claim, and the algorithm variables assigned so far."""

    truth: Truth
    profile: Profile
    signs: dict = field(default_factory=dict)
    notes: set = field(default_factory=set)  # readings noted while judging the current claim
    defs: dict = field(default_factory=dict)  # algorithm variables (g <- \nabla_{\hat y} J), name -> tree


@dataclass
class Failure:
    point: int
    binding: Any
    side: int
    left: np.ndarray | None
    right: np.ndarray | None
    message: str = ""


def claim_kind(claim: Claim, ctx: Context) -> str:
    lhs = claim.sides[0]
    if len(claim.sides) >= 2 and isinstance(lhs, Sym):
        kind = kind_of(lhs, ctx.profile)
        if kind in ("weight", "bias") and (lhs.layer is not None or lhs.index is not None):
            return "update"
        if kind == "delta" and (lhs.layer is not None or lhs.index is not None):
            return "delta"
    return "identity"


def evaluate_claim(claim: Claim, ctx: Context, points: int | None = None) -> tuple[Failure | None, int, int]:
    """The first failure (or None), the number of comparisons made and the delta sign found."""
    kind = claim_kind(claim, ctx)
    bindings = Resolver(ctx.truth, ctx.profile).bindings(claim.sides, claim.notes)
    chosen = ctx.truth.points[:points] if points else ctx.truth.points
    lhs_name = claim.sides[0].name if kind == "delta" else None
    # delta's sign convention is the profile's: a definition with the other sign is wrong, not adopted
    allowed = [ctx.signs.get(lhs_name, 1)] if kind == "delta" else [1]
    count, first = 0, None
    for sign in allowed:
        failure, count = _run(claim, ctx, kind, bindings, chosen, sign)
        if failure is None:
            return None, count, sign
        first = first or failure
    return first, count, allowed[0]


def _run(claim, ctx, kind, bindings, chosen, sign):
    count = 0
    signs = dict(ctx.signs)
    for pi, point in enumerate(chosen):
        for b in bindings:
            ev = Evaluator(ctx.truth, ctx.profile, signs, point, b, notes=ctx.notes)
            try:
                if kind == "update":
                    key = ev.key(claim.sides[0])
                    truth = ev.value_of_key(key) - point.alpha * ev.network_partial(("loss",), key)
                    rhs = [ev.eval(s) for s in claim.sides[1:]]
                    lhs = truth
                elif kind == "delta":
                    lhs_sym = claim.sides[0]
                    lhs = sign * Evaluator(ctx.truth, ctx.profile, {lhs_sym.name: 1}, point, b).eval(lhs_sym)
                    rhs = [ev.eval(s) for s in claim.sides[1:]]
                else:
                    lhs = ev.eval(claim.sides[0])
                    rhs = [ev.eval(s) for s in claim.sides[1:]]
            except ShapeMismatch as exc:
                left, right = _side_values(claim, ctx, kind, point, b, signs, sign)
                return Failure(pi, b, 1, left, right, str(exc)), count
            for i, r in enumerate(rhs, start=1):
                count += 1
                if not close(lhs, r):
                    return Failure(pi, b, i, lhs, r), count
    return None, count


def _side_values(claim, ctx, kind, point, binding, signs, sign):
    """Each side's value at a point where the claim fails on shapes; a side that cannot be
    evaluated is described in words instead (its shape error)."""
    values = []
    for i, side in enumerate(claim.sides[:2]):
        ev = Evaluator(ctx.truth, ctx.profile, signs, point, binding)
        try:
            if i == 0 and kind == "update":
                key = ev.key(side)
                values.append(ev.value_of_key(key) - point.alpha * ev.network_partial(("loss",), key))
            elif i == 0 and kind == "delta":
                values.append(sign * Evaluator(ctx.truth, ctx.profile, {side.name: 1}, point, binding).eval(side))
            else:
                values.append(ev.eval(side))
        except CannotCheck as exc:
            values.append(f"undefined: {exc}")
        except (KeyError, ValueError, IndexError):
            values.append("undefined: an index lies outside its layer at these index values")
    return values[0], values[1]


def _fmt(a):
    if isinstance(a, str):
        return a
    if a is None:
        return None
    if a.shape == (1, 1):
        return float(f"{a[0, 0]:.6g}")
    if a.ndim == 1 or a.shape[1] == 1:
        return [float(f"{v:.6g}") for v in np.ravel(a)]
    return [[float(f"{v:.6g}") for v in row] for row in a]


def counterexample(ctx: Context, failure: Failure) -> dict:
    p = ctx.truth.points[failure.point]
    out = {"indices": dict(failure.binding.units), "layers": dict(failure.binding.layers),
           "parameters": {k: _fmt(v if v.ndim == 2 else v.reshape(-1, 1)) for k, v in p.params.items()},
           "x": _fmt(p.x.reshape(-1, 1)), "target": _fmt(p.t.reshape(-1, 1)),
           "learning_rate": float(f"{p.alpha:.6g}"),
           "left": _fmt(failure.left), "right": _fmt(failure.right)}
    if failure.message:
        out["shape_error"] = failure.message
    return out


def concrete_counterexample(claim: Claim, ctx: Context, message: str) -> dict:
    """Inputs, parameters and targets with both sides' values, for a claim whose indices or
    shapes are wrong (a side that has no value there says why)."""
    resolver = Resolver(ctx.truth, ctx.profile)
    kind = claim_kind(claim, ctx)
    sign = ctx.signs.get(claim.sides[0].name, 1) if kind == "delta" else 1
    point = ctx.truth.points[0]
    try:
        bindings = resolver.bindings(claim.sides, claim.notes)
    except CannotCheck:
        try:
            bindings = resolver.bindings(claim.sides[:1], claim.notes)
        except CannotCheck:
            bindings = []
    chosen = None
    for b in bindings[:60]:
        left, right = _side_values(claim, ctx, kind, point, b, dict(ctx.signs), sign)
        chosen = (b, left, right)
        if isinstance(left, str) or isinstance(right, str) or not close(left, right):
            break
    if chosen is None:
        from .evaluate import Binding
        chosen = (Binding((), ()), f"undefined: {message}", f"undefined: {message}")
    b, left, right = chosen
    out = counterexample(ctx, Failure(0, b, 1, left, right, message))
    out.pop("shape_error", None)
    out["error"] = message
    return out


def free_letters(node, bound: frozenset = frozenset()) -> set[str]:
    """Index letters of ``node`` not bound by an enclosing sum."""
    if isinstance(node, SumOver):
        return free_letters(node.body, bound | {node.var})
    if isinstance(node, Sym):
        return {i.name for idx in node.index or () for i in walk(idx) if isinstance(i, Idx)} - bound
    return set().union(*(free_letters(c, bound) for c in children(node))) if children(node) else set()


def _unsummed(claim: Claim, ctx: Context) -> Verdict | None:
    """A letter on a right side that the left side lacks and no sum binds: a sum is missing."""
    lhs = free_letters(claim.sides[0])
    for i, side in enumerate(claim.sides[1:], start=1):
        extra = sorted(free_letters(side) - lhs)
        if not extra:
            continue
        v = Verdict(claim.text, "incorrect", method=METHOD, confidence="certain: index "
                    f"{', '.join(extra)} is free on the right side only, so the two sides cannot be equal "
                    "for every index value")
        v.diagnosis = f"{SUM}: index {', '.join(extra)} appears on the right side only and is not summed"
        v.counterexample = concrete_counterexample(claim, ctx, v.diagnosis)
        for label, candidate in candidates(claim, i, claim_kind(claim, ctx), ctx, None):
            if not (label == SUM or label.startswith(LAYER)) or free_letters(candidate.sides[i]) - lhs:
                continue
            try:
                fail, _, _ = evaluate_claim(candidate, ctx)
            except CannotCheck:
                continue
            if fail is None:
                v.expected = print_claim(candidate, comma_weights=ctx.profile.index_comma)
                if label != SUM:  # a summed index used outside its sum: the fix names the mistake
                    v.diagnosis = label
                break
        return v
    return None


def _symbolic(claim: Claim, kind: str, ctx: Context, sign: int) -> str:
    """Symbolic confirmation at up to SYMBOLIC_BINDINGS index values, where cheap."""
    if len(ctx.truth.d.parameters) > SYMBOLIC_PARAMETERS:
        return f"not attempted: more than {SYMBOLIC_PARAMETERS} parameters"
    bindings = Resolver(ctx.truth, ctx.profile).bindings(claim.sides, claim.notes)
    if len(bindings) > SYMBOLIC_BINDINGS:
        return f"not attempted: more than {SYMBOLIC_BINDINGS} index values"
    signs = dict(ctx.signs)
    for b in bindings:
        ev = Evaluator(ctx.truth, ctx.profile, signs, ctx.truth.points[0], b)
        if symbolic_check(claim, kind, ev, sign) is not True:
            return "not attempted or inconclusive (numeric check only)"
    return f"proven equal with SymPy at {len(bindings)} index value(s)"


def check_claim(claim: Claim, ctx: Context) -> Verdict:
    unsummed = _unsummed(claim, ctx) if claim_kind(claim, ctx) != "update" else None
    if unsummed is not None:
        return unsummed
    verdict = Verdict(claim.text, "correct", method=METHOD)
    try:
        failure, count, sign = evaluate_claim(claim, ctx)
    except NoBinding as exc:
        notes = set(ctx.notes)
        found = _repair_indices(claim, ctx, exc) or _conflicting_indices(claim, ctx, exc)
        ctx.notes.clear()
        ctx.notes.update(notes)
        return found or Verdict(claim.text, "cannot-check", reason=str(exc))
    except CannotCheck as exc:
        return Verdict(claim.text, "cannot-check", reason=str(exc))
    except KeyError as exc:
        return Verdict(claim.text, "cannot-check", reason=f"cannot tell what the letter {exc} stands for here")
    verdict.checked = count
    kind = claim_kind(claim, ctx)
    if failure is None:
        verdict.confidence = (f"{count} comparisons agree; a wrong formula agreeing at {POINTS} random points "
                              "is practically impossible (high confidence)")
        if kind == "delta" and sign == -1:
            verdict.confidence += f"; {claim.sides[0].name} is -dE/dz in the {ctx.profile.name} profile"
        verdict.symbolic = _symbolic(claim, kind, ctx, sign)
        if verdict.symbolic.startswith("proven"):
            verdict.confidence += f"; symbolic: {verdict.symbolic}"
        return verdict
    verdict.verdict = "incorrect"
    verdict.counterexample = counterexample(ctx, failure)
    verdict.counterexample["compared"] = {
        "update": "left: the gradient-descent step p - alpha*dE/dp; right: the claim's right side",
        "delta": "left: dE/dz from the derivation (in the sign convention in use); right: the claim's right side",
    }.get(kind, f"left: side 1; right: side {failure.side + 1} of the claim")
    verdict.confidence = "certain: the counterexample shows the two sides differ"
    notes = set(ctx.notes)
    found = diagnose(claim, failure, ctx, evaluate_claim)
    ctx.notes.clear()
    ctx.notes.update(notes)
    if found is not None:
        verdict.diagnosis, fixed = found
        verdict.expected = print_claim(fixed, comma_weights=ctx.profile.index_comma)
    else:
        verdict.diagnosis = named_mistake(claim, ctx) or failure.message or \
            "not one of the common mistakes; compare with the expected formula"
        verdict.expected = true_formula(claim, failure, ctx)
    return verdict


def _repair_indices(claim: Claim, ctx: Context, exc: NoBinding) -> Verdict | None:
    """Indices that fit no layer: incorrect when a common repair (index, layer) makes the claim correct."""
    kind = claim_kind(claim, ctx)
    for side in range(1, len(claim.sides)):
        for label, candidate in candidates(claim, side, kind, ctx, None):
            try:
                fail, _, _ = evaluate_claim(candidate, ctx)
            except CannotCheck:
                continue
            if fail is None:
                return Verdict(claim.text, "incorrect", diagnosis=f"{label}: {exc}",
                               counterexample=concrete_counterexample(
                                   claim, ctx, f"{exc}; no index value makes both sides meaningful"),
                               expected=print_claim(candidate, comma_weights=ctx.profile.index_comma),
                               method=METHOD, confidence="certain: the indices contradict the network's layers")
    return None


def _conflicting_indices(claim: Claim, ctx: Context, exc: NoBinding) -> Verdict | None:
    """The left side means something but no index value gives the right side a meaning:
    incorrect (one letter used for units of two layers, or a transposed index)."""
    resolver = Resolver(ctx.truth, ctx.profile)
    try:
        lhs_bindings = resolver.bindings(claim.sides[:1], claim.notes)
    except CannotCheck:
        return None
    ce = concrete_counterexample(claim, ctx, str(exc))
    failure = Failure(0, lhs_bindings[0], 1, None, None, str(exc))
    return Verdict(claim.text, "incorrect", diagnosis=f"{INDEX}: {exc}", counterexample=ce,
                   expected=true_formula(claim, failure, ctx), method=METHOD,
                   confidence="certain: the indices contradict the network's layers")


def true_formula(claim: Claim, failure: Failure, ctx: Context) -> str | None:
    """The Derivation's own formula for the claim's left side at the counterexample, in the profile."""
    d = ctx.truth.d
    ev = Evaluator(ctx.truth, ctx.profile, ctx.signs, ctx.truth.points[failure.point], failure.binding)
    printer = NotationPrinter(ctx.profile, {l: layer.activation.latex for l, layer in enumerate(d.network.layers, 1)})
    lhs, kind = claim.sides[0], claim_kind(claim, ctx)
    rel = "="
    try:
        if isinstance(lhs, Deriv) and isinstance(lhs.num, Sym) and isinstance(lhs.wrt, Sym):
            key = ev.key(lhs.wrt)
            if ev.key(lhs.num)[0] != "loss" or key[0] not in ("W", "b"):
                return None
            p = SymbolicClaim(ev).key_symbol(key)
            loss = NAMES.get(lhs.num.name, lhs.num.name)
            left = rf"\frac{{\partial {loss}}}{{\partial {latex(p, printer)}}}"
            right = d.compact_gradient(p)
        elif kind == "update":
            key = ev.key(lhs)
            if key[0] not in ("W", "b"):
                return None
            p = SymbolicClaim(ev).key_symbol(key)
            left, rel = latex(p, printer), r"\leftarrow"
            right = p - sp.Symbol(ctx.profile.learning_rate.lstrip("\\")) * d.compact_gradient(p)
        elif kind == "delta":
            key = ev.key(lhs)
            if key[0] != "delta":
                return None
            sign = ctx.signs.get(key[3], 1)
            left, right = latex(sign * d.delta_symbol(key[1], key[2]), printer), d.delta(key[1], key[2])
        elif isinstance(lhs, Sym) and ev.key(lhs)[0] in ("z", "a") and ev.key(lhs)[1] >= 1:
            key = ev.key(lhs)
            sym = SymbolicClaim(ev).key_symbol(key)
            right = d.graph.z_def[key[1]][key[2] - 1] if key[0] == "z" else d.graph.a_def[key[1]][key[2] - 1]
            left = latex(sym, printer)
        else:
            return None
        where = ", ".join(f"{k}={v}" for k, v in failure.binding.units)
        return f"{left} {rel} {latex(right, printer)}" + (f" \\text{{ (at {where})}}" if where else "")
    except (CannotCheck, KeyError, ValueError, TypeError, AttributeError):
        return None


def check(spec: Any, text: str, notation: str | None = None, derivation: Derivation | None = None
          ) -> list[Verdict]:
    """Check every claim in ``text`` (one per line, or align lines) against ``spec``."""
    from .judge import judge, judge_claim, new_context, profile_quantities, profile_words, relation_in
    from .layers import check_layers, claim_target

    d = derivation if derivation is not None else claim_target(spec)
    if not isinstance(d, Derivation):  # a spec with layer kinds
        return check_layers(d, text, notation)
    ctx = new_context(d, notation)
    verdicts = []
    for n, line in enumerate(split_claims(text), start=1):
        try:
            claim = parse_claim(line, profile_words(ctx), profile_quantities(ctx))
        except ClaimSyntaxError as exc:
            if relation_in(line):
                raise ClaimSyntaxError(f"claim {n}: {exc}") from None
            claim = None
        v = judge(line, ctx) if claim is None else judge_claim(claim, ctx)
        v.line = n
        verdicts.append(v)
    return verdicts
