"""A worked example with numbers: one forward pass, every delta and one optimizer step.

The spec's ``example:`` block gives one sample ``(x, t)`` and the starting weights (or a
seed, drawn exactly as the generated ``model.py``'s ``init_params(seed)`` draws them).
The numbers come from the derivation itself: the forward pass and loss from the network's
registry expressions (:class:`~symbackprop.engine.numeric.NumericNetwork`), the deltas and
gradients from the derivation's index-form templates
(:class:`~symbackprop.engine.numeric.DerivedGradients`), then one step of the spec's
optimizer from a zero state (momentum's velocity and Adam's moments start at zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import Network
from .derive import Derivation
from .numeric import DerivedGradients

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class WorkedExample:
    """The numbers of one training step on the spec's example (lists indexed by layer l = 0..L)."""

    x: np.ndarray
    t: np.ndarray
    params: Params           # before the step: "W1" (n1 x n0, row j = unit j), "b1" (n1,), ...
    z: list[np.ndarray]      # z[l] for l = 1..L; z[0] is empty
    a: list[np.ndarray]      # a[0] = x, a[l] = activation of layer l
    loss: float              # the per-sample loss E at (x, t)
    delta: list[np.ndarray]  # delta[l] = dE/dz[l] for l = 1..L; delta[0] is empty
    grads: Params            # dE/dp, same keys and shapes as params
    updated: Params          # params after one step of the spec's optimizer
    learning_rate: float


def init_gain(activation_name: str) -> float:
    """The variance gain of ``model.py``'s ``init_params``: 2 for ReLU-like layers (He), else 1."""
    return 2.0 if activation_name in ("relu", "leaky_relu") else 1.0


def initial_params(network: Network, seed: int) -> Params:
    """The parameters the generated ``model.py``'s ``init_params(seed)`` returns (float64)."""
    rng = np.random.default_rng(seed)
    sizes, params = network.sizes, {}
    for l, layer in enumerate(network.layers, start=1):
        params[f"W{l}"] = (rng.standard_normal((sizes[l], sizes[l - 1]))
                           * np.sqrt(init_gain(layer.activation.name) / sizes[l - 1])).astype(np.float64)
        if layer.bias:
            params[f"b{l}"] = np.zeros(sizes[l], dtype=np.float64)
    return params


def example_params(network: Network) -> Params:
    """The starting parameters of the spec's example (its weights, or drawn from its seed)."""
    example = network.example
    if example.weights is None:
        return initial_params(network, example.seed)
    return {name: np.array(values, dtype=np.float64) for name, values in example.weights}


def optimizer_step(network: Network, params: Params, grads: Params) -> Params:
    """One step of the spec's optimizer from a zero state (the textbook update rules)."""
    opt = network.optimizer
    lr = opt.learning_rate
    if opt.name in ("sgd", "momentum"):
        # momentum: v = mu * 0 - lr g, p + v: the same as SGD on the first step
        return {k: params[k] - lr * grads[k] for k in params}
    if opt.name == "adam":
        out = {}
        for k in params:
            m = (1 - opt.beta1) * grads[k]
            v = (1 - opt.beta2) * grads[k] ** 2
            m_hat, v_hat = m / (1 - opt.beta1), v / (1 - opt.beta2)
            out[k] = params[k] - lr * m_hat / (np.sqrt(v_hat) + opt.epsilon)
        return out
    raise ValueError(f"unknown optimizer {opt.name!r}")


def worked_example(d: Derivation) -> WorkedExample | None:
    """The worked example of ``d``'s spec, or None when the spec has no ``example:`` block."""
    network = d.network
    example = getattr(network, "example", None)
    if example is None:
        return None
    x, t = np.array(example.x, dtype=np.float64), np.array(example.t, dtype=np.float64)
    params = example_params(network)
    derived = DerivedGradients(d)
    zs, acts = derived.numeric.forward(params, x)
    loss = derived.numeric.loss(params, x, t)
    deltas, _ = derived.deltas(params, x, t)
    grads = derived.gradients(params, x, t)
    return WorkedExample(
        x=x, t=t, params=params,
        z=[np.asarray(z, dtype=np.float64) for z in zs],
        a=[np.asarray(a, dtype=np.float64) for a in acts],
        loss=float(loss),
        delta=[np.empty(0)] + [deltas[l] for l in range(1, d.L + 1)],
        grads=grads,
        updated=optimizer_step(network, params, grads),
        learning_rate=network.optimizer.learning_rate,
    )
