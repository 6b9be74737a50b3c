"""Specs with layer kinds beyond dense: the network as a graph of layers.

A spec becomes a :class:`GraphNetwork` when one of its layers has a ``type``
other than ``dense``, or when it asks for ``regularization``; a plain dense
stack stays a :class:`~symbackprop.spec.Network`, derived exactly as before.
Layers are numbered from 1 in spec order (0 is the inputs).  Each layer reads
the previous one; a ``residual`` also reads layer ``from``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import SpecError
from ..registry import ops
from ..registry.layers import KIND_NAMES, KINDS, LayerKind, Param
from ..registry.layers.checks import numeric_text_hint
from .graph_example import GraphExample

MAX_BATCH = 100_000


@dataclass(frozen=True)
class Node:
    """One layer of the graph: its number, kind, validated options and the layers it reads."""

    index: int
    kind: LayerKind
    options: tuple[tuple[str, Any], ...]
    inputs: tuple[int, ...]
    units: int

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def params(self) -> tuple[Param, ...]:
        return self.kind.params(self.opts)

    def param_name(self, p: Param) -> str:
        """``W1``, ``b1``, ``gamma2``, ...: the stem and the layer number."""
        return f"{p.stem}{self.index}"

    def describe(self) -> str:
        o = self.opts
        if self.kind.name == "dense":
            return f"dense {self.units} {o['activation'].describe()}" + ("" if o.get("bias", True) else " no bias")
        extra = {"batchnorm": f"eps={o.get('epsilon')}", "layernorm": f"eps={o.get('epsilon')}",
                 "dropout": f"rate={o.get('rate')}", "residual": f"from {o.get('from')}"}[self.kind.name]
        return f"{self.kind.name} {self.units} ({extra})"


@dataclass(frozen=True)
class GraphNetwork:
    """A validated network whose layers form a directed acyclic graph."""

    name: str
    inputs: int
    nodes: tuple[Node, ...]
    loss: ops.Loss
    optimizer: Any
    notation: tuple[tuple[str, str], ...] = ()
    l2: float = 0.0
    batch_size: int = 32
    description: str = field(default="", compare=False)
    example: GraphExample | None = None  # the spec's example: block

    @property
    def depth(self) -> int:
        return len(self.nodes)

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    def width(self, index: int) -> int:
        return self.inputs if index == 0 else self.nodes[index - 1].units

    @property
    def sizes(self) -> list[int]:
        return [self.inputs, *(n.units for n in self.nodes)]

    @property
    def architecture(self) -> str:
        """``4-5-bn-drop-5-ln-res1-3`` style summary."""
        short = {"batchnorm": "bn", "layernorm": "ln", "dropout": "drop"}
        parts = [str(self.inputs)]
        for n in self.nodes:
            if n.kind.name == "dense":
                parts.append(str(n.units))
            elif n.kind.name == "residual":
                parts.append(f"res{n.opts['from']}")
            else:
                parts.append(short[n.kind.name])
        return "-".join(parts)

    def parameter_shapes(self) -> list[tuple[str, Node, Param, tuple[int, ...]]]:
        """``(name, node, param, shape)`` in layer order: W1, b1, gamma2, beta2, ..."""
        out = []
        for n in self.nodes:
            fan_in = self.width(n.inputs[0])
            for p in n.params:
                out.append((n.param_name(p), n, p, p.shape(fan_in, n.units)))
        return out

    @property
    def parameter_count(self) -> int:
        total = 0
        for *_, shape in self.parameter_shapes():
            size = 1
            for s in shape:
                size *= s
            total += size
        return total

    def consumers(self, index: int) -> list[Node]:
        """The layers that read layer ``index``'s output."""
        return [n for n in self.nodes if index in n.inputs]

    @property
    def batch_coupled(self) -> bool:
        return any(n.kind.batch_coupled for n in self.nodes)


def wants_graph(data: Mapping) -> bool:
    """Whether a spec mapping needs the layer graph (any non-dense layer, or regularization)."""
    layers = data.get("layers")
    typed = isinstance(layers, list) and any(
        isinstance(item, Mapping) and item.get("type", "dense") != "dense" for item in layers)
    return typed or "regularization" in data or "batch_size" in data


def nodes_from(layers_data: list, inputs: int, dense_layer) -> tuple[Node, ...]:
    """Validate each layer item into a :class:`Node` (``dense_layer`` reads a dense item)."""
    nodes: list[Node] = []
    for i, item in enumerate(layers_data):
        index, where = i + 1, f"layers[{i}]"
        if not isinstance(item, Mapping):
            raise SpecError(where, "must be a mapping", "write {units: N, activation: NAME} or {type: batchnorm}")
        kind_name = item.get("type", "dense")
        if not isinstance(kind_name, str):
            raise SpecError(f"{where}.type", f"must be the name of a layer kind, got {kind_name!r}",
                            f"use one of {', '.join(KIND_NAMES)}")
        if kind_name not in KINDS:
            from .schema import _close_name

            raise SpecError(f"{where}.type", f"unknown layer type {kind_name!r}",
                            f"{_close_name(str(kind_name), KIND_NAMES)}use one of {', '.join(KIND_NAMES)}")
        kind = KINDS[kind_name]
        prev = index - 1
        if kind_name == "dense":
            layer = dense_layer({k: v for k, v in item.items() if k != "type"}, where)
            opts = (("units", layer.units), ("activation", layer.activation), ("bias", layer.bias))
            nodes.append(Node(index, kind, opts, (prev,), layer.units))
            continue
        for key in item:
            if key not in kind.keys:
                raise SpecError(f"{where}.{key}", f"is not a key of a {kind_name} layer",
                                f"use {', '.join(kind.keys)}")
        opts = []
        for opt in kind.options:
            if opt.key in item:
                opts.append((opt.key, opt.check(item[opt.key], f"{where}.{opt.key}")))
            elif opt.required:
                raise SpecError(f"{where}.{opt.key}", "is missing", f"add '{opt.key}:' ({opt.doc})")
            else:
                opts.append((opt.key, opt.default))
        ins: tuple[int, ...] = (prev,)
        if kind_name == "residual":
            src = dict(opts)["from"]
            if index == 1:
                raise SpecError(where, "a residual cannot be the first layer: it adds an earlier layer's output "
                                "to the previous layer's, and only the inputs come before it",
                                "put it after a layer as wide as the inputs and write from: 0")
            if src >= index:
                raise SpecError(f"{where}.from", f"is {src}, but layer {index} can only add an earlier layer "
                                "(the graph must not have a cycle)", f"use a layer number below {index}")
            if src == prev:
                raise SpecError(f"{where}.from", f"is {src}, the layer this residual already reads",
                                f"name an earlier layer, below {prev}")
            width_prev = inputs if prev == 0 else nodes[prev - 1].units
            width_src = inputs if src == 0 else nodes[src - 1].units
            if width_prev != width_src:
                raise SpecError(f"{where}.from", f"adds layer {src} ({width_src} units) to layer {prev} "
                                f"({width_prev} units): a residual needs equal widths",
                                "make the two layers the same width or add from a layer of that width")
            ins = (prev, src)
        width = inputs if prev == 0 else nodes[prev - 1].units
        nodes.append(Node(index, kind, tuple(opts), ins, width))
    return tuple(nodes)


def regularization_from(value: Any) -> float:
    if not isinstance(value, Mapping):
        raise SpecError("regularization", "must be a mapping with the key l2",
                        "write regularization: {l2: 1.0e-4}")
    for key in value:
        if key != "l2":
            raise SpecError(f"regularization.{key}", "is not a known key (only L2 weight decay is supported)",
                            "write regularization: {l2: 1.0e-4}")
    lam = value.get("l2", 0.0)
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 <= lam < 1e3:
        raise SpecError("regularization.l2", f"must be a number from 0 to below 1000, got {lam!r}",
                        f"write l2: 1.0e-4{numeric_text_hint(lam)}")
    return float(lam)


def batch_size_from(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH:
        raise SpecError("batch_size", f"must be a whole number from 1 to {MAX_BATCH}, got {value!r}",
                        "write batch_size: 32")
    return value


def check_graph(net: GraphNetwork) -> None:
    """Cross-layer rules: a dense output layer, softmax last only, a size limit, batch norm needs a batch."""
    last = net.nodes[-1]
    if last.kind.name != "dense":
        raise SpecError(f"layers[{last.index - 1}]", f"the last layer is {last.kind.name}, but the loss "
                        "reads the output of a dense layer", "end the layers with {units: N, activation: ...}")
    for n in net.nodes[:-1]:
        if n.kind.name == "dense" and n.opts["activation"].vector:
            raise SpecError(f"layers[{n.index - 1}].activation", "softmax is allowed only in the output layer",
                            "use sigmoid, tanh or relu here and softmax in the last layer")
    out = last.opts["activation"]
    if not ops.loss_accepts(net.loss, out):
        raise SpecError("loss", f"{net.loss.name} needs outputs {ops.RANGE_WORDS[net.loss.requires]}, "
                        f"but the output layer is {out.name}",
                        "set the last layer's activation to match the loss or choose a squared-error loss")
    from .schema import MAX_PARAMETERS

    if net.parameter_count > MAX_PARAMETERS:
        raise SpecError("layers", f"the network has {net.parameter_count:,} parameters (at most {MAX_PARAMETERS:,})",
                        "use fewer or narrower layers")
    if net.batch_coupled and net.batch_size < 2:
        raise SpecError("batch_size", "is 1, but batch normalization needs at least 2 samples per batch "
                        "(the variance of one sample is 0)", "use batch_size: 2 or more, or layernorm instead")
