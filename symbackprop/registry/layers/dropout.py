"""Inverted dropout: ``y = x * m / (1 - p)`` with a 0/1 mask ``m`` that is an input of the step.

The mask is drawn by the caller (the generated ``train`` draws it with the
generator it is given), so the step itself is deterministic and testable.
At inference the layer is the identity.
"""

from __future__ import annotations

import sympy as sp

from .base import Doc, LayerKind
from .checks import rate_option


def forward(inputs, params, opts, aux=None) -> sp.Matrix:
    (x,) = inputs
    m = aux["mask"]
    keep = 1 - opts["rate"]
    return sp.Matrix(x.rows, x.cols, lambda b, j: x[b, j] * m[b, j] / keep)


def backward(g, inputs, params, opts, aux=None):
    m = aux["mask"]
    keep = 1 - opts["rate"]
    return (sp.Matrix(g.rows, g.cols, lambda b, j: g[b, j] * m[b, j] / keep),), {}


def dropout_forward(x, mask, rate):
    """Inverted dropout: kept units are scaled by 1 / (1 - rate), so inference needs no change."""
    return x * mask / (1 - rate)


def dropout_backward(g, mask, rate):
    """dE/dx = g * mask / (1 - rate)."""
    return g * mask / (1 - rate)


def dropout_forward_xp(x, mask, rate, xp):
    """Inverted dropout, any Array API namespace (operators only): x * mask / (1 - rate)."""
    return x * mask / (1 - rate)


def dropout_backward_xp(g, mask, rate, xp):
    """dE/dx = g * mask / (1 - rate), any Array API namespace."""
    return g * mask / (1 - rate)


KIND = LayerKind(
    name="dropout",
    title="inverted dropout",
    options=(rate_option(),),
    params=lambda opts: (),
    width=lambda fan_ins, opts: fan_ins[0],
    forward=forward,
    backward=backward,
    numpy_forward=lambda inputs, params, opts, aux: (dropout_forward(inputs[0], aux["mask"], opts["rate"]), aux["mask"]),
    numpy_backward=lambda g, mask, params, opts: ((dropout_backward(g, mask, opts["rate"]),), {}),
    code=(dropout_forward, dropout_backward),
    code_xp=(dropout_forward_xp, dropout_backward_xp),
    aux=("mask",),
    claim_symbols=(("mask", "m"), ("mask", "r"), ("rate", "p")),
    doc=Doc(
        title="Inverted dropout",
        summary=("During training each unit is kept with probability 1 - p: the mask m holds 1 for a kept unit "
                 "and 0 for a dropped one, and kept units are scaled by 1/(1 - p) so that inference needs no change. "
                 "The mask is an input of the training step."),
        forward=(r"{y}_{{ij}} = \frac{{m_{{ij}}}}{{1 - p}} \, {x}_{{ij}}",),
        local=(r"\frac{{\partial {y}_{{ij}}}}{{\partial {x}_{{ij}}}} = \frac{{m_{{ij}}}}{{1 - p}}",),
        backward=(r"\frac{{\partial {E}}}{{\partial {x}_{{ij}}}} = \frac{{m_{{ij}}}}{{1 - p}} \, {g}_{{ij}}",),
    ),
)
