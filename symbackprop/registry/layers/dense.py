"""A dense layer: ``z = x W^T + b`` per sample, then the activation ``a = f(z)``.

Its options (``units``, ``activation``, ``bias``) are read by the spec loader as
they always were; a spec layer without ``type`` is dense.  Within the layer
graph the local derivatives are SymPy's: ``dz/dW[j, k] = x[k]``, ``dz/db = 1``,
and ``f'`` from the activation registry (softmax through its Jacobian).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp

from .. import ops
from .base import Doc, LayerKind, Param


def _pre(x: sp.Matrix, params) -> sp.Matrix:
    W = params["W"]
    z = x * W.T
    if "b" in params:
        b = params["b"]
        z = sp.Matrix(z.rows, z.cols, lambda r, j: z[r, j] + b[j])
    return z


def _act(z: sp.Matrix, act: ops.Activation) -> sp.Matrix:
    if act.vector:
        rows = []
        for r in range(z.rows):
            e = [sp.exp(z[r, j]) for j in range(z.cols)]
            s = sp.Add(*e)
            rows.append([ej / s for ej in e])
        return sp.Matrix(rows)
    return z.applyfunc(act.at)


def forward(inputs, params, opts, aux=None) -> sp.Matrix:
    """``a[b, j] = f(sum_k W[j, k] x[b, k] + b[j])`` on a batch of symbols."""
    return _act(_pre(inputs[0], params), opts["activation"])


def delta_from(g: sp.Matrix, z: sp.Matrix, a: sp.Matrix, act: ops.Activation) -> sp.Matrix:
    """``delta = dE/dz`` from ``g = dE/da``: ``g f'(z)``, or ``a (g - sum_k g_k a_k)`` for softmax."""
    if act.vector:
        return sp.Matrix(g.rows, g.cols, lambda r, j: a[r, j] * (
            g[r, j] - sp.Add(*(g[r, k] * a[r, k] for k in range(g.cols)))))
    return sp.Matrix(g.rows, g.cols, lambda r, j: g[r, j] * act.derivative_at(z[r, j], a[r, j]))


def backward(g, inputs, params, opts, aux=None):
    """``dE/dx = delta W``, ``dE/dW = delta^T x``, ``dE/db = sum_b delta[b]``."""
    (x,) = inputs
    z = _pre(x, params)
    delta = delta_from(g, z, _act(z, opts["activation"]), opts["activation"])
    grads = {"W": delta.T * x}
    if "b" in params:
        grads["b"] = sp.Matrix([[sp.Add(*delta[:, j]) for j in range(delta.cols)]])
    return (delta * params["W"],), grads


# ----------------------------------------------------------------------------- NumPy


def dense_forward(x, W, b):
    """Pre-activations z = x W^T + b, one row per sample."""
    z = x @ W.T
    return z if b is None else z + b


def dense_backward(delta, x, W):
    """dE/dx = delta W, dE/dW = delta^T x, dE/db = the batch sum of delta."""
    return delta @ W, delta.T @ x, np.sum(delta, axis=0)


def dense_forward_xp(x, W, b, xp):
    """Pre-activations z = x W^T + b, one row per sample, any Array API namespace."""
    z = x @ W.T
    return z if b is None else z + b


def dense_backward_xp(delta, x, W, xp):
    """dE/dx = delta W, dE/dW = delta^T x, dE/db = the batch sum of delta, any Array API namespace."""
    return delta @ W, delta.T @ x, xp.sum(delta, axis=0)


@cache
def numeric_activation(act: ops.Activation):
    """``(f, f')`` as NumPy callables of z (the engine's check; generated code prints its own)."""
    if act.vector:
        def f(z):
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        return f, None
    u = sp.Symbol("u", real=True)
    f = sp.lambdify(u, act.at(u), "numpy")
    fp = sp.lambdify(u, act.derivative_at(u), "numpy")
    return (lambda z: np.broadcast_to(f(z), z.shape).astype(float),
            lambda z: np.broadcast_to(fp(z), z.shape).astype(float))


def numeric_delta(g, z, a, act):
    """NumPy twin of :func:`delta_from`."""
    if act.vector:
        return a * (g - np.sum(g * a, axis=-1, keepdims=True))
    return g * numeric_activation(act)[1](z)


def _np_forward(inputs, params, opts, aux=None):
    x = inputs[0]
    z = dense_forward(x, params["W"], params.get("b"))
    a = numeric_activation(opts["activation"])[0](z)
    return a, (x, z, a)


def _np_backward(g, cache, params, opts):
    x, z, a = cache
    delta = numeric_delta(g, z, a, opts["activation"])
    dx, dW, db = dense_backward(delta, x, params["W"])
    grads = {"W": dW}
    if "b" in params:
        grads["b"] = db
    return (dx,), grads


def _params(opts) -> tuple[Param, ...]:
    W = Param("W", "W", lambda fan_in, n: (n, fan_in), init="glorot", decay=True, title="weights")
    b = Param("b", "b", lambda fan_in, n: (n,), init="zeros", title="biases")
    return (W, b) if opts.get("bias", True) else (W,)


KIND = LayerKind(
    name="dense",
    title="dense layer",
    options=(),  # units, activation and bias are read by the spec loader
    params=_params,
    width=lambda fan_ins, opts: opts["units"],
    forward=forward,
    backward=backward,
    numpy_forward=_np_forward,
    numpy_backward=_np_backward,
    code=(dense_forward, dense_backward),
    code_xp=(dense_forward_xp, dense_backward_xp),
    claim_symbols=(("weight", "W"), ("bias", "b"), ("delta", r"\delta")),
    doc=Doc(
        title="Dense layer",
        summary="Each unit takes a weighted sum of the previous layer's outputs plus a bias, then applies {f}.",
        forward=(r"{z}_{{ij}} = \sum_{{k}} W^{{({l})}}_{{jk}} {x}_{{ik}} + b^{{({l})}}_j",
                 r"{y}_{{ij}} = {f}\left({z}_{{ij}}\right)"),
        local=(r"\frac{{\partial {z}_{{ij}}}}{{\partial W^{{({l})}}_{{jk}}}} = {x}_{{ik}}",
               r"\frac{{\partial {z}_{{ij}}}}{{\partial b^{{({l})}}_j}} = 1",
               r"\frac{{\partial {z}_{{ij}}}}{{\partial {x}_{{ik}}}} = W^{{({l})}}_{{jk}}"),
        backward=(r"{delta}_{{ij}} = {g}_{{ij}} \, {fprime}",
                  r"\frac{{\partial {E}}}{{\partial {x}_{{ik}}}} = \sum_{{j}} {delta}_{{ij}} W^{{({l})}}_{{jk}}"),
        params=(r"\frac{{\partial {E}}}{{\partial W^{{({l})}}_{{jk}}}} = \sum_{{b=1}}^{{{B}}} {delta}_{{bj}} {x}_{{bk}}",
                r"\frac{{\partial {E}}}{{\partial b^{{({l})}}_j}} = \sum_{{b=1}}^{{{B}}} {delta}_{{bj}}"),
    ),
)
