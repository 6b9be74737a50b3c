"""Symbolic confirmation where cheap: a claim at one index value, as SymPy, against the Derivation.

Both sides are written in the derivation's compact symbols (z, W, b, x, t and the
next layer's deltas, with every activation ``a`` replaced by ``f(z)``) and
compared with :func:`symbackprop.engine.verify.symbolic_equal`.  Only claims built from
plain quantities, sums and the network's functions are attempted; anything else
(finite-difference derivatives, matrices) is left to the numeric check.  The
symbolic result only ever adds confidence: it never overturns a numeric verdict.
"""

from __future__ import annotations

import sympy as sp

from ..engine.graph import symbol
from ..engine.verify import constraint_substitution, symbolic_equal
from ..registry import ops
from .evaluate import GENERIC_ACTIVATIONS, CannotCheck, Evaluator
from .nodes import Node, Sym

MAX_OPS = 400


class NotCheap(Exception):
    """The claim is outside what the symbolic check attempts."""


class SymbolicClaim:
    """Converts claim trees to SymPy under one binding (keys resolved by an Evaluator)."""

    def __init__(self, ev: Evaluator):
        self.ev, self.d = ev, ev.truth.d
        self.alpha = sp.Symbol("alpha", positive=True)

    def convert(self, node: Node) -> sp.Expr:
        method = getattr(self, "_c_" + type(node).__name__, None)
        if method is None:
            raise NotCheap(type(node).__name__)
        return method(node)

    def _c_Num(self, node):
        return sp.Rational(node.value.numerator, node.value.denominator)

    def _c_Idx(self, node):
        if node.name in self.ev.units:
            return sp.Integer(self.ev.units[node.name])
        raise NotCheap("free letter")

    def _c_Paren(self, node):
        return self.convert(node.arg)

    _c_Brackets = _c_Paren

    def _c_Neg(self, node):
        return -self.convert(node.arg)

    def _c_Pow(self, node):
        exp = self.convert(node.exp)
        if not exp.is_number or abs(exp) > 64:
            raise NotCheap("power")
        return self.convert(node.base) ** exp

    def _c_Bin(self, node):
        a, b = self.convert(node.left), self.convert(node.right)
        if node.op == "+":
            return a + b
        if node.op == "-":
            return a - b
        if node.op == "/":
            return a / b
        return a * b

    def _c_SumOver(self, node):
        layer = self.ev.layers.get(node.var)
        if layer is None or node.lower is not None or node.upper is not None:
            raise NotCheap("sum")
        total = sp.Integer(0)
        for u in range(1, self.ev.truth.sizes[layer] + 1):
            sub = SymbolicClaim(self.ev.sub(units={**self.ev.units, node.var: u}))
            total += sub.convert(node.body)
        return total

    def key_symbol(self, key: tuple) -> sp.Expr:
        kind = key[0]
        if kind == "W":
            return symbol(f"W{key[1]}_{key[2]}_{key[3]}")
        if kind == "b":
            return symbol(f"b{key[1]}_{key[2]}")
        if kind == "z":
            return symbol(f"z{key[1]}_{key[2]}")
        if kind == "a":
            return symbol(f"x_{key[2]}") if key[1] == 0 else symbol(f"a{key[1]}_{key[2]}")
        if kind == "t":
            return symbol(f"t_{key[1]}")
        if kind == "delta":
            return self.ev.signs.get(key[3], 1) * self.d.delta_symbol(key[1], key[2])
        if kind == "lr":
            return self.alpha
        if kind == "euler":
            return sp.E
        raise NotCheap(kind)

    def _c_Sym(self, node):
        key = self.ev.key(node)
        if key[0].endswith("_all") or key[0] in ("loss", "free"):
            raise NotCheap("not a unit quantity")
        return self.key_symbol(key)

    def _c_Call(self, node):
        if len(node.args) != 1 or node.primes > 1:
            raise NotCheap("call")
        arg = self.convert(node.args[0])
        if node.func in ("exp", "log") and not node.primes:
            return sp.exp(arg) if node.func == "exp" else sp.log(arg)
        if node.func in GENERIC_ACTIVATIONS:
            act = self.ev.truth.activation(self.ev.activation_layer(node.args[0]))
        elif node.func in ("sigmoid", "tanh", "relu"):
            act = ops.activation(node.func)
        else:
            raise NotCheap(node.func)
        if act.vector:
            raise NotCheap("softmax")
        form = act.derivative if node.primes else act.expr
        return form.subs(ops.X, arg)

    def _c_Deriv(self, node):
        if node.body is not None or not isinstance(node.num, Sym) or not isinstance(node.wrt, Sym):
            raise NotCheap("derivative")
        num, wrt = self.ev.key(node.num), self.ev.key(node.wrt)
        if num[0] != "loss":
            raise NotCheap("derivative")
        if wrt[0] in ("W", "b"):
            return self.d.compact_gradient(self.key_symbol(wrt))
        if wrt[0] == "z":
            return self.d.delta_symbol(wrt[1], wrt[2])
        raise NotCheap("derivative")

    def in_z(self, expr: sp.Expr) -> sp.Expr:
        """Every activation a{l}_j replaced by its definition in z; targets constrained."""
        g = self.d.graph
        sub = {}
        for l in range(1, self.d.L + 1):
            sub.update(zip(g.a[l], g.a_def[l]))
        return expr.xreplace(sub).xreplace(constraint_substitution(self.d))


def symbolic_check(claim, kind: str, ev: Evaluator, sign: int = 1) -> bool | None:
    """True when both sides are proven equal at this binding; None when not attempted."""
    sc = SymbolicClaim(ev)
    try:
        lhs = claim.sides[0]
        if kind == "update":
            key = ev.key(lhs)
            if key[0] not in ("W", "b"):
                return None
            p = sc.key_symbol(key)
            left = p - sc.alpha * ev.truth.d.compact_gradient(p)
        elif kind == "delta":
            key = ev.key(lhs)
            if key[0] != "delta":
                return None
            left = sign * ev.truth.d.delta(key[1], key[2])
        else:
            left = sc.convert(lhs)
        for side in claim.sides[1:]:
            right = sc.convert(side)
            if sp.count_ops(left) + sp.count_ops(right) > MAX_OPS:
                return None
            if not symbolic_equal(sc.in_z(left), sc.in_z(right)):
                return None
        return True
    except (NotCheap, CannotCheck, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None

