"""Vector (matrix) form of the general index results, and its explicit instance.

:func:`to_matrix` turns an element-wise index expression in ``j`` from
:mod:`symbackprop.engine.general` into a SymPy matrix expression: ``a2[j]`` becomes the
vector ``a2``, products of element-wise factors become Hadamard products and
``Sum(W3[k, j] * delta3[k], k)`` becomes ``W3.T * delta3``.  :func:`explicit`
substitutes the concrete per-unit symbols of a network, so a test can compare
the printed matrix formula with the concrete deltas of the derivation.
"""

from __future__ import annotations

import re

import sympy as sp

from . import general
from .general import J, K

_STEM = re.compile(r"^([A-Za-z]+)(\d*)$")


def vector(name: str, rows: sp.Expr, cols: sp.Expr = 1) -> sp.MatrixSymbol:
    """A named column vector (or matrix) of symbolic size."""
    return sp.MatrixSymbol(name, rows, cols)


def size_of(label: str, L: int) -> sp.Symbol:
    """The symbolic length of a layer quantity by its stem: ``a2`` -> n2, ``t`` -> nL, ``x`` -> n0."""
    if label == "t":
        return general.size(L)
    if label == "x":
        return general.size(0)
    return general.size(int(_STEM.match(label).group(2)))


def ones(n: sp.Expr) -> sp.MatrixSymbol:
    return sp.MatrixSymbol("1", n, 1)


class NotElementwise(ValueError):
    """The index expression has no plain vector form (e.g. a Piecewise or a softmax sum)."""


def to_matrix(expr: sp.Expr, L: int, n: sp.Expr, prime: dict | None = None) -> sp.MatrixExpr:
    """The vector form of an element-wise expression in ``j`` of length ``n``.

    ``prime`` maps a factor (e.g. the general f'(z[j])) to a named vector to keep it as a name.
    """
    prime = prime or {}
    if expr in prime:
        return prime[expr]
    if isinstance(expr, sp.Indexed):
        if tuple(expr.indices) != (J,):
            raise NotElementwise(str(expr))
        label = str(expr.base.label)
        return vector(label, size_of(label, L))
    if isinstance(expr, sp.Sum):
        (var, lo, _hi), = expr.limits
        body = expr.function
        factors = sp.Mul.make_args(body)
        if var != K or lo != 1 or len(factors) != 2:
            raise NotElementwise(str(expr))
        W = next((f for f in factors if isinstance(f, sp.Indexed) and tuple(f.indices) == (K, J)), None)
        d = next((f for f in factors if isinstance(f, sp.Indexed) and tuple(f.indices) == (K,)), None)
        if W is None or d is None:
            raise NotElementwise(str(expr))
        m = size_of(str(d.base.label), L)
        return sp.MatMul(sp.Transpose(vector(str(W.base.label), m, n)), vector(str(d.base.label), m))
    if isinstance(expr, sp.Mul):
        for key, named in prime.items():
            inside = sp.Mul.make_args(key)
            if len(inside) > 1 and all(f in expr.args for f in inside):
                rest = [f for f in expr.args if f not in inside]
                return sp.HadamardProduct(named, to_matrix(sp.Mul(*rest), L, n, prime)) if rest else named
        scalars = [f for f in expr.args if not f.has(sp.Indexed) and f not in prime]
        parts = [to_matrix(f, L, n, prime) for f in expr.args if f not in scalars]
        body = parts[0] if len(parts) == 1 else sp.HadamardProduct(*parts)
        return sp.Mul(*scalars) * body if scalars else body
    if isinstance(expr, sp.Add):
        terms = []
        for t in expr.args:
            if t.is_number:
                terms.append(t * ones(n) if t != 1 else ones(n))
            else:
                terms.append(to_matrix(t, L, n, prime))
        return sp.MatAdd(*terms)
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 0:
        return sp.HadamardPower(to_matrix(expr.base, L, n, prime), expr.exp)
    raise NotElementwise(str(expr))


def explicit(mexpr: sp.MatrixExpr, derivation, values: dict | None = None) -> sp.Matrix:
    """``mexpr`` with every vector and matrix replaced by the network's concrete symbols."""
    g, sizes = derivation.graph, derivation.network.sizes
    dims = {general.size(l): n for l, n in enumerate(sizes)}
    sub: dict = {}
    for ms in mexpr.atoms(sp.MatrixSymbol):
        name = ms.name
        if values and name in values:
            sub[ms] = sp.Matrix(values[name])
            continue
        m = _STEM.match(name)
        stem, l = (m.group(1), int(m.group(2)) if m.group(2) else None) if m else (name, None)
        if name == "1":
            sub[ms] = sp.ones(int(ms.shape[0].subs(dims)), 1)
        elif stem == "x" or (stem == "a" and l == 0):
            sub[ms] = sp.Matrix(g.x)
        elif stem == "t":
            sub[ms] = sp.Matrix(g.t)
        elif stem == "W":
            sub[ms] = sp.Matrix(g.W[l])
        elif stem in ("a", "z"):
            sub[ms] = sp.Matrix(getattr(g, stem)[l])
        elif stem == "b":
            sub[ms] = sp.Matrix(g.b[l])
        elif stem == "delta":
            sub[ms] = sp.Matrix([derivation.delta_symbol(l, j) for j in range(1, sizes[l] + 1)])
        else:
            raise KeyError(f"no concrete value for {name}")
    return sp.Matrix(mexpr.xreplace(sub).subs(dims).doit())
