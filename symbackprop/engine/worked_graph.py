"""A worked example with numbers for a layer graph: one training step on the spec's batch.

The spec's ``example:`` block (:class:`~symbackprop.spec.graph_example.GraphExample`) gives a
batch ``(X, T)``, the starting parameters (or a seed, drawn as the generated ``model.py``'s
``init_params(seed)`` draws them) and each dropout layer's mask (or drawn from the seed as
``model.py``'s ``draw_masks(np.random.default_rng(seed), B)`` draws them).  Every number comes
from the derivation itself: the forward pass, the upstream gradients ``G = dE/dY`` and the
parameter gradients from :meth:`LayerDerivation.backward_pass` (each layer's registry
forward and compact backward), a dense layer's ``delta = dE/dZ`` from the registry's
``numeric_delta``; then one step of the spec's optimizer from a zero state, and the running
statistics of batch normalization updated once from their initial values (mean 0, variance
1), as ``model.py``'s ``forward(..., running=init_running())`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry.layers.batchnorm import batchnorm_forward
from ..registry.layers.dense import numeric_delta
from ..spec.graph import Node
from .layergraph import LayerDerivation, loss_functions
from .worked import optimizer_step

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class LayerNumbers:
    """One layer's numbers: its forward quantities in order, its ``G = dE/dY`` and its gradients.

    ``forward`` holds ``(name, array)`` pairs: ``z``, ``a`` (dense); ``mu``, ``var``, ``xhat``,
    ``y`` (batch normalization: per unit over the batch); ``sigma``, ``xhat``, ``y`` (layer
    normalization: ``sigma`` per sample); ``y`` (dropout, residual).  ``delta`` is a dense
    layer's ``dE/dZ`` (None for other kinds); ``grads`` holds each parameter's ``(name, dE/dθ)``
    with its weight-decay term.  ``parts`` holds, for a layer that more than one layer reads,
    ``(reader, the part of G it sends back)``: their sum is ``G``.
    """

    node: Node
    forward: tuple[tuple[str, np.ndarray], ...]
    G: np.ndarray
    delta: np.ndarray | None
    grads: tuple[tuple[str, np.ndarray], ...]
    parts: tuple[tuple[int, np.ndarray], ...] = ()

    @property
    def output(self) -> np.ndarray:
        return self.forward[-1][1]


@dataclass(frozen=True)
class GraphWorkedExample:
    """The numbers of one training step of a layer graph on its spec's example batch."""

    X: np.ndarray                 # B x n0, one sample a row
    T: np.ndarray                 # B x nL
    params: Params                # before the step, canonical names (W1, b1, gamma2, ...)
    params_drawn: bool            # drawn from the seed (else given in the spec)
    seed: int | None
    masks: dict[int, np.ndarray]  # dropout layer -> B x n mask of 0/1
    masks_drawn: bool             # drawn from the seed (else given in the spec)
    layers: list[LayerNumbers]    # layer order, 1..L
    per_sample: np.ndarray        # the per-sample loss of each row
    data_loss: float              # their mean
    decay: float                  # lambda/2 sum W^2 (0 without regularization)
    loss: float                   # E = data_loss + decay
    grads: Params                 # dE/dθ, keys and shapes of params
    updated: Params               # params after one step of the spec's optimizer
    running: Params               # running statistics after the step ("mean2", "var2"); empty without batchnorm
    learning_rate: float

    @property
    def batch(self) -> int:
        return self.X.shape[0]


def draw_masks(d: LayerDerivation, seed: int, batch: int) -> dict[int, np.ndarray]:
    """The masks ``model.py``'s ``draw_masks(np.random.default_rng(seed), batch)`` returns, by layer number."""
    rng = np.random.default_rng(seed)
    return {n.index: (rng.random((batch, n.units)) >= n.opts["rate"]).astype(np.float64)
            for n in d.network.nodes if n.kind.name == "dropout"}


def example_inputs(d: LayerDerivation):
    """``(X, T, params, masks)`` of the spec's example, as float64 arrays."""
    ex = d.network.example
    X, T = np.array(ex.x, dtype=np.float64), np.array(ex.t, dtype=np.float64)
    if ex.weights is None:
        params = d.init_params(ex.seed)
    else:
        params = {name: np.array(values, dtype=np.float64) for name, values in ex.weights}
    masks = ({i: np.array(rows, dtype=np.float64) for i, rows in ex.masks} if ex.masks or ex.seed is None
             else draw_masks(d, ex.seed, X.shape[0]))
    return X, T, params, masks


def _forward_numbers(node: Node, x: np.ndarray, y: np.ndarray, cache) -> tuple[tuple[str, np.ndarray], ...]:
    name = node.kind.name
    if name == "dense":
        return (("z", cache[1]), ("a", y))
    if name == "batchnorm":
        _, _, _, mu, var = batchnorm_forward(x, np.ones(node.units), np.zeros(node.units), node.opts["epsilon"])
        return (("mu", mu), ("var", var), ("xhat", cache[0]), ("y", y))
    if name == "layernorm":
        xhat, sigma = cache
        return (("sigma", np.reshape(sigma, -1)), ("xhat", xhat), ("y", y))
    return (("y", y),)


def graph_worked_example(d: LayerDerivation) -> GraphWorkedExample | None:
    """The worked example of ``d``'s spec, or None when the spec has no ``example:`` block."""
    net = d.network
    ex = net.example
    if ex is None:
        return None
    X, T, params, masks = example_inputs(d)
    aux = {i: {"mask": m} for i, m in masks.items()}
    bp = d.backward_pass(params, X, T, aux)
    layers = []
    for node in net.nodes:
        l, y = node.index, bp.outs[node.index]
        forward = _forward_numbers(node, bp.outs[node.inputs[0]], y, bp.caches[l])
        delta = None
        if node.kind.name == "dense":
            _, z, a = bp.caches[l]
            delta = numeric_delta(bp.G[l], z, a, node.opts["activation"])
        grads = tuple((node.param_name(p), bp.grads[node.param_name(p)]) for p in node.params)
        readers = [r.index for r in net.consumers(l)]
        parts = tuple((r, bp.sent[(l, r)]) for r in readers) if len(readers) > 1 else ()
        layers.append(LayerNumbers(node, forward, bp.G[l], delta, grads, parts))
    per_sample = np.asarray(loss_functions(net)[0](bp.outs[-1], T), dtype=np.float64)
    data_loss, decay = float(np.mean(per_sample)), d.decay_value(params)
    running: Params = {}
    for numbers in layers:
        if numbers.node.kind.name == "batchnorm":
            l, mom, stats = numbers.node.index, numbers.node.opts["momentum"], dict(numbers.forward)
            running[f"mean{l}"] = mom * np.zeros(numbers.node.units) + (1 - mom) * stats["mu"]
            running[f"var{l}"] = mom * np.ones(numbers.node.units) + (1 - mom) * stats["var"]
    return GraphWorkedExample(
        X=X, T=T, params=params, params_drawn=ex.weights is None, seed=ex.seed, masks=masks,
        masks_drawn=bool(masks) and not ex.masks, layers=layers, per_sample=per_sample, data_loss=data_loss,
        decay=decay, loss=data_loss + decay, grads=bp.grads, updated=optimizer_step(net, params, bp.grads),
        running=running, learning_rate=net.optimizer.learning_rate)
