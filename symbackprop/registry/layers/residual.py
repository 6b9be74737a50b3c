"""A residual connection: ``y = x + s``, the previous layer's output plus an earlier one's.

It is an edge of the layer graph: the gradient ``g`` reaches both inputs, and
the chain rule sums it with whatever else reaches the earlier layer.
"""

from __future__ import annotations

import sympy as sp

from .base import Doc, LayerKind
from .checks import from_option


def forward(inputs, params, opts, aux=None) -> sp.Matrix:
    x, s = inputs
    return x + s


def backward(g, inputs, params, opts, aux=None):
    return (g, g), {}


def residual_forward(x, skip):
    """y = x + skip."""
    return x + skip


def residual_forward_xp(x, skip, xp):
    """y = x + skip, any Array API namespace (the backward pass hands g to both inputs)."""
    return x + skip


KIND = LayerKind(
    name="residual",
    title="residual connection",
    options=(from_option(),),
    params=lambda opts: (),
    width=lambda fan_ins, opts: fan_ins[0],
    forward=forward,
    backward=backward,
    numpy_forward=lambda inputs, params, opts, aux: (residual_forward(*inputs), None),
    numpy_backward=lambda g, cache, params, opts: ((g, g), {}),
    code=(residual_forward,),
    code_xp=(residual_forward_xp,),
    inputs=2,
    claim_symbols=(),
    doc=Doc(
        title="Residual connection",
        summary=("The output of layer {s} is added to the previous layer's output. The gradient reaches both, "
                 "and where a layer's output feeds two later layers the chain rule adds the two contributions."),
        forward=(r"{y}_{{ij}} = {x}_{{ij}} + {skip}_{{ij}}",),
        local=(r"\frac{{\partial {y}_{{ij}}}}{{\partial {x}_{{ij}}}} = 1, \quad \frac{{\partial {y}_{{ij}}}}{{\partial {skip}_{{ij}}}} = 1",),
        backward=(r"\frac{{\partial {E}}}{{\partial {x}_{{ij}}}} \mathrel{{+}}= {g}_{{ij}}, \quad \frac{{\partial {E}}}{{\partial {skip}_{{ij}}}} \mathrel{{+}}= {g}_{{ij}}",),
    ),
)
