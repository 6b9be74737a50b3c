"""gradients.json, gradients.txt and the terminal headline for a graph of layers.

Every parameter tensor is listed by its stable name (``W1``, ``b1``, ``gamma2``,
``beta2``, ...) with its shape and its gradient in index form over the batch;
every layer with its forward definition and the gradient it sends back.
"""

from __future__ import annotations

import json

from ..engine.layergraph import LayerDerivation
from ..spec.graph import Node


def _out(i: int) -> str:
    """The name of layer i's output (``x`` for the inputs)."""
    return "x" if i == 0 else f"a{i}"


def layer_forward(node: Node) -> str:
    """The layer's forward pass in plain index form, per sample b."""
    l, src = node.index, _out(node.inputs[0])
    o = node.opts
    kind = node.kind.name
    if kind == "dense":
        act = o["activation"]
        bias = f" + b{l}[j]" if o.get("bias", True) else ""
        f = "softmax_j" if act.vector else act.name
        return f"z{l}[b,j] = sum_k W{l}[j,k] {src}[b,k]{bias};  a{l}[b,j] = {f}(z{l}[b,j])"
    if kind == "batchnorm":
        return (f"mu{l}[j] = 1/B sum_b {src}[b,j];  var{l}[j] = 1/B sum_b ({src}[b,j] - mu{l}[j])^2;  "
                f"xhat{l}[b,j] = ({src}[b,j] - mu{l}[j]) / sqrt(var{l}[j] + {o['epsilon']:g});  "
                f"a{l}[b,j] = gamma{l}[j] xhat{l}[b,j] + beta{l}[j]")
    if kind == "layernorm":
        return (f"mu{l}[b] = 1/n sum_k {src}[b,k];  var{l}[b] = 1/n sum_k ({src}[b,k] - mu{l}[b])^2;  "
                f"xhat{l}[b,j] = ({src}[b,j] - mu{l}[b]) / sqrt(var{l}[b] + {o['epsilon']:g});  "
                f"a{l}[b,j] = gamma{l}[j] xhat{l}[b,j] + beta{l}[j]")
    if kind == "dropout":
        return f"a{l}[b,j] = m{l}[b,j] {src}[b,j] / (1 - {o['rate']:g})   (m{l}: the 0/1 mask, an input of the step)"
    return f"a{l}[b,j] = {src}[b,j] + {_out(node.inputs[1])}[b,j]"


def layer_backward(node: Node) -> str:
    """What the layer sends back, from g{l} = dE/da{l} (the sum over every reader of a{l})."""
    l, src = node.index, _out(node.inputs[0])
    kind = node.kind.name
    if kind == "dense":
        act = node.opts["activation"]
        d = (f"delta{l}[b,j] = a{l}[b,j] (g{l}[b,j] - sum_k g{l}[b,k] a{l}[b,k])" if act.vector
             else f"delta{l}[b,j] = g{l}[b,j] {act.name}'(z{l}[b,j])")
        return f"{d};  dE/d{src}[b,k] += sum_j delta{l}[b,j] W{l}[j,k]"
    if kind == "batchnorm":
        return (f"dE/d{src}[i,j] += gamma{l}[j] / (B sigmahat{l}[j]) (B g{l}[i,j] - sum_b g{l}[b,j] "
                f"- xhat{l}[i,j] sum_b g{l}[b,j] xhat{l}[b,j]),  sigmahat{l}[j] = sqrt(var{l}[j] + eps)")
    if kind == "layernorm":
        return (f"h[b,j] = g{l}[b,j] gamma{l}[j];  dE/d{src}[b,j] += (n h[b,j] - sum_k h[b,k] "
                f"- xhat{l}[b,j] sum_k h[b,k] xhat{l}[b,k]) / (n sigmahat{l}[b])")
    if kind == "dropout":
        return f"dE/d{src}[b,j] += m{l}[b,j] g{l}[b,j] / (1 - {node.opts['rate']:g})"
    return f"dE/d{src}[b,j] += g{l}[b,j];  dE/d{_out(node.inputs[1])}[b,j] += g{l}[b,j]"


def parameter_gradient(d: LayerDerivation, name: str) -> str:
    """dE/dθ in index form for one tensor (weight decay included)."""
    info = next(p for p in d.parameters if p.name == name)
    l, stem, src = info.node.index, info.param.stem, _out(info.node.inputs[0])
    decay = f" + {d.network.l2:g} W{l}[j,k]" if info.param.decay and d.network.l2 else ""
    return {
        "W": f"dE/dW{l}[j,k] = sum_b delta{l}[b,j] {src}[b,k]{decay}",
        "b": f"dE/db{l}[j] = sum_b delta{l}[b,j]",
        "gamma": f"dE/dgamma{l}[j] = sum_b g{l}[b,j] xhat{l}[b,j]",
        "beta": f"dE/dbeta{l}[j] = sum_b g{l}[b,j]",
    }[stem]


def headline(d: LayerDerivation) -> str:
    net = d.network
    kinds = ", ".join(n.describe() for n in net.nodes)
    return (f"{net.name}: {net.architecture} layer graph ({kinds}), loss {net.loss.name} (batch mean"
            + (f", L2 {net.l2:g}" if net.l2 else "") + f"), {net.parameter_count:,} parameters")


def loss_text(d: LayerDerivation) -> str:
    net = d.network
    decay = f" + {net.l2:g}/2 sum of every W[j,k]^2" if net.l2 else ""
    return f"E = 1/B sum_b {net.loss.name}(a{net.depth}[b], t[b]){decay}"


def as_dict(d: LayerDerivation) -> dict:
    net = d.network
    layers = []
    for n in net.nodes:
        opts = {k: (v.describe() if hasattr(v, "describe") else v) for k, v in n.options}
        layers.append({"layer": n.index, "type": n.kind.name, "options": opts, "reads": list(n.inputs),
                       "units": n.units, "forward": layer_forward(n), "backward": layer_backward(n)})
    return {
        "network": net.name, "architecture": net.architecture, "inputs": net.inputs,
        "loss": loss_text(d), "batch_size": net.batch_size, "l2": net.l2,
        "readers": {str(i): [n.index for n in net.consumers(i)] for i in range(net.depth)},
        "layers": layers,
        "parameters": [{"name": p.name, "layer": p.node.index, "shape": list(p.shape), "init": p.param.init,
                        "weight_decay": bool(p.param.decay and net.l2), "gradient": parameter_gradient(d, p.name)}
                       for p in d.parameters],
        "verification": None if d.verification is None else d.verification.as_dict(),
    }


def gradients_json(d: LayerDerivation) -> str:
    return json.dumps(as_dict(d), indent=2, ensure_ascii=False) + "\n"


def gradients_text(d: LayerDerivation) -> str:
    net = d.network
    lines = [f"symbackprop derivation — {headline(d)}", "", loss_text(d), "",
             "g{l} = dE/da{l} is the sum of what every layer that reads a{l} sends back.", "", "Forward:"]
    lines += [f"  layer {n.index} ({n.kind.name}): {layer_forward(n)}" for n in net.nodes]
    lines += ["", "Backward (last layer first):"]
    lines += [f"  layer {n.index} ({n.kind.name}): {layer_backward(n)}" for n in reversed(net.nodes)]
    lines += ["", "Gradients:"]
    lines += [f"  {parameter_gradient(d, p.name)}   ({'x'.join(map(str, p.shape))})" for p in d.parameters]
    if d.verification is not None:
        lines += ["", d.verification.summary()]
    return "\n".join(lines) + "\n"
