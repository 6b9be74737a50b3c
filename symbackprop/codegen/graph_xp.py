"""Array API training code for a graph of layers (``--target array-api``): ``model_xp.py`` and its test.

The same equations as the NumPy graph target (:mod:`symbackprop.codegen.graph_code`), for any
namespace of the Python Array API standard.  Each layer calls its registry entry's Array API
functions (``kind.code_xp``, copied with :func:`inspect.getsource`), activations come from
:data:`symbackprop.registry.ops.ARRAY_API_ACTIVATIONS` and their derivatives are printed by
:class:`symbackprop.codegen.array_api.XpPrinter`.  The generated code takes ``xp`` from its
inputs, writes into no buffer and updates nothing in place: ``forward`` returns the new
running statistics of batch normalization, and ``train_step`` returns new parameters,
optimizer state and running statistics, so ``jax.jit`` can wrap it.  Dropout masks are
inputs of the step, drawn on the host from a ``numpy.random.Generator`` the caller passes.
"""

from __future__ import annotations

import inspect
import re

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence

from .._templates import environment
from ..registry import ops
from ..registry.stable import sigmoid, stabilize
from .array_api import XP_LOSSES_FROM_LOGITS, _activation_code, _helpers, xp_printer
from .graph_code import FD_ENTRIES, _fname, _Grads, graph_context, out_name
from .numpy_code import gradcheck_source


def _fused(net) -> ops.NumpyCode | None:
    return XP_LOSSES_FROM_LOGITS.get((net.output.opts["activation"].name, net.loss.name))


def _call(kind, which: int) -> str:
    """The name of the registry's Array API function ``which`` (0 forward, 1 backward) of ``kind``."""
    return kind.code_xp[which].__name__


def _loss_terms(net) -> tuple[str, str, str]:
    """(per-sample loss of ``A`` and ``T``, dloss/dA, its comment) as Array API code, for an unfused loss."""
    m = net.output.units
    a, t = sp.Symbol("A", real=True), sp.Symbol("T", real=True)
    term = net.loss.scale(sp.Integer(m)) * net.loss.term(a, t)
    printer = xp_printer()
    return (f"xp.sum({printer.doprint(term)}, axis=-1)", printer.doprint(sp.diff(term, a)),
            f"dE/dA = {sp.sstr(sp.diff(term, a))}")


def _delta(node, helpers: set) -> list[str]:
    """delta_i = dE/dz_i = g_i * f'(z_i), printed as one Array API expression."""
    i = node.index
    act = node.opts["activation"]
    if act.name == "identity":
        return [f"# delta{i} = dE/dz{i} = g{i} (identity)", f"delta{i} = g{i}"]
    if act.vector:
        return [f"# delta{i} = dE/dz{i} = a{i} * (g{i} - sum_k g{i}[b, k] a{i}[b, k])   (softmax Jacobian)",
                f"delta{i} = a{i} * (g{i} - xp.sum(g{i} * a{i}, axis=-1, keepdims=True))"]
    z, a, g = (sp.Symbol(f"{s}{i}", real=True) for s in ("z", "a", "g"))
    fprime = stabilize(act.derivative_at(z, a))
    helpers |= {"sigmoid"} if fprime.has(sigmoid) else set()
    printer = xp_printer()
    if isinstance(fprime, sp.Piecewise) or any(isinstance(f, sp.Piecewise) for f in sp.Mul.make_args(fprime)):
        # a 0/1 (or slope) mask: the printer folds g into xp.where, so no bool array is multiplied
        return [f"# delta{i} = dE/dz{i} = g{i} * f'(z{i}),  f' = the derivative of {act.describe()} (piecewise)",
                f"delta{i} = {printer.doprint(g * fprime)}"]
    text = printer.doprint(fprime)
    if precedence(fprime) < PRECEDENCE["Mul"] and not text.startswith("("):
        text = f"({text})"
    return [f"# delta{i} = dE/dz{i} = g{i} * f'(z{i}),  f'(z{i}) = {text}", f"delta{i} = g{i} * {text}"]


def forward_lines(net, mode: str, helpers: set) -> list[list[str]]:
    """Forward statements per layer; ``mode`` is ``train`` (batch statistics, masks) or ``infer``."""
    blocks = []
    for node in net.nodes:
        i, kind, o = node.index, node.kind, node.opts
        x = out_name(net, node.inputs[0])
        fn = _call(kind, 0)
        if kind.name == "dense":
            act = o["activation"]
            bias = f"b{i}" if o.get("bias", True) else "None"
            call, used = _activation_code(act, xp_printer(), f"z{i}")
            helpers |= used
            lines = [(f"# layer {i}, dense ({node.units} units): z{i} = {x} W{i}^T + b{i}   "
                      f"[z{i}[b, j] = sum_k W{i}[j, k] {x}[b, k] + b{i}[j]]"),
                     f"z{i} = {fn}({x}, W{i}, {bias}, xp)", f"# a{i} = {act.describe()}(z{i})", f"a{i} = {call}"]
        elif kind.name == "batchnorm" and mode == "train":
            lines = [(f"# layer {i}, batch normalization over the batch: mu = mean_b {x}[b], "
                      f"var = mean_b ({x}[b] - mu)^2,"),
                     f"#   xhat = ({x} - mu) / sqrt(var + eps), y{i} = gamma{i} xhat + beta{i}",
                     f"y{i}, xhat{i}, sigma{i}, mu{i}, var{i} = {fn}({x}, gamma{i}, beta{i}, EPS{i}, xp)",
                     ("if running is not None:  # new running statistics for predict: "
                      "r <- momentum r + (1 - momentum) batch"),
                     "    running = {**running,",
                     f"               \"mean{i}\": BN_MOMENTUM{i} * running[\"mean{i}\"] + (1 - BN_MOMENTUM{i}) * mu{i},",
                     f"               \"var{i}\": BN_MOMENTUM{i} * running[\"var{i}\"] + (1 - BN_MOMENTUM{i}) * var{i}}}"]
        elif kind.name == "batchnorm":
            lines = [(f"# layer {i}, batch normalization at inference: the running mean and variance "
                      "in place of the batch's"),
                     (f"y{i} = gamma{i} * ({x} - running[\"mean{i}\"]) / xp.sqrt(running[\"var{i}\"] + EPS{i}) "
                      f"+ beta{i}")]
        elif kind.name == "layernorm":
            lines = [f"# layer {i}, layer normalization over the units of each sample: mu_b = mean_k {x}[b, k],",
                     (f"#   var_b = mean_k ({x}[b, k] - mu_b)^2, y{i} = gamma{i} ({x} - mu_b) / sqrt(var_b + eps) "
                      f"+ beta{i}")]
            call = f"{fn}({x}, gamma{i}, beta{i}, EPS{i}, xp)"
            lines.append(f"y{i}, xhat{i}, sigma{i} = {call}" if mode == "train" else f"y{i} = {call}[0]")
        elif kind.name == "dropout" and mode == "train":
            lines = [(f"# layer {i}, inverted dropout: y{i} = {x} * m / (1 - p), p = {o['rate']} "
                      "(no masks: every unit kept, no scaling)"),
                     f"y{i} = {x} if masks is None else {fn}({x}, masks[\"mask{i}\"], RATE{i}, xp)"]
        elif kind.name == "dropout":
            lines = [f"# layer {i}, dropout at inference: the identity", f"y{i} = {x}"]
        else:  # residual
            s = out_name(net, node.inputs[1])
            lines = [f"# layer {i}, residual: y{i} = {x} + {s} (layer {o['from']}'s output)",
                     f"y{i} = {fn}({x}, {s}, xp)"]
        blocks.append(lines)
    return blocks


def backward_lines(net, helpers: set) -> list[list[str]]:
    """Backward statements per layer, last layer first; every gradient comes out times ``scale``."""
    grads = _Grads(net)
    live = grads.live
    blocks = []
    for node in reversed(net.nodes):
        i, kind = node.index, node.kind
        src = node.inputs[0]
        x = out_name(net, src)
        lines: list[str] = []
        if kind.name == "dense":
            if node is net.output:
                act = node.opts["activation"]
                if _fused(net) is not None:
                    lines += [(f"# output layer: {act.name} with {net.loss.name} gives delta{i} = dE/dz{i} = "
                               f"(a{i} - T) / B   (fused, stable; times scale)"),
                              f"delta{i} = (a{i} - T) * (scale / batch)"]
                else:
                    _, dloss, comment = _loss_terms(net)
                    dloss = re.sub(r"\bA\b", f"a{i}", dloss)
                    lines += [f"# output layer: g{i} = dE/da{i} = (per-sample {comment}) / B   (times scale)",
                              f"g{i} = ({dloss}) * (scale / batch)"]
                    lines += _delta(node, helpers)
            else:
                lines += _delta(node, helpers)
            has_b = node.opts.get("bias", True)
            if not live[src]:
                lines += [f"# dE/dW{i} = delta{i}^T {x}, dE/db{i} = sum_b delta{i}[b] (dE/d{x} is not needed)",
                          f"grads[\"W{i}\"] = delta{i}.T @ {x}"]
                if has_b:
                    lines.append(f"grads[\"b{i}\"] = xp.sum(delta{i}, axis=0)")
            else:
                lines.append(f"# dE/d{x} = delta{i} W{i}, dE/dW{i} = delta{i}^T {x}, dE/db{i} = sum_b delta{i}[b]")
                bias = f"grads[\"b{i}\"]" if has_b else "_"
                lines.append(f"dx{i}, grads[\"W{i}\"], {bias} = {_call(kind, 1)}(delta{i}, {x}, W{i}, xp)")
            if net.l2 > 0:
                lines += [f"# weight decay: dE/dW{i} = ... + lambda W{i}",
                          f"grads[\"W{i}\"] = grads[\"W{i}\"] + (L2 * scale) * W{i}"]
            if live[src]:
                lines += grads.add(src, f"dx{i}", i)
        elif kind.name in ("batchnorm", "layernorm"):
            name = "batch" if kind.name == "batchnorm" else "layer"
            lines.append(f"# layer {i}, {name} normalization: dE/dgamma{i} = sum_b g{i} xhat, "
                         f"dE/dbeta{i} = sum_b g{i}, dE/d{x} in the compact form")
            dx = f"dx{i}" if live[src] else "_"
            lines.append(f"{dx}, grads[\"gamma{i}\"], grads[\"beta{i}\"] = {_call(kind, 1)}(g{i}, gamma{i}, "
                         f"xhat{i}, sigma{i}, xp)")
            lines += grads.add(src, f"dx{i}", i)
        elif kind.name == "dropout":
            if live[src]:
                lines += [f"# layer {i}, dropout: dE/d{x} = g{i} * m / (1 - p)",
                          f"dx{i} = g{i} if masks is None else {_call(kind, 1)}(g{i}, masks[\"mask{i}\"], RATE{i}, xp)"]
                lines += grads.add(src, f"dx{i}", i)
        else:  # residual
            lines.append(f"# layer {i}, residual: dE/dy{i} reaches both inputs unchanged")
            lines += grads.add(src, f"g{i}", i)
            lines += grads.add(node.inputs[1], f"g{i}", i)
        if lines:
            blocks.append(lines)
    return blocks


def registry_sources(net) -> list[str]:
    """The registry's Array API functions of every kind in the network, in first-use order."""
    seen, out = set(), []
    for node in net.nodes:
        if node.kind.name not in seen:
            seen.add(node.kind.name)
            out += [inspect.getsource(fn).rstrip() for fn in node.kind.code_xp]
    return out


def _unpack(names: list[str], source: str, body: str) -> list[str]:
    body = re.sub(r'"[^"]*"', "", body)
    return [f"{n} = {source}[\"{n}\"]" for n in names if re.search(rf"\b{n}\b", body)]


def graph_xp_context(d) -> dict:
    """The graph template context of the NumPy target with the Array API statements in place of its own."""
    net = d.network
    ctx = graph_context(d, "numpy")
    helpers: set[str] = set()
    forward = forward_lines(net, "train", helpers)
    infer = forward_lines(net, "infer", helpers)
    backward = backward_lines(net, helpers)
    L = net.depth
    fused = _fused(net)
    if fused is not None:
        loss_call = f"{_fname(fused.source)}(cache[\"z{L}\"], T, xp)"
        infer_loss = f"{_fname(fused.source)}(z, T, xp)"
        loss_comment = f"{net.loss.title} from the logits z{L} (stable)"
    else:
        per_sample, _, _ = _loss_terms(net)
        loss_call = re.sub(r"\bA\b", f"cache[\"a{L}\"]", per_sample)
        infer_loss = re.sub(r"\bA\b", "y", per_sample)
        loss_comment = net.loss.title
    body = "\n".join(line for block in backward for line in block if not line.lstrip().startswith("#"))
    ctx.update(
        target="array-api",
        target_note=("Array API form: each layer calls its registry entry's Array API function (copied below); "
                     "the standard's functions only."),
        forward=forward, infer=infer, backward=backward,
        backward_unpack=(_unpack(["X", *ctx["cache_names"]], "cache", body)
                         + _unpack([p.name for p in d.parameters], "params", body)),
        helpers=_helpers(helpers), sources=registry_sources(net),
        loss_helper=fused.source if fused is not None else None,
        loss_call=loss_call, infer_loss=infer_loss, loss_comment=loss_comment,
        gradcheck_source=gradcheck_source(), fd_entries=FD_ENTRIES,
    )
    return ctx


def _render(template: str, ctx: dict) -> str:
    return environment().get_template(template).render(ctx)


def graph_xp_model(d) -> str:
    """model_xp.py of a layer graph: Array API training code."""
    return _render("graph_model_xp.py.j2", graph_xp_context(d))


def graph_xp_test(d) -> str:
    """test_model_xp.py of a layer graph: finite differences with fixed masks, inference, purity, training."""
    return _render("graph_test_model_xp.py.j2", graph_xp_context(d))


def graph_xp_outputs(d) -> dict[str, bytes]:
    """``model_xp.py`` and ``test_model_xp.py`` for ``derive -o --target array-api``."""
    return {"model_xp.py": graph_xp_model(d).encode(), "test_model_xp.py": graph_xp_test(d).encode()}
