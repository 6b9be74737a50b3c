"""Diagnose a wrong claim: find the common mistake whose repair makes it correct.

Each candidate repair rewrites a copy of the claim tree (flip a sign, put the
activation derivative back, evaluate it at z instead of a, transpose, swap an
index, move a layer, add a sum or a bias, fix a constant factor, flip the
update's sign) and the repaired claim is checked like any other.  The first
repair that passes names the mistake, and the repaired claim is the fix, in
the user's own notation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from fractions import Fraction

import numpy as np

from .evaluate import GENERIC_ACTIVATIONS, CannotCheck, kind_of, plain_name, weight_order
from .nodes import (
    Bin,
    Call,
    Claim,
    Deriv,
    Idx,
    Neg,
    Node,
    Num,
    Paren,
    Pow,
    SumOver,
    Sym,
    Transpose,
    walk,
    weight_indices,
)

SIGN = "sign flipped"
ACT_FACTOR = "missing activation-derivative factor"
PRIME_AT_A = "activation derivative applied to a instead of z"
INDEX = "transposed or wrong index"
LAYER = "wrong layer"
SUM = "sum missing or over the wrong index"
FACTOR = "off by a constant factor"
BIAS = "missing bias term"
ASCENT = "learning-rate sign makes the update an ascent"
EXTRA = "extra activation-derivative factor"
WRONG_ARG = "activation derivative applied to the wrong argument (z and a = f(z) swapped)"
HADAMARD = "Hadamard (elementwise) product confused with the matrix product"
X_FOR_A = "wrong layer: the input x where a layer's activations belong"
A_FOR_X = "a instead of x in the first layer (the input is x)"
SOFTMAX = ("diagonal-only softmax Jacobian: softmax's derivative is diag(y) - y y^T, not y(1 - y); "
           "with cross-entropy the output delta is simply y - t")
MEAN = "missing 1/m (the batch mean)"
MISSING_CURRENT = "missing term: the update starts from the parameter's current value"
KINDS = (SIGN, ACT_FACTOR, PRIME_AT_A, INDEX, LAYER, SUM, FACTOR, BIAS, ASCENT, EXTRA, WRONG_ARG, HADAMARD,
         X_FOR_A, A_FOR_X, SOFTMAX, MEAN, MISSING_CURRENT)

PREACTIVATION = {"seed": "z", "wikipedia": "net", "aima": "in", "bishop": "a"}
ACTIVATION_FN = {"seed": "sigma", "wikipedia": "varphi", "aima": "g", "bishop": "h"}


def rebuild(node: Node, fn: Callable[[Node], Node | None]) -> Node:
    """Copy of ``node`` with ``fn`` applied top-down (``fn`` returns a replacement or None)."""
    new = fn(node)
    if new is not None:
        return new
    if isinstance(node, Sym):
        layer = rebuild(node.layer, fn) if node.layer is not None else None
        index = tuple(rebuild(i, fn) for i in node.index) if node.index is not None else None
        return replace(node, layer=layer, index=index)
    if isinstance(node, Call):
        return replace(node, args=tuple(rebuild(a, fn) for a in node.args))
    if isinstance(node, Bin):
        return replace(node, left=rebuild(node.left, fn), right=rebuild(node.right, fn))
    if isinstance(node, (Neg, Transpose, Paren)):
        return replace(node, arg=rebuild(node.arg, fn))
    if isinstance(node, Pow):
        return replace(node, base=rebuild(node.base, fn), exp=rebuild(node.exp, fn))
    if isinstance(node, Deriv):
        return replace(node, num=None if node.num is None else rebuild(node.num, fn),
                       wrt=rebuild(node.wrt, fn), body=None if node.body is None else rebuild(node.body, fn))
    if isinstance(node, SumOver):
        return replace(node, body=rebuild(node.body, fn))
    return node


def _with_side(claim: Claim, i: int, side: Node) -> Claim:
    sides = list(claim.sides)
    sides[i] = side
    return replace(claim, sides=tuple(sides))


def _unit_of_lhs(claim: Claim, profile) -> tuple[Node | None, tuple | None] | None:
    """(layer, index) of the unit a delta or gradient claim is about."""
    lhs = claim.sides[0]
    if isinstance(lhs, Sym) and kind_of(lhs, profile) in ("delta", "z", "a", "bias", "grad"):
        return lhs.layer, lhs.index
    if isinstance(lhs, Sym) and kind_of(lhs, profile) == "weight" or (
            isinstance(lhs, Deriv) and isinstance(lhs.wrt, Sym)):
        w = lhs if isinstance(lhs, Sym) else lhs.wrt
        kind = kind_of(w, profile)
        if kind == "bias":
            return w.layer, w.index
        if kind == "weight":
            if w.index is None:
                return w.layer, None
            idx = weight_indices(w.index)
            to = idx[0] if weight_order(w, profile) == "to_from" else idx[-1]
            return w.layer, (to,)
        if kind in ("z", "delta"):
            return w.layer, w.index
    return None


def _activation_name(claim: Claim, profile) -> str:
    for side in claim.sides:
        for n in walk(side):
            if isinstance(n, Call) and n.func in GENERIC_ACTIVATIONS:
                return n.func
    return ACTIVATION_FN.get(profile.name, "sigma")


def _z_name(claim: Claim, profile) -> str:
    for side in claim.sides:
        for n in walk(side):
            if isinstance(n, Sym) and kind_of(n, profile) == "z":
                return n.name
    return PREACTIVATION.get(profile.name, "z")


def candidates(claim: Claim, side: int, kind: str, ctx, ratio: float | None) -> Iterator[tuple[str, Claim]]:
    prof = ctx.profile
    lhs, rhs = claim.sides[0], claim.sides[side]
    if kind == "update":
        if lhs not in list(walk(rhs)):
            yield MISSING_CURRENT, _with_side(claim, side, Bin("+", lhs, rhs))
        if isinstance(rhs, Bin) and rhs.op in "+-":
            yield ASCENT, _with_side(claim, side, replace(rhs, op="-" if rhs.op == "+" else "+"))
        others = {n for n in walk(rhs) if isinstance(n, Sym) and kind_of(n, prof) == kind_of(lhs, prof)
                  and n != lhs}
        for other in sorted(others, key=repr):
            yield INDEX, _with_side(claim, 0, other)
    if isinstance(rhs, Neg):
        yield SIGN, _with_side(claim, side, rhs.arg)
    for n in [n for n in walk(rhs) if isinstance(n, Bin) and n.op == "-"]:  # (y - a) for (a - y)
        yield SIGN, _with_side(claim, side, rebuild(rhs, lambda m, n=n: replace(n, left=n.right, right=n.left)
                                                    if m is n else None))
    if not isinstance(rhs, Neg):
        yield SIGN, _with_side(claim, side, Neg(rhs))
    z_name, f_name = _z_name(claim, prof), _activation_name(claim, prof)
    # sigma'(a) -> sigma'(z)
    def at_z(n):
        if isinstance(n, Call) and n.primes and len(n.args) == 1 and isinstance(n.args[0], Sym) \
                and kind_of(n.args[0], prof) in ("a", "output"):
            a = n.args[0]
            return replace(n, args=(Sym(z_name, a.layer, a.index, False, a.layer_parens),))
        return None
    fixed = rebuild(rhs, at_z)
    if fixed != rhs:
        label = PRIME_AT_A if prof.name != "bishop" else (
            "activation derivative applied to the activation z instead of the pre-activation a")
        yield label, _with_side(claim, side, fixed)
    unit = _unit_of_lhs(claim, prof)
    if unit is not None:
        layer, index = unit
        z = Sym(z_name, layer, index)
        if isinstance(lhs, Sym) and kind_of(lhs, prof) == "grad":  # Ng: dZ^{[1]} -> g'(Z^{[1]})
            z = Sym("Z" if lhs.name[1:].isupper() else "z", layer, index, False, lhs.layer_parens)
        factor = Call(f_name, (z,), 1)
        yield ACT_FACTOR, _with_side(claim, side, Bin("odot" if index is None else "*", Paren(rhs), factor, ""))
        if isinstance(lhs, Sym) and kind_of(lhs, prof) == "z":
            yield BIAS, _with_side(claim, side, Bin("+", rhs, Sym("b", layer, index)))
        if isinstance(lhs, Sym) and kind_of(lhs, prof) in ("a", "output"):
            def add_bias(n):
                if isinstance(n, Call) and n.func in GENERIC_ACTIVATIONS and not n.primes and len(n.args) == 1:
                    return replace(n, args=(Bin("+", n.args[0], Sym("b", layer, index)),))
                return None
            yield BIAS, _with_side(claim, side, rebuild(rhs, add_bias))
    yield from _more_candidates(claim, side, rhs, ctx, z_name, f_name)
    # layers one up or down
    layers = sorted({n.layer for n in walk(rhs) if isinstance(n, Sym) and n.layer is not None}, key=repr)
    for old in layers:
        for step in (1, -1):
            new = _shift(old, step)
            yield LAYER, _with_side(claim, side, rebuild(rhs, lambda n, o=old, v=new:
                                                         replace(n, layer=v) if isinstance(n, Sym)
                                                         and n.layer == o else None))
    # one occurrence moved a layer up or down
    for occ in [n for n in walk(rhs) if isinstance(n, Sym) and n.layer is not None]:
        for step in (1, -1):
            yield LAYER, _with_side(claim, side, rebuild(rhs, lambda n, o=occ, st=step:
                                                         replace(n, layer=_shift(n.layer, st))
                                                         if n is o else None))
    # transposes
    transposes = [n for n in walk(rhs) if isinstance(n, Transpose)]
    for t in transposes:
        yield INDEX, _with_side(claim, side, rebuild(rhs, lambda n, t=t: n.arg if n is t else None))
    matrices = [n for n in walk(rhs) if isinstance(n, Sym) and n.index is None and n.layer is not None]
    for m in matrices:
        yield INDEX, _with_side(claim, side, rebuild(rhs, lambda n, m=m: Transpose(n) if n is m else None))
    # a product written in the transposed order: A B -> B^T A^T, or two factors swapped
    if isinstance(rhs, Bin) and rhs.op == "*":
        yield INDEX, _with_side(claim, side, Bin("*", _toggle_t(rhs.right), _toggle_t(rhs.left), rhs.spelled))
        factors = _factors(rhs)
        for i in range(len(factors)):
            for j in range(i + 1, len(factors)):
                if factors[i][0] == factors[j][0] == "*" and not _constant(factors[i][1]) \
                        and not _constant(factors[j][1]):
                    swapped = list(factors)
                    swapped[i], swapped[j] = (factors[i][0], factors[j][1]), (factors[j][0], factors[i][1])
                    yield INDEX, _with_side(claim, side, _product_of(swapped))
    # index letters swapped or replaced
    letters = sorted({n.name for s in claim.sides for n in walk(s) if isinstance(n, Idx)} - {"L", "n", "l"})
    rhs_letters = sorted({n.name for n in walk(rhs) if isinstance(n, Idx)} - {"L", "n", "l"})
    for p in rhs_letters:
        for q in letters:
            if p == q:
                continue
            swap = {p: q, q: p}
            yield INDEX, _with_side(claim, side, rebuild(rhs, lambda n, s=swap: Idx(s[n.name])
                                                         if isinstance(n, Idx) and n.name in s else None))
            yield INDEX, _with_side(claim, side, rebuild(rhs, lambda n, p=p, q=q: Idx(q)
                                                         if isinstance(n, Idx) and n.name == p else None))
    # one occurrence's index letter replaced (delta_j a_j for delta_j a_k)
    for occ in [n for n in walk(rhs) if isinstance(n, Sym) and n.index]:
        for pos, i in enumerate(occ.index):
            if isinstance(i, Idx):
                for q in letters:
                    if q != i.name:
                        idx = list(occ.index)
                        idx[pos] = Idx(q)
                        yield INDEX, _with_side(claim, side, rebuild(rhs, lambda n, o=occ, idx=tuple(idx):
                                                                     replace(n, index=idx) if n is o else None))
    lhs_sym = lhs if isinstance(lhs, Sym) else None
    for p in rhs_letters:
        for q in letters:
            if p != q:
                swap = {p: q, q: p}
                yield INDEX, _with_side(claim, side, _swap_outside(rhs, swap, lhs_sym))
    values = sorted({int(i.value) for n in walk(rhs) if isinstance(n, Sym) and n.index
                     for i in n.index if isinstance(i, Num)})
    for a_ in values:
        for b_ in values:
            if a_ < b_:
                swap = {a_: b_, b_: a_}
                yield INDEX, _with_side(claim, side, rebuild(rhs, lambda n, s=swap: replace(n, index=tuple(
                    Num(Fraction(s.get(int(i.value), int(i.value)))) if isinstance(i, Num) else i
                    for i in n.index)) if isinstance(n, Sym) and n.index else None))
    for s in [n for n in walk(rhs) if isinstance(n, Sym) and n.index and len(n.index) == 2]:
        yield INDEX, _with_side(claim, side, rebuild(rhs, lambda n, s=s: replace(n, index=n.index[::-1])
                                                     if n is s else None))
    numbers = [n for n in walk(rhs) if isinstance(n, Sym) and n.index and any(isinstance(i, Num) for i in n.index)]
    top = max(ctx.truth.sizes)
    for s in numbers:
        for pos, i in enumerate(s.index):
            if isinstance(i, Num):
                for v in range(1, top + 1):
                    if v != i.value:
                        idx = list(s.index)
                        idx[pos] = Num(Fraction(v))
                        yield INDEX, _with_side(claim, side, rebuild(rhs, lambda n, s=s, idx=tuple(idx):
                                                                     replace(n, index=idx) if n is s else None))
    # sums
    lhs_letters = {n.name for n in walk(lhs) if isinstance(n, Idx)}
    for s in [n for n in walk(rhs) if isinstance(n, SumOver)]:
        for q in letters:
            if q != s.var:
                yield SUM, _with_side(claim, side, rebuild(rhs, lambda n, s=s, q=q: replace(n, var=q)
                                                           if n is s else None))
    bound = {n.var for n in walk(rhs) if isinstance(n, SumOver)}
    for letter in sorted(set(rhs_letters) - lhs_letters - bound):
        yield SUM, _with_side(claim, side, SumOver(letter, None, None, rhs))
        for n in walk(rhs):
            if isinstance(n, Bin) and n.op == "*" and any(isinstance(m, Idx) and m.name == letter for m in walk(n)):
                yield SUM, _with_side(claim, side, rebuild(rhs, lambda m, n=n, v=letter: SumOver(v, None, None, n)
                                                           if m is n else None))
    if ctx.truth.batch_mode:  # Ng: dW = (1/m) dZ A^T; a missing or extra 1/m
        m = Sym("m")
        if ratio is not None and abs(ratio - ctx.truth.BATCH) < 1e-6 * ctx.truth.BATCH:
            yield MEAN, _with_side(claim, side, Bin("*", Bin("/", Num(Fraction(1)), m, "frac"), rhs))
    if ratio is not None and abs(ratio) > 1e-9:
        c = Fraction(ratio).limit_denominator(12)
        if abs(float(c) - ratio) < 1e-6 * max(1, abs(ratio)) and c not in (0, 1, -1):
            if isinstance(rhs, Bin) and rhs.op == "*" and isinstance(rhs.left, Num):
                scaled = rhs.left.value / c
                fixed = rhs.right if scaled == 1 else replace(rhs, left=Num(scaled))
            else:
                fixed = Bin("*", Num(1 / c), Paren(rhs))
            yield FACTOR + f" ({c} times the true value)", _with_side(claim, side, fixed)


def _factors(node: Node) -> list[tuple[str, Node]]:
    """A product chain as [(op, factor), ...] (the first op is '*')."""
    if isinstance(node, Bin) and node.op in ("*", "odot"):
        left = _factors(node.left)
        return left + [(node.op, node.right)]
    return [("*", node)]


def _product_of(factors: list[tuple[str, Node]]) -> Node:
    out = factors[0][1]
    for op, f in factors[1:]:
        out = Bin(op, out, f, "odot" if op == "odot" else "")
    return out


def _constant(node: Node) -> bool:
    """A number or a constant fraction such as 1/m."""
    node = _bare(node)
    return isinstance(node, Num) or isinstance(node, Bin) and node.op == "/" and isinstance(node.left, Num)


def _bare(node: Node) -> Node:
    while isinstance(node, Paren):
        node = node.arg
    return node


def _is_one_minus(node: Node, x: Node) -> bool:
    node = _bare(node)
    return isinstance(node, Bin) and node.op == "-" and node.left == Num(Fraction(1)) and _bare(node.right) == _bare(x)


def _more_candidates(claim, side, rhs, ctx, z_name, f_name):
    """Extra derivative factors, z/a swapped, Hadamard/matrix products confused, x for a, softmax."""
    prof = ctx.profile
    softmax_out = ctx.truth.net.layers[-1].activation.vector
    products = [n for n in walk(rhs) if isinstance(n, Bin) and n.op in ("*", "odot")]
    tops = [n for n in products if not any(n is not p and (n is p.left or n is p.right) for p in products)]
    for top in tops:
        factors = _factors(top)
        if len(factors) < 2:
            continue
        for i, (_, f) in enumerate(factors):  # a derivative factor too many
            if isinstance(_bare(f), Call) and _bare(f).primes:
                rest = factors[:i] + factors[i + 1:]
                rest[0] = ("*", rest[0][1])
                yield EXTRA, _with_side(claim, side, rebuild(rhs, lambda n, t=top, r=rest: _product_of(r)
                                                             if n is t else None))
        for i, (_, f) in enumerate(factors):  # x (1 - x): sigma' written out, once too often
            for j, (_, g) in enumerate(factors):
                if i != j and _is_one_minus(g, f) and len(factors) > 2:
                    rest = [fa for k, fa in enumerate(factors) if k not in (i, j)]
                    rest[0] = ("*", rest[0][1])
                    x = _bare(f)
                    about_output = isinstance(x, Sym) and kind_of(x, prof) in ("output", "a")
                    label = SOFTMAX if softmax_out and about_output else EXTRA
                    yield label, _with_side(claim, side, rebuild(rhs, lambda n, t=top, r=rest: _product_of(r)
                                                                 if n is t else None))
    # z and a swapped: sigma'(z) = z(1 - z), tanh'(a) = 1 - a^2 with a the pre-activation
    a_name = {"seed": "a", "wikipedia": "o", "aima": "a", "bishop": "z"}.get(prof.name, "a")
    swap = {"z": a_name, "a": z_name}

    def swap_za(n):
        if isinstance(n, Deriv):
            return n
        if isinstance(n, Sym) and kind_of(n, prof) in swap and (n.layer is not None or n.index is not None):
            return replace(n, name=swap[kind_of(n, prof)])
        return None
    swapped = rebuild(rhs, swap_za)
    if swapped != rhs:
        yield WRONG_ARG, _with_side(claim, side, swapped)
    # an activation written where its derivative belongs: phi(net) for phi'(net)
    for call in [n for n in walk(rhs) if isinstance(n, Call) and n.func in GENERIC_ACTIVATIONS and not n.primes]:
        yield ACT_FACTOR, _with_side(claim, side, rebuild(rhs, lambda n, c=call: replace(n, primes=1)
                                                          if n is c else None))
    # Hadamard and matrix products confused
    for b in products:
        if b.op == "odot":
            yield HADAMARD, _with_side(claim, side, rebuild(rhs, lambda n, b=b: Bin("*", n.left, n.right)
                                                            if n is b else None))
            yield HADAMARD, _with_side(claim, side, rebuild(rhs, lambda n, b=b: Bin("*", n.left, Transpose(n.right))
                                                            if n is b else None))
        else:
            inner = _bare(b.right)
            if isinstance(inner, Bin) and inner.op == "odot":  # A (B o C) -> (A B) o C
                yield HADAMARD, _with_side(claim, side, rebuild(rhs, lambda n, b=b, c=inner: Bin(
                    "odot", Bin("*", b.left, c.left, b.spelled), c.right, "odot") if n is b else None))
            yield HADAMARD, _with_side(claim, side, rebuild(rhs, lambda n, b=b: Bin("odot", n.left, n.right, "odot")
                                                            if n is b else None))
    # x where a^{(l)} belongs, and a^{(0)} or a^{(1)} where x belongs
    L = ctx.truth.L
    xs = [n for n in walk(rhs) if isinstance(n, Sym) and kind_of(n, prof) == "x"]
    for x in xs:
        for layer in range(1, L):
            a = Sym(a_name, Num(Fraction(layer)), x.index, False, True)
            yield X_FOR_A, _with_side(claim, side, rebuild(rhs, lambda n, x=x, a=a: a if n is x else None))
    x_name = plain_name(prof.input)
    for a in [n for n in walk(rhs) if isinstance(n, Sym) and kind_of(n, prof) == "a" and n.layer is not None]:
        yield A_FOR_X, _with_side(claim, side, rebuild(rhs, lambda n, a=a: Sym(x_name, None, a.index)
                                                       if n is a else None))


def _shift(layer: Node, step: int) -> Node:
    """A layer one up or down: 2 -> 3, l -> l+1, l+1 -> l."""
    if isinstance(layer, Num):
        return Num(layer.value + step)
    if isinstance(layer, Bin) and layer.op in "+-" and isinstance(layer.right, Num):
        value = layer.right.value * (1 if layer.op == "+" else -1) + step
        if value == 0:
            return layer.left
        return Bin("+" if value > 0 else "-", layer.left, Num(abs(value)))
    return Bin("+" if step > 0 else "-", layer, Num(Fraction(1)))


def _toggle_t(node: Node) -> Node:
    return node.arg if isinstance(node, Transpose) else Transpose(node)


def _swap_outside(node: Node, swap: dict, keep: Sym | None) -> Node:
    """Swap index letters everywhere except inside the symbol ``keep`` (the updated weight)."""
    def fn(n):
        if keep is not None and n == keep:
            return n
        if isinstance(n, Idx) and n.name in swap:
            return Idx(swap[n.name])
        return None
    return rebuild(node, fn)


def diagnose(claim: Claim, failure, ctx, evaluate_claim) -> tuple[str, Claim] | None:
    """The first common mistake whose repair makes the claim correct, and the repaired claim."""
    from .checker import claim_kind

    kind = claim_kind(claim, ctx)
    ratio = None
    if isinstance(failure.left, np.ndarray) and isinstance(failure.right, np.ndarray) \
            and failure.left.shape == failure.right.shape:
        mask = abs(failure.left) > 1e-9
        if mask.any():
            r = (failure.right[mask] / failure.left[mask])
            if abs(r.max() - r.min()) < 1e-6 * max(1.0, abs(r).max()):
                ratio = float(r.mean())
    seen = 0
    for label, candidate in candidates(claim, failure.side, kind, ctx, ratio):
        seen += 1
        if seen > 200:
            break
        try:
            fail, _, _ = evaluate_claim(candidate, ctx, points=2)
            if fail is None:
                fail, _, _ = evaluate_claim(candidate, ctx)
        except (CannotCheck, KeyError, IndexError, ValueError, ZeroDivisionError):
            continue
        if fail is None:
            lhs = claim.sides[0]
            if label == SIGN and isinstance(lhs, Sym) and kind_of(lhs, ctx.profile) == "step":
                label = ASCENT + " (the update amount has the sign of the gradient)"
            if label == INDEX and kind == "update" and candidate.sides[0] != claim.sides[0]:
                label = f"{INDEX}: the right side updates a different weight than the left side names"
            return label, candidate
    return None


def named_mistake(claim: Claim, ctx) -> str | None:
    """A mistake recognised by its form when no repair was found (softmax's derivative as y(1 - y))."""
    if not ctx.truth.net.layers[-1].activation.vector:
        return None
    for side in claim.sides[1:]:
        for n in walk(side):
            if isinstance(n, Bin) and n.op == "-" and n.left == Num(Fraction(1)) and isinstance(_bare(n.right), Sym) \
                    and kind_of(_bare(n.right), ctx.profile) in ("output", "a"):
                return SOFTMAX
    return None
