"""NumPy training code for a graph of layers (:class:`~symbackprop.engine.layergraph.LayerDerivation`).

``model.py`` (``--target numpy``) calls the registry's NumPy functions of each
layer kind, copied here with :func:`inspect.getsource` (``kind.code``), so the
generated code and the registry cannot diverge.  Backpropagation visits the
layers in reverse order; a layer read by two later layers (a residual source)
gets the sum of what both send back.  Activations come from
:data:`symbackprop.registry.ops.NUMPY_ACTIVATIONS`, their derivatives are printed from the
registry's SymPy form (:meth:`Activation.derivative_at`) by
:class:`symbackprop.codegen.numpy_code.CodePrinter`, and softmax or sigmoid outputs with
their cross-entropy use the fused delta ``(A - T) / B`` and the losses from the
logits.  ``train_step`` of the NumPy target runs ``step_gradients``: the same equations
written into preallocated workspace buffers (allocating batch-sized arrays each step
costs more than their arithmetic), in as few NumPy passes as the algebra allows, which
``test_model.py`` checks equal to ``gradients``.  ``init_params`` returns views of one flat
vector (``W1`` stored transposed when large, :func:`transposed_weights`), so that the SGD
step of ``train_step`` is one subtraction.  ``--target scalar`` writes the same network as explicit per-unit loops.
``test_model.py`` checks either by finite differences with a fixed dropout mask.
"""

from __future__ import annotations

import inspect
import json
import re

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence

from .._templates import environment
from ..errors import SpecError
from ..registry import ops
from ..registry.stable import sigmoid, stabilize
from .numpy_code import (
    TRANSPOSED_MIN_WEIGHTS,
    CodePrinter,
    _activation_code,
    _fortran_out,
    _helpers,
    gradcheck_source,
    optimizer_context,
)

TARGETS = ("numpy", "scalar")
FD_ENTRIES = 40
"""Most entries per parameter tensor that the generated test checks by finite differences."""


# ----------------------------------------------------------------------------- names


def out_name(net, index: int) -> str:
    """The array that holds layer ``index``'s output in generated code (``X`` for 0)."""
    if index == 0:
        return "X"
    return f"a{index}" if net.nodes[index - 1].kind.name == "dense" else f"y{index}"


def _fused(net) -> ops.NumpyCode | None:
    return ops.NUMPY_LOSSES_FROM_LOGITS.get((net.output.opts["activation"].name, net.loss.name))


def _fname(source: str) -> str:
    return source.split("(")[0].removeprefix("def ")


def _printer() -> CodePrinter:
    return CodePrinter()


def _derivative(act: ops.Activation, z: str, a: str) -> tuple[sp.Expr, str, set[str]]:
    """f'(z) from the registry's SymPy form, printed with the names ``z`` and ``a`` (= f(z))."""
    zs, as_ = sp.Symbol(z, real=True), sp.Symbol(a, real=True)
    expr = stabilize(act.derivative_at(zs, as_))
    text = _printer().doprint(expr)
    if precedence(expr) < PRECEDENCE["Mul"] and not text.startswith("("):
        text = f"({text})"  # a factor of g * f'(z)
    return expr, text, ({"sigmoid"} if expr.has(sigmoid) else set())


def _loss_terms(net) -> tuple[str, str, str]:
    """(per-sample loss of ``A`` and ``T`` as code, dloss/dA as code, its comment) for an unfused loss."""
    m = net.output.units
    a, t = sp.Symbol("A", real=True), sp.Symbol("T", real=True)
    term = net.loss.scale(sp.Integer(m)) * net.loss.term(a, t)
    printer = _printer()
    return (f"np.sum({printer.doprint(term)}, axis=-1)", printer.doprint(sp.diff(term, a)),
            f"dE/dA = {sp.sstr(sp.diff(term, a))}")


def live_gradients(net) -> dict[int, bool]:
    """Whether dE/dy of each layer (0 = X) is needed: the layer or one it reads has parameters."""
    live = {0: False}
    for node in net.nodes:
        live[node.index] = bool(node.params) or any(live[src] for src in node.inputs)
    return live


class _Grads:
    """Where each layer's dE/dy comes from: assignments that sum the readers' contributions."""

    def __init__(self, net):
        self.net = net
        self.seen: set[int] = set()
        self.live = live_gradients(net)

    def add(self, src: int, expr: str, reader: int) -> list[str]:
        if not self.live[src]:
            return []
        if src in self.seen:
            readers = ", ".join(str(n.index) for n in self.net.consumers(src))
            return [f"# layer {src} feeds layers {readers}: dE/dy{src} is the sum of what each reader sends back",
                    f"g{src} = g{src} + {expr}"]
        self.seen.add(src)
        return [f"g{src} = {expr}"]


# ----------------------------------------------------------------------------- numpy target


def _dense_forward(net, node, mode: str, helpers: set) -> list[str]:
    i, x = node.index, out_name(net, node.inputs[0])
    act = node.opts["activation"]
    bias = f"b{i}" if node.opts.get("bias", True) else "None"
    lines = [(f"# layer {i}, dense ({node.units} units): z{i} = {x} W{i}^T + b{i}   "
             f"[z{i}[b, j] = sum_k W{i}[j, k] {x}[b, k] + b{i}[j]]"),
             f"z{i} = dense_forward({x}, W{i}, {bias})"]
    call, used = _activation_code(act, _printer(), f"z{i}", None)
    helpers |= used
    lines += [f"# a{i} = {act.describe()}(z{i})", f"a{i} = {call}"]
    return lines


def numpy_forward_lines(net, mode: str, helpers: set) -> list[list[str]]:
    """Forward statements per layer; ``mode`` is ``train`` (batch statistics, masks) or ``infer``."""
    blocks = []
    for node in net.nodes:
        i, kind = node.index, node.kind.name
        x = out_name(net, node.inputs[0])
        o = node.opts
        if kind == "dense":
            lines = _dense_forward(net, node, mode, helpers)
        elif kind == "batchnorm":
            if mode == "train":
                lines = [(f"# layer {i}, batch normalization over the batch: mu = mean_b {x}[b], "
                         f"var = mean_b ({x}[b] - mu)^2,"),
                         f"#   xhat = ({x} - mu) / sqrt(var + eps), y{i} = gamma{i} xhat + beta{i}",
                         f"y{i}, xhat{i}, sigma{i}, mu{i}, var{i} = batchnorm_forward({x}, gamma{i}, beta{i}, EPS{i})",
                         ("if running is not None:  # running statistics for predict: "
                         "r <- momentum r + (1 - momentum) batch"),
                         f"    running[\"mean{i}\"] = BN_MOMENTUM{i} * running[\"mean{i}\"] + (1 - BN_MOMENTUM{i}) * mu{i}",
                         f"    running[\"var{i}\"] = BN_MOMENTUM{i} * running[\"var{i}\"] + (1 - BN_MOMENTUM{i}) * var{i}"]
            else:
                lines = [(f"# layer {i}, batch normalization at inference: the running mean and variance "
                         "in place of the batch's"),
                         (f"y{i} = gamma{i} * ({x} - running[\"mean{i}\"]) / np.sqrt(running[\"var{i}\"] + EPS{i}) "
                         f"+ beta{i}")]
        elif kind == "layernorm":
            lines = [f"# layer {i}, layer normalization over the units of each sample: mu_b = mean_k {x}[b, k],",
                     (f"#   var_b = mean_k ({x}[b, k] - mu_b)^2, y{i} = gamma{i} ({x} - mu_b) / sqrt(var_b + eps) "
                     f"+ beta{i}")]
            lines.append(f"y{i}, xhat{i}, sigma{i} = layernorm_forward({x}, gamma{i}, beta{i}, EPS{i})"
                         if mode == "train" else f"y{i} = layernorm_forward({x}, gamma{i}, beta{i}, EPS{i})[0]")
        elif kind == "dropout":
            if mode == "train":
                lines = [(f"# layer {i}, inverted dropout: y{i} = {x} * m / (1 - p), p = {o['rate']} "
                         "(no masks: every unit kept, no scaling)"),
                         f"y{i} = {x} if masks is None else dropout_forward({x}, masks[\"mask{i}\"], RATE{i})"]
            else:
                lines = [f"# layer {i}, dropout at inference: the identity", f"y{i} = {x}"]
        elif kind == "residual":
            s = out_name(net, node.inputs[1])
            lines = [f"# layer {i}, residual: y{i} = {x} + {s} (layer {o['from']}'s output)",
                     f"y{i} = residual_forward({x}, {s})"]
        else:  # pragma: no cover - the registry's kinds are all handled above
            raise SpecError(f"layers[{i - 1}].type", f"no code generator for {kind}", "use a registry kind")
        blocks.append(lines)
    return blocks


def _dense_delta(net, node, helpers: set, scalar: bool = False) -> list[str]:
    """delta_i = dE/dz_i from g_i (numpy form)."""
    i = node.index
    act = node.opts["activation"]
    if act.name == "identity":
        return [f"# delta{i} = dE/dz{i} = g{i} (identity)", f"delta{i} = g{i}"]
    if act.vector:
        return [f"# delta{i} = dE/dz{i} = a{i} * (g{i} - sum_k g{i}[b, k] a{i}[b, k])   (softmax Jacobian)",
                f"delta{i} = a{i} * (g{i} - np.sum(g{i} * a{i}, axis=-1, keepdims=True))"]
    _, text, used = _derivative(act, f"z{i}", f"a{i}")
    helpers |= used
    return [f"# delta{i} = dE/dz{i} = g{i} * f'(z{i}),  f'(z{i}) = {text}", f"delta{i} = g{i} * {text}"]


def numpy_backward_lines(net, helpers: set) -> list[list[str]]:
    """Backward statements per layer, last layer first."""
    grads = _Grads(net)
    live = grads.live
    blocks = []
    lam = net.l2 > 0
    for node in reversed(net.nodes):
        i, kind = node.index, node.kind.name
        src = node.inputs[0]
        x = out_name(net, src)
        lines: list[str] = []
        if kind == "dense":
            if node is net.output:
                act = node.opts["activation"]
                if _fused(net) is not None:
                    lines += [(f"# output layer: {act.name} with {net.loss.name} gives delta{i} = dE/dz{i} = "
                              f"(a{i} - T) / B   (fused, stable)"), f"delta{i} = (a{i} - T) / batch"]
                else:
                    _, dloss, comment = _loss_terms(net)
                    dloss = re.sub(r"\bA\b", f"a{i}", dloss)
                    lines += [f"# output layer: g{i} = dE/da{i} = (per-sample {comment}) / B",
                              f"g{i} = ({dloss}) / batch"]
                    lines += _dense_delta(net, node, helpers)
            else:
                lines += _dense_delta(net, node, helpers)
            has_b = node.opts.get("bias", True)
            if not live[src]:
                lines += [f"# dE/dW{i} = delta{i}^T {x}, dE/db{i} = sum_b delta{i}[b] (dE/d{x} is not needed)",
                          f"grads[\"W{i}\"] = delta{i}.T @ {x}"]
                if has_b:
                    lines.append(f"grads[\"b{i}\"] = np.sum(delta{i}, axis=0)")
            else:
                lines.append(f"# dE/d{x} = delta{i} W{i}, dE/dW{i} = delta{i}^T {x}, dE/db{i} = sum_b delta{i}[b]")
                bias = f"grads[\"b{i}\"]" if has_b else "_"
                lines.append(f"dx{i}, grads[\"W{i}\"], {bias} = dense_backward(delta{i}, {x}, W{i})")
            if lam:
                lines += [f"# weight decay: dE/dW{i} += lambda W{i}", f"grads[\"W{i}\"] += L2 * W{i}"]
            if live[src]:
                lines += grads.add(src, f"dx{i}", i)
        elif kind in ("batchnorm", "layernorm"):
            name = "batch" if kind == "batchnorm" else "layer"
            lines.append(f"# layer {i}, {name} normalization: dE/dgamma{i} = sum_b g{i} xhat, "
                         f"dE/dbeta{i} = sum_b g{i}, dE/d{x} in the compact form")
            dx = f"dx{i}" if live[src] else "_"
            lines.append(f"{dx}, grads[\"gamma{i}\"], grads[\"beta{i}\"] = {kind}_backward(g{i}, gamma{i}, "
                         f"xhat{i}, sigma{i})")
            lines += grads.add(src, f"dx{i}", i)
        elif kind == "dropout":
            if live[src]:
                lines += [f"# layer {i}, dropout: dE/d{x} = g{i} * m / (1 - p)",
                          f"dx{i} = g{i} if masks is None else dropout_backward(g{i}, masks[\"mask{i}\"], RATE{i})"]
                lines += grads.add(src, f"dx{i}", i)
        elif kind == "residual":
            lines.append(f"# layer {i}, residual: dE/dy{i} reaches both inputs unchanged")
            lines += grads.add(src, f"g{i}", i)
            lines += grads.add(node.inputs[1], f"g{i}", i)
        if lines:
            blocks.append(lines)
    return blocks


# ----------------------------------------------------------------------------- numpy fast path (train_step)
#
# step_gradients writes every batch-sized array into the workspace ``ws`` and overwrites an array
# in place where nothing reads it again (_output_free, and a g{l} that no other layer shares), so
# that each NumPy pass touches as few arrays as possible: an in-place pass over two arrays took
# about half the time of one that writes a third (256 x 256 float32, OpenBLAS build of NumPy 2.4).
# Sums over the batch are products with a vector of ones (about 5 us against 11-23 us for
# np.sum or mean(axis=0) there).  ReLU keeps its derivative as a bool array relu'(z) = (z > 0),
# a = max(z, 0) overwrites z, and delta = g * relu'(z); a float 0/1 mask instead (SIMD multiply)
# measured 3% slower per step: its conversion pass and the larger buffer cost more than it saves.
# Passes with a row vector (biases, the normalization's mean, scale and shift, ReLU's 0) go through
# rowwise, softmax through z^T (see there).  Fewer buffers also means fewer cache misses: dE/dx of a
# dense layer overwrites its input once dE/dW has read it (_input_dead), and a dropout layer read
# only by dense layers leaves its factor 1 / (1 - p) to their z and delta (_factor_to_readers).


def _row(op: str, a: str, v: str, out: str) -> str:
    """A pass of ``a`` (batch, n) with the row vector ``v`` written to ``out``: rowwise (in ``ROWWISE``)."""
    return f"rowwise(np.{op}, {a}, {v}, {out}, ws.tile)"


ROWWISE = '''ROW_BLOCK = 8192
"""Values per NumPy inner loop in rowwise: NumPy broadcasts a short row vector through a buffer of 8192 values."""


def rowwise(op, a, v, out, tile):
    """op(a, v, out=out) for (batch, n) arrays a and out and a row vector v of n values, returns out.

    NumPy runs a short row broadcast through a buffer, about half as fast as a pass over two
    equal arrays; here a and out are taken as (batch / r, r n) with v tiled r times (into
    ``tile``), so that one row holds at least ROW_BLOCK values (when r divides the batch).
    v may also be a number: np.maximum(a, 0) runs a slower loop than with a row of zeros.
    """
    batch, n = a.shape
    r = -(-ROW_BLOCK // n)
    if r == 1 or batch % r or not (a.flags.c_contiguous and out.flags.c_contiguous):
        return op(a, v, out=out)
    block = tile[:r * n]
    block.reshape(r, n)[...] = v
    op(a.reshape(batch // r, r * n), block, out=out.reshape(batch // r, r * n))
    return out'''
"""Source of the row-vector helper of step_gradients (printed when a pass uses it)."""


_UFUNCS = {sp.StrictGreaterThan: "greater", sp.GreaterThan: "greater_equal", sp.StrictLessThan: "less",
           sp.LessThan: "less_equal"}


def _step(act: ops.Activation) -> bool:
    """Whether the forward pass keeps f' as a bool mask (Activation.step_condition) and applies f in place."""
    return act.step_condition is not None and type(act.step_condition) in _UFUNCS and _has_out(act)


def _step_lines(act: ops.Activation, i: int) -> tuple[list[str], set[str]]:
    """``{name}_prime{i} = c(z{i})`` (the 0/1 derivative as a bool array, ReLU: ``np.greater(z1, 0, ...)``),
    then ``a{i} = f(z{i})`` over z{i}; and the registry helpers the call uses."""
    cond, z = act.step_condition, sp.Symbol(f"z{i}", real=True)
    lhs, rhs = (_printer().doprint(side.subs(ops.X, z)) for side in (cond.lhs, cond.rhs))
    mask = f"{act.name}_prime{i}"
    lines = [(f"# {act.name}'(z{i}) = ({cond.subs(ops.X, z)}), kept for the backward pass; "
              f"a{i} = {act.describe()}(z{i}), in place"),
             f"{mask} = np.{_UFUNCS[type(cond)]}({lhs}, {rhs}, out=ws.{mask})"]
    c = act.max_constant
    if c is not None:  # np.maximum with a scalar takes a slower loop than with a row of values (NumPy 2.4)
        c = _printer().doprint(c)
        return lines + [f"#   {act.name}(z{i}) = max(z{i}, {c}), through rowwise (a row of {c}s)",
                        f"a{i} = " + _row("maximum", f"z{i}", c, f"z{i}")], set()
    call, used = _activation_code(act, _printer(), f"z{i}", f"z{i}")
    return lines + [f"a{i} = {call}"], used


def _output_free(net, index: int) -> bool:
    """Whether the one layer that reads layer ``index`` may overwrite its output in place (a normalization,
    dropout or residual reading it): no other layer reads it and its own backward pass does not."""
    if index == 0:
        return False  # X belongs to the caller
    readers = net.consumers(index)
    if len(readers) != 1 or readers[0].kind.name == "dense" or readers[0].inputs.count(index) != 1:
        return False
    node = net.nodes[index - 1]
    if node.kind.name != "dense":
        return True  # normalization, dropout and residual read their own buffers (xc, xhat) or the masks
    act = node.opts["activation"]
    return _step(act) or act.name == "identity"


def _factor_to_readers(net, index: int) -> bool:
    """Whether dropout layer ``index`` leaves its factor 1 / (1 - p) to the layers that read it: each is a dense
    layer (z = y W^T + b is linear in y) whose delta is a buffer of its own (not an identity's shared g), so it
    scales its z in the forward pass and its delta in the backward pass, arrays no wider than y when the layer
    is no wider (the output layer: 10 units against 256), instead of a pass over y each way."""
    readers = net.consumers(index)
    return net.nodes[index - 1].kind.name == "dropout" and all(
        r.kind.name == "dense" and r.opts["activation"].name != "identity" for r in readers)


def _input_dead(net, node) -> bool:
    """Whether dense layer ``node``'s input is a workspace buffer that nothing reads after its dE/dW: the
    layer is its one reader and the layer that wrote it does not read its own output backwards (a dense
    layer with a bool derivative mask, a normalization, dropout or residual); dE/d(input) may overwrite it."""
    src = node.inputs[0]
    readers = net.consumers(src)
    if src == 0 or len(readers) != 1 or readers[0] is not node:
        return False
    producer = net.nodes[src - 1]
    if producer.kind.name == "dense":
        return _step(producer.opts["activation"])
    return producer.kind.name in ("batchnorm", "layernorm", "dropout", "residual")


def _fast_add(grads: _Grads, src: int, expr: str, owned: bool, private: dict) -> list[str]:
    """Accumulate into g{src} without allocating where ``expr`` is a buffer of its own (``owned``); records
    in ``private`` whether g{src} may then be overwritten in place (not an alias of another layer's g)."""
    if not grads.live[src]:
        return []
    if src in grads.seen and owned:
        readers = ", ".join(str(n.index) for n in grads.net.consumers(src))
        private[src] = True
        return [f"# layer {src} feeds layers {readers}: dE/dy{src} is the sum of what each reader sends back",
                f"g{src} = np.add({expr}, g{src}, out={expr})"]
    private[src] = owned or src in grads.seen  # a first alias (a residual's g) is shared; g + expr is fresh
    return grads.add(src, expr, 0)


def fast_forward_lines(net, helpers: set) -> list[list[str]]:
    """Training-mode forward statements of step_gradients: every array written into the workspace ``ws``."""
    blocks = []
    for node in net.nodes:
        i, kind, o = node.index, node.kind.name, node.opts
        src = node.inputs[0]
        x = out_name(net, src)
        free = _output_free(net, src)
        if kind == "dense":
            act = o["activation"]
            lines = [f"# layer {i}: z{i} = {x} W{i}^T + b{i}, a{i} = {act.describe()}(z{i})",
                     f"z{i} = np.matmul({x}, W{i}.T, out=ws.z{i})"]
            if _factor_to_readers(net, src):
                lines += [f"if masks is not None:  # {x} is stored without its dropout factor 1 / (1 - p) (layer {src})",
                          f"    z{i} *= 1 / (1 - RATE{src})"]
            if o.get("bias", True):
                lines.append(_row("add", f"z{i}", f"b{i}", f"z{i}"))
            if _step(act):
                step, used = _step_lines(act, i)
                helpers |= used
                lines += step
            elif _fortran_out(act):  # softmax: its reductions over the units run on the transpose
                call, used = _activation_code(act, _printer(), f"z{i}", f"ws.zt{i}.T")
                helpers |= used
                lines += [f"# a{i} = {act.describe()}(z{i}), into the transpose of the (units, batch) buffer zt{i}:",
                          "#   each reduction over the units is then one vectorized pass", f"a{i} = {call}"]
            else:
                out = f"ws.a{i}" if _has_out(act) else None
                call, used = _activation_code(act, _printer(), f"z{i}", out)
                helpers |= used
                lines.append(f"a{i} = {call}")
        elif kind == "batchnorm":
            xc = x if free else f"ws.xc{i}"
            lines = [(f"# layer {i}: mu{i}, var{i} over the batch; xc{i} = {x} - mu{i}, xhat{i} = xc{i} / sigma{i} "
                     f"with sigma{i} = sqrt(var{i} + eps);"),
                     f"#   y{i} = gamma{i} xhat{i} + beta{i} (xhat{i} itself is never stored: one pass less)",
                     f"mu{i} = np.dot(ws.ones, {x}) / batch"]
            if free:
                lines.append(f"# xc{i} overwrites {x} (nothing reads {x} again)")
            lines += [f"xc{i} = " + _row("subtract", x, f"mu{i}", xc),
                      (f"# var{i} = mean_b xc{i}^2: the squares go into y{i}'s buffer (the next pass overwrites them), "
                       "the sum is a product with ones"),
                      f"var{i} = np.matmul(ws.ones, np.multiply(xc{i}, xc{i}, out=ws.y{i})) / batch",
                      f"sigma{i} = np.sqrt(var{i} + EPS{i})",
                      f"y{i} = " + _row("multiply", f"xc{i}", f"gamma{i} / sigma{i}", f"ws.y{i}"),
                      _row("add", f"y{i}", f"beta{i}", f"y{i}"),
                      "if running is not None:",
                      f"    running[\"mean{i}\"] = BN_MOMENTUM{i} * running[\"mean{i}\"] + (1 - BN_MOMENTUM{i}) * mu{i}",
                      f"    running[\"var{i}\"] = BN_MOMENTUM{i} * running[\"var{i}\"] + (1 - BN_MOMENTUM{i}) * var{i}"]
        elif kind == "layernorm":
            lines = [(f"# layer {i}: per sample, xhat{i} = ({x} - mu) / sqrt(var + eps) over the units; "
                     f"y{i} = gamma{i} xhat{i} + beta{i}"),
                     f"xhat{i} = np.subtract({x}, {x}.mean(axis=1, keepdims=True), out=ws.xhat{i})",
                     f"sigma{i} = np.sqrt(np.einsum(\"bj,bj->b\", xhat{i}, xhat{i})[:, None] / {node.units} + EPS{i})",
                     f"xhat{i} /= sigma{i}",
                     f"y{i} = " + _row("multiply", f"xhat{i}", f"gamma{i}", f"ws.y{i}"),
                     _row("add", f"y{i}", f"beta{i}", f"y{i}")]
        elif kind == "dropout":
            y = x if free else f"ws.y{i}"
            lines = [f"# layer {i}: y{i} = {x} * m / (1 - p)" + (f", in place (nothing reads {x} again)" if free else ""),
                     f"y{i} = np.multiply({x}, 1.0 if masks is None else masks[\"mask{i}\"], out={y})"]
            if _factor_to_readers(net, i):
                readers = [str(n.index) for n in net.consumers(i)]
                who = f"layer {readers[0]} applies" if len(readers) == 1 else f"layers {', '.join(readers)} apply"
                lines.insert(1, f"#   stored as {x} * m: {who} 1 / (1 - p) to z and delta")
            else:
                lines += ["if masks is not None:", f"    y{i} *= 1 / (1 - RATE{i})"]
        else:  # residual
            lines = [f"# layer {i}: y{i} = {x} + {out_name(net, node.inputs[1])}",
                     f"y{i} = np.add({x}, {out_name(net, node.inputs[1])}, out=ws.y{i})"]
        blocks.append(lines)
    return blocks


def fast_backward_lines(net, helpers: set) -> list[list[str]]:
    """Backward statements of step_gradients: gradients into ``ws.grads``, dE/dx into workspace buffers.

    Where g{l} (dE/dy{l}) is a buffer that only layer l reads, layer l's backward pass overwrites it."""
    grads = _Grads(net)
    live = grads.live
    private: dict[int, bool] = {}
    blocks = []
    for node in reversed(net.nodes):
        i, kind = node.index, node.kind.name
        src = node.inputs[0]
        x = out_name(net, src)
        mine = private.get(i, False)
        lines: list[str] = []
        if kind == "dense":
            act = node.opts["activation"]
            if node is net.output and _fused(net) is not None:
                lines += [f"# delta{i} = (a{i} - T) / B   ({act.name} with {net.loss.name}, fused)",
                          f"delta{i} = np.subtract(a{i}, T, out=ws.delta{i})", f"delta{i} *= scale / batch"]
            else:
                if node is net.output:
                    _, dloss, comment = _loss_terms(net)
                    dloss = re.sub(r"\bA\b", f"a{i}", dloss)
                    lines += [f"# g{i} = dE/da{i} / B   ({comment})", f"g{i} = ({dloss}) * (scale / batch)"]
                    mine = True
                out = f"g{i}" if mine else f"ws.delta{i}"
                if act.name == "identity":
                    lines += [f"# delta{i} = g{i} (identity)", f"delta{i} = g{i}"]
                elif _step(act):
                    lines += [f"# delta{i} = g{i} * {act.name}'(z{i})" + (f", in place of g{i}" if mine else ""),
                              f"delta{i} = np.multiply(g{i}, {act.name}_prime{i}, out={out})"]
                elif act.vector:
                    lines += [f"# delta{i} = a{i} * (g{i} - sum_k g{i} a{i})   (softmax Jacobian)",
                              (f"delta{i} = np.multiply(a{i}, g{i} - np.sum(g{i} * a{i}, axis=-1, keepdims=True), "
                              f"out={out})")]
                else:
                    _, text, used = _derivative(act, f"z{i}", f"a{i}")
                    helpers |= used
                    lines += [f"# delta{i} = g{i} * f'(z{i}),  f'(z{i}) = {text}",
                              f"delta{i} = np.multiply(g{i}, {text}, out={out})"]
            has_b = node.opts.get("bias", True)
            lines.append((f"# dE/db{i} = sum_b delta{i} (a product with ones, first: delta{i} is in cache), "
                          if has_b else "# ") + f"dE/dW{i} = delta{i}^T {x}"
                         + (f", dE/d{x} = delta{i} W{i}" if live[src] else ""))
            if has_b:
                lines.append(f"np.matmul(ws.ones, delta{i}, out=grads[\"b{i}\"])")
            if _factor_to_readers(net, src):
                lines += [f"if masks is not None:  # {x} without its dropout factor: dE/dW{i} and dE/d{x} take it from delta{i}",
                          f"    delta{i} *= 1 / (1 - RATE{src})"]
            lines.append(f"np.matmul(delta{i}.T, {x}, out=grads[\"W{i}\"])")
            if net.l2 > 0:
                lines.append(f"grads[\"W{i}\"] += (L2 * scale) * W{i}")
            if live[src]:
                if _input_dead(net, node):
                    lines += [f"# dE/d{x} overwrites {x} (nothing reads {x} again): one buffer less in cache",
                              f"dx{i} = np.matmul(delta{i}, W{i}, out={x})"]
                else:
                    lines.append(f"dx{i} = np.matmul(delta{i}, W{i}, out=ws.dx{i})")
                lines += _fast_add(grads, src, f"dx{i}", True, private)
        elif kind == "batchnorm":
            lines += [(f"# layer {i}: dE/dbeta{i} = sum_b g{i}, dE/dgamma{i} = sum_b g{i} xhat{i} "
                      f"= (sum_b g{i} xc{i}) / sigma{i}"),
                      f"np.matmul(ws.ones, g{i}, out=grads[\"beta{i}\"])",
                      f"np.einsum(\"bj,bj->j\", g{i}, xc{i}, out=grads[\"gamma{i}\"])",
                      f"grads[\"gamma{i}\"] /= sigma{i}"]
            if live[src]:
                lines += [(f"# dE/d{x} = gamma{i} / sigma{i} (g{i} - dE/dbeta{i} / B - xhat{i} dE/dgamma{i} / B), "
                          f"xhat{i} = xc{i} / sigma{i}")]
                if mine:
                    lines += [f"#   in place: xc{i} and g{i} are not read again",
                              _row("multiply", f"xc{i}", f"grads[\"gamma{i}\"] / (batch * sigma{i})", f"xc{i}"),
                              f"dx{i} = np.subtract(g{i}, xc{i}, out=g{i})"]
                else:
                    lines += [f"dx{i} = " + _row("multiply", f"xc{i}", f"grads[\"gamma{i}\"] / (batch * sigma{i})",
                                                 f"ws.dx{i}"),
                              f"np.subtract(g{i}, dx{i}, out=dx{i})"]
                lines += [_row("subtract", f"dx{i}", f"grads[\"beta{i}\"] / batch", f"dx{i}"),
                          _row("multiply", f"dx{i}", f"gamma{i} / sigma{i}", f"dx{i}")]
                lines += _fast_add(grads, src, f"dx{i}", True, private)
        elif kind == "layernorm":
            lines += [f"# layer {i}: dE/dbeta{i} = sum_b g{i}, dE/dgamma{i} = sum_b g{i} xhat{i}",
                      f"np.matmul(ws.ones, g{i}, out=grads[\"beta{i}\"])",
                      f"np.einsum(\"bj,bj->j\", g{i}, xhat{i}, out=grads[\"gamma{i}\"])"]
            if live[src]:
                out = f"g{i}" if mine else f"ws.dx{i}"
                lines += [f"# h = g{i} gamma{i}; dE/d{x} = (h - mean_k h - xhat{i} mean_k h xhat{i}) / sigma{i}",
                          f"dx{i} = " + _row("multiply", f"g{i}", f"gamma{i}", out),
                          f"hx{i} = np.einsum(\"bj,bj->b\", dx{i}, xhat{i})[:, None] / {node.units}",
                          f"dx{i} -= dx{i}.mean(axis=1, keepdims=True)", f"dx{i} -= xhat{i} * hx{i}",
                          f"dx{i} /= sigma{i}"]
                lines += _fast_add(grads, src, f"dx{i}", True, private)
        elif kind == "dropout":
            if live[src]:
                out = f"g{i}" if mine else f"ws.dx{i}"
                lines += [f"# layer {i}: dE/d{x} = g{i} * m / (1 - p)" + (f", in place of g{i}" if mine else ""),
                          f"dx{i} = np.multiply(g{i}, 1.0 if masks is None else masks[\"mask{i}\"], out={out})"]
                if _factor_to_readers(net, i):
                    lines.insert(-1, f"#   g{i} has the factor 1 / (1 - p) already (the deltas of the layers that read y{i})")
                else:
                    lines += ["if masks is not None:", f"    dx{i} *= 1 / (1 - RATE{i})"]
                lines += _fast_add(grads, src, f"dx{i}", True, private)
        else:
            lines.append(f"# layer {i}: dE/dy{i} reaches both inputs unchanged")
            lines += _fast_add(grads, src, f"g{i}", False, private)
            lines += _fast_add(grads, node.inputs[1], f"g{i}", False, private)
        if lines:
            blocks.append(lines)
    return blocks


def transposed_weights(net) -> list[str]:
    """Weight arrays that model.py stores transposed (TRANSPOSED): W1 of a first dense layer with
    TRANSPOSED_MIN_WEIGHTS or more, as in the NumPy target (numpy_code.transposed_weights): ``X @ W1.T``
    is then a product of two C-ordered matrices, and nothing computes ``delta1 @ W1`` (dE/dX is never needed)."""
    first = net.nodes[0]
    if first.kind.name != "dense" or first.units * net.inputs < TRANSPOSED_MIN_WEIGHTS:
        return []
    return [f"W{first.index}"]


def _has_out(act: ops.Activation) -> bool:
    code = ops.NUMPY_ACTIVATIONS.get(act.name)
    return code is not None and code.out


def workspace_buffers(net, lines: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(name, shape, dtype) of every buffer of the fast path, for a batch of ``batch`` rows; with ``lines``
    (the statements of step_gradients), only those that they use."""
    out = [("ones", "batch", "dtype"), ("tile", "2 * ROW_BLOCK", "dtype")]
    live = live_gradients(net)
    for node in net.nodes:
        i, kind, n = node.index, node.kind.name, node.units
        src = node.inputs[0]
        rows = f"(batch, {n})"
        if kind == "dense":
            out += [(f"z{i}", rows, "dtype"), (f"{node.opts['activation'].name}_prime{i}", rows, "bool"),
                    (f"a{i}", rows, "dtype"),
                    (f"zt{i}", f"({n}, batch)", "dtype"), (f"delta{i}", rows, "dtype")]
        elif kind in ("batchnorm", "layernorm"):
            out += [(f"xc{i}" if kind == "batchnorm" else f"xhat{i}", rows, "dtype"), (f"y{i}", rows, "dtype")]
        elif kind in ("dropout", "residual"):
            out.append((f"y{i}", rows, "dtype"))
        if live[src] and kind != "residual":
            out.append((f"dx{i}", f"(batch, {net.width(src)})", "dtype"))
    if lines is None:
        return out
    used = set(re.findall(r"\bws\.(\w+)", "\n".join(line.split("#")[0] for line in lines)))
    return [buffer for buffer in out if buffer[0] in used]


def _drop_unused(lines: list[str]) -> list[str]:
    """Statements ``name = call(..., out=...)`` whose name is never read again keep only the call."""
    out = []
    for k, line in enumerate(lines):
        m = re.match(r"^(\s*)(\w+) = (.*)$", line)
        if m and "out=" in m.group(3):
            rest = _strip_strings("\n".join(l for l in lines[k + 1:] if not l.lstrip().startswith("#")))
            if not re.search(rf"\b{m.group(2)}\b", rest):
                line = f"{m.group(1)}{m.group(3)}"
        out.append(line)
    return out


def _registry_sources(net) -> list[str]:
    """The registry's NumPy functions of every kind in the network, in registry order."""
    seen, out = set(), []
    for node in net.nodes:
        if node.kind.name in seen:
            continue
        seen.add(node.kind.name)
        out += [inspect.getsource(fn).rstrip() for fn in node.kind.code]
    return out


# ----------------------------------------------------------------------------- scalar target


def _scalar_act(act: ops.Activation, arg: str, helpers: set) -> str:
    call, used = _activation_code(act, _printer(), arg, None)
    helpers |= used
    return call


def scalar_forward_lines(net, mode: str, helpers: set) -> list[list[str]]:
    """Per-unit loops of the forward pass (``train`` or ``infer`` mode)."""
    blocks = []
    for node in net.nodes:
        i, kind, n = node.index, node.kind.name, node.units
        src = node.inputs[0]
        x, fan_in = out_name(net, src), net.width(src)
        o = node.opts
        if kind == "dense":
            act = o["activation"]
            start = f"b{i}[j]" if o.get("bias", True) else "0.0"
            out = f"a{i}[b] = softmax(z{i}[b])" if act.vector else f"a{i}[b, j] = {act.describe()}(z{i}[b, j])"
            lines = [f"# layer {i}, dense: z{i}[b, j] = sum_k W{i}[j, k] {x}[b, k] + b{i}[j], {out}",
                     f"z{i} = np.empty((batch, {n}), dtype=dtype)", f"a{i} = np.empty((batch, {n}), dtype=dtype)",
                     "for b in range(batch):", f"    for j in range({n}):", f"        s = {start}",
                     f"        for k in range({fan_in}):", f"            s += W{i}[j, k] * {x}[b, k]",
                     f"        z{i}[b, j] = s"]
            if act.vector:
                lines += [(f"    # softmax: a{i}[b, j] = exp(z{i}[b, j] - top) / sum_k exp(z{i}[b, k] - top), "
                          "top = max_k z (stable)"),
                          f"    top = z{i}[b, 0]", f"    for k in range(1, {n}):", f"        top = max(top, z{i}[b, k])",
                          "    total = 0.0", f"    for k in range({n}):",
                          f"        a{i}[b, k] = np.exp(z{i}[b, k] - top)", f"        total += a{i}[b, k]",
                          f"    for k in range({n}):", f"        a{i}[b, k] /= total"]
            else:
                lines.append(f"        a{i}[b, j] = {_scalar_act(act, 's', helpers)}")
        elif kind == "batchnorm" and mode == "infer":
            lines = [(f"# layer {i}, batch normalization at inference: y{i}[b, j] = gamma{i}[j] "
                     f"({x}[b, j] - mean[j]) / sqrt(var[j] + eps) + beta{i}[j] (running statistics)"),
                     f"y{i} = np.empty((batch, {n}), dtype=dtype)",
                     f"for j in range({n}):",
                     f"    scale = gamma{i}[j] / np.sqrt(running[\"var{i}\"][j] + EPS{i})",
                     "    for b in range(batch):",
                     f"        y{i}[b, j] = scale * ({x}[b, j] - running[\"mean{i}\"][j]) + beta{i}[j]"]
        elif kind == "batchnorm":
            lines = [f"# layer {i}, batch normalization, per unit j over the batch:",
                     f"#   mu{i}[j] = 1/B sum_b {x}[b, j], var{i}[j] = 1/B sum_b ({x}[b, j] - mu{i}[j])^2,",
                     f"#   xhat{i}[b, j] = ({x}[b, j] - mu{i}[j]) / sigma{i}[j], sigma{i}[j] = sqrt(var{i}[j] + eps),",
                     f"#   y{i}[b, j] = gamma{i}[j] xhat{i}[b, j] + beta{i}[j]",
                     f"mu{i} = np.empty({n}, dtype=dtype)", f"var{i} = np.empty({n}, dtype=dtype)",
                     f"sigma{i} = np.empty({n}, dtype=dtype)",
                     f"xhat{i} = np.empty((batch, {n}), dtype=dtype)", f"y{i} = np.empty((batch, {n}), dtype=dtype)",
                     f"for j in range({n}):", "    s = 0.0", "    for b in range(batch):", f"        s += {x}[b, j]",
                     f"    mu{i}[j] = s / batch", "    s = 0.0", "    for b in range(batch):",
                     f"        s += ({x}[b, j] - mu{i}[j]) ** 2", f"    var{i}[j] = s / batch",
                     f"    sigma{i}[j] = np.sqrt(var{i}[j] + EPS{i})", "    for b in range(batch):",
                     f"        xhat{i}[b, j] = ({x}[b, j] - mu{i}[j]) / sigma{i}[j]",
                     f"        y{i}[b, j] = gamma{i}[j] * xhat{i}[b, j] + beta{i}[j]",
                     "if running is not None:  # running statistics for predict: r <- momentum r + (1 - momentum) batch",
                     f"    for j in range({n}):",
                     (f"        running[\"mean{i}\"][j] = BN_MOMENTUM{i} * running[\"mean{i}\"][j] "
                     f"+ (1 - BN_MOMENTUM{i}) * mu{i}[j]"),
                     (f"        running[\"var{i}\"][j] = BN_MOMENTUM{i} * running[\"var{i}\"][j] "
                     f"+ (1 - BN_MOMENTUM{i}) * var{i}[j]")]
        elif kind == "layernorm":
            lines = [f"# layer {i}, layer normalization, per sample b over its {n} units:",
                     (f"#   mu = 1/n sum_k {x}[b, k], var = 1/n sum_k ({x}[b, k] - mu)^2, "
                     f"sigma{i}[b] = sqrt(var + eps),"),
                     (f"#   xhat{i}[b, j] = ({x}[b, j] - mu) / sigma{i}[b], y{i}[b, j] = gamma{i}[j] xhat{i}[b, j] "
                     f"+ beta{i}[j]"),
                     f"sigma{i} = np.empty(batch, dtype=dtype)",
                     f"xhat{i} = np.empty((batch, {n}), dtype=dtype)", f"y{i} = np.empty((batch, {n}), dtype=dtype)",
                     "for b in range(batch):", "    s = 0.0", f"    for k in range({n}):", f"        s += {x}[b, k]",
                     f"    mu = s / {n}", "    s = 0.0", f"    for k in range({n}):", f"        s += ({x}[b, k] - mu) ** 2",
                     f"    sigma{i}[b] = np.sqrt(s / {n} + EPS{i})", f"    for j in range({n}):",
                     f"        xhat{i}[b, j] = ({x}[b, j] - mu) / sigma{i}[b]",
                     f"        y{i}[b, j] = gamma{i}[j] * xhat{i}[b, j] + beta{i}[j]"]
        elif kind == "dropout" and mode == "infer":
            lines = [f"# layer {i}, dropout at inference: the identity", f"y{i} = {x}"]
        elif kind == "dropout":
            lines = [(f"# layer {i}, inverted dropout: y{i}[b, j] = {x}[b, j] m[b, j] / (1 - p), p = {o['rate']} "
                     "(no masks: every unit kept, no scaling)"),
                     f"y{i} = np.empty((batch, {n}), dtype=dtype)", "for b in range(batch):",
                     f"    for j in range({n}):",
                     f"        keep = 1.0 if masks is None else masks[\"mask{i}\"][b, j] / (1 - RATE{i})",
                     f"        y{i}[b, j] = {x}[b, j] * keep"]
        elif kind == "residual":
            s = out_name(net, node.inputs[1])
            lines = [f"# layer {i}, residual: y{i}[b, j] = {x}[b, j] + {s}[b, j] (layer {o['from']}'s output)",
                     f"y{i} = np.empty((batch, {n}), dtype=dtype)", "for b in range(batch):",
                     f"    for j in range({n}):", f"        y{i}[b, j] = {x}[b, j] + {s}[b, j]"]
        else:  # pragma: no cover
            raise SpecError(f"layers[{i - 1}].type", f"no code generator for {kind}", "use a registry kind")
        blocks.append(lines)
    return blocks


def scalar_backward_lines(net, helpers: set) -> list[list[str]]:
    """Per-unit loops of the backward pass, last layer first."""
    grads = _Grads(net)
    live = grads.live
    blocks = []
    lam = net.l2 > 0
    for node in reversed(net.nodes):
        i, kind, n = node.index, node.kind.name, node.units
        src = node.inputs[0]
        x, fan_in = out_name(net, src), net.width(src)
        lines: list[str] = []
        if kind == "dense":
            act = node.opts["activation"]
            lines.append(f"delta{i} = np.empty((batch, {n}), dtype=dtype)")
            if node is net.output and _fused(net) is not None:
                lines += [(f"# output layer: {act.name} with {net.loss.name}: delta{i}[b, j] = "
                          f"(a{i}[b, j] - T[b, j]) / B   (fused, stable)"),
                          "for b in range(batch):", f"    for j in range({n}):",
                          f"        delta{i}[b, j] = (a{i}[b, j] - T[b, j]) / batch"]
            else:
                if node is net.output:
                    a, t = sp.Symbol("a", real=True), sp.Symbol("t", real=True)
                    term = net.loss.scale(sp.Integer(n)) * net.loss.term(a, t)
                    dl = sp.diff(term, a)
                    lines += [f"# output layer: g{i}[b, j] = dE/da{i}[b, j] / B = ({sp.sstr(dl)}) / B",
                              f"g{i} = np.empty((batch, {n}), dtype=dtype)", "for b in range(batch):",
                              f"    for j in range({n}):", f"        a = a{i}[b, j]", "        t = T[b, j]",
                              f"        g{i}[b, j] = ({_printer().doprint(dl)}) / batch"]
                if act.vector:
                    lines += [(f"# softmax Jacobian: delta{i}[b, j] = a{i}[b, j] (g{i}[b, j] - "
                              f"sum_k g{i}[b, k] a{i}[b, k])"),
                              "for b in range(batch):", "    s = 0.0", f"    for k in range({n}):",
                              f"        s += g{i}[b, k] * a{i}[b, k]", f"    for j in range({n}):",
                              f"        delta{i}[b, j] = a{i}[b, j] * (g{i}[b, j] - s)"]
                else:
                    expr, text, used = _derivative(act, "z", "a")
                    helpers |= used
                    names = {s.name for s in expr.free_symbols}
                    lines += [f"# delta{i}[b, j] = g{i}[b, j] f'(z{i}[b, j]),  f'(z) = {text}",
                              "for b in range(batch):", f"    for j in range({n}):"]
                    lines += [f"        {v} = {v}{i}[b, j]" for v in ("z", "a") if v in names]
                    lines.append(f"        delta{i}[b, j] = g{i}[b, j] * {text}")
            has_b = node.opts.get("bias", True)
            need_dx = live[src]
            lines.append(f"# dE/dW{i}[j, k] = sum_b delta{i}[b, j] {x}[b, k]"
                         + (f", dE/db{i}[j] = sum_b delta{i}[b, j]" if has_b else "")
                         + (f", dE/d{x}[b, k] = sum_j delta{i}[b, j] W{i}[j, k]" if need_dx else ""))
            lines.append(f"dW{i} = np.zeros(({n}, {fan_in}), dtype=dtype)")
            if has_b:
                lines.append(f"db{i} = np.zeros({n}, dtype=dtype)")
            if need_dx:
                lines.append(f"dx{i} = np.zeros((batch, {fan_in}), dtype=dtype)")
            lines += ["for b in range(batch):", f"    for j in range({n}):"]
            if has_b:
                lines.append(f"        db{i}[j] += delta{i}[b, j]")
            lines += [f"        for k in range({fan_in}):", f"            dW{i}[j, k] += delta{i}[b, j] * {x}[b, k]"]
            if need_dx:
                lines.append(f"            dx{i}[b, k] += delta{i}[b, j] * W{i}[j, k]")
            if lam:
                lines += [f"# weight decay: dE/dW{i}[j, k] += lambda W{i}[j, k]", f"for j in range({n}):",
                          f"    for k in range({fan_in}):", f"        dW{i}[j, k] += L2 * W{i}[j, k]"]
            lines.append(f"grads[\"W{i}\"] = dW{i}")
            if has_b:
                lines.append(f"grads[\"b{i}\"] = db{i}")
            if need_dx:
                lines += grads.add(src, f"dx{i}", i)
        elif kind == "batchnorm":
            lines += [(f"# layer {i}, batch normalization, per unit j: dE/dbeta{i}[j] = sum_b g{i}[b, j], "
                      f"dE/dgamma{i}[j] = sum_b g{i}[b, j] xhat{i}[b, j],"),
                      (f"#   dE/d{x}[b, j] = gamma{i}[j] / (B sigma{i}[j]) (B g{i}[b, j] - dE/dbeta{i}[j] "
                      f"- xhat{i}[b, j] dE/dgamma{i}[j])"),
                      f"dgamma{i} = np.zeros({n}, dtype=dtype)", f"dbeta{i} = np.zeros({n}, dtype=dtype)"]
            if live[src]:
                lines.append(f"dx{i} = np.empty((batch, {n}), dtype=dtype)")
            lines += [f"for j in range({n}):", "    for b in range(batch):",
                      f"        dbeta{i}[j] += g{i}[b, j]", f"        dgamma{i}[j] += g{i}[b, j] * xhat{i}[b, j]"]
            if live[src]:
                lines += ["    for b in range(batch):",
                          (f"        dx{i}[b, j] = gamma{i}[j] / (batch * sigma{i}[j]) * (batch * g{i}[b, j] "
                          f"- dbeta{i}[j] - xhat{i}[b, j] * dgamma{i}[j])")]
            lines += [f"grads[\"gamma{i}\"] = dgamma{i}", f"grads[\"beta{i}\"] = dbeta{i}"]
            lines += grads.add(src, f"dx{i}", i)
        elif kind == "layernorm":
            lines += [f"# layer {i}, layer normalization, per sample b with h[b, k] = g{i}[b, k] gamma{i}[k]:",
                      (f"#   dE/d{x}[b, j] = (n h[b, j] - sum_k h[b, k] - xhat{i}[b, j] sum_k h[b, k] xhat{i}[b, k]) "
                      f"/ (n sigma{i}[b]),"),
                      f"#   dE/dgamma{i}[j] = sum_b g{i}[b, j] xhat{i}[b, j], dE/dbeta{i}[j] = sum_b g{i}[b, j]",
                      f"dgamma{i} = np.zeros({n}, dtype=dtype)", f"dbeta{i} = np.zeros({n}, dtype=dtype)"]
            if live[src]:
                lines += [f"dx{i} = np.empty((batch, {n}), dtype=dtype)", "for b in range(batch):",
                          "    hs = 0.0", "    hx = 0.0", f"    for k in range({n}):",
                          f"        hs += g{i}[b, k] * gamma{i}[k]",
                          f"        hx += g{i}[b, k] * gamma{i}[k] * xhat{i}[b, k]", f"    for j in range({n}):",
                          (f"        dx{i}[b, j] = ({n} * g{i}[b, j] * gamma{i}[j] - hs - xhat{i}[b, j] * hx) "
                          f"/ ({n} * sigma{i}[b])")]
            lines += ["for b in range(batch):", f"    for j in range({n}):",
                      f"        dgamma{i}[j] += g{i}[b, j] * xhat{i}[b, j]", f"        dbeta{i}[j] += g{i}[b, j]",
                      f"grads[\"gamma{i}\"] = dgamma{i}", f"grads[\"beta{i}\"] = dbeta{i}"]
            lines += grads.add(src, f"dx{i}", i)
        elif kind == "dropout":
            if live[src]:
                lines += [f"# layer {i}, dropout: dE/d{x}[b, j] = g{i}[b, j] m[b, j] / (1 - p)",
                          f"dx{i} = np.empty((batch, {n}), dtype=dtype)", "for b in range(batch):",
                          f"    for j in range({n}):",
                          f"        keep = 1.0 if masks is None else masks[\"mask{i}\"][b, j] / (1 - RATE{i})",
                          f"        dx{i}[b, j] = g{i}[b, j] * keep"]
                lines += grads.add(src, f"dx{i}", i)
        elif kind == "residual":
            lines.append(f"# layer {i}, residual: dE/dy{i} reaches both inputs unchanged")
            lines += grads.add(src, f"g{i}", i)
            lines += grads.add(node.inputs[1], f"g{i}", i)
        if lines:
            blocks.append(lines)
    return blocks


# ----------------------------------------------------------------------------- context and rendering


def _problem(net) -> str:
    out = net.output.opts["activation"]
    if out.vector:
        return "blobs"
    return "regression"


def _strip_strings(text: str) -> str:
    return re.sub(r'"[^"]*"', "", text)


def _unpack(names: list[str], source: str, body: str) -> list[str]:
    body = _strip_strings(body)
    return [f"{n} = {source}[\"{n}\"]" for n in names if re.search(rf"\b{n}\b", body)]


def _cache_names(net, target: str) -> list[str]:
    names = []
    for node in net.nodes:
        i, kind = node.index, node.kind.name
        if kind == "dense":
            names += [f"z{i}", f"a{i}"]
        elif kind in ("batchnorm", "layernorm"):
            names += [f"y{i}", f"xhat{i}", f"sigma{i}"]
        else:
            names.append(f"y{i}")
    return names


def graph_context(d, target: str = "numpy") -> dict:
    """Everything the graph templates need, for ``target`` numpy or scalar."""
    if target not in TARGETS:
        raise SpecError("target", f"{target!r} is not a target of layer-graph networks",
                        f"use one of {', '.join(TARGETS)}")
    net = d.network
    opt = net.optimizer
    helpers: set[str] = set()
    step_lines: list[str] = []
    if target == "numpy":
        fast = [line for block in fast_forward_lines(net, helpers) + fast_backward_lines(net, helpers)
                for line in block]
        step_lines = _drop_unused(fast)
        forward = numpy_forward_lines(net, "train", helpers)
        infer = numpy_forward_lines(net, "infer", helpers)
        backward = numpy_backward_lines(net, helpers)
        sources = _registry_sources(net)
    else:
        forward = scalar_forward_lines(net, "train", helpers)
        infer = scalar_forward_lines(net, "infer", helpers)
        backward = scalar_backward_lines(net, helpers)
        sources = []
    fused = _fused(net)
    L = net.depth
    if fused is not None:
        loss_call = f"{_fname(fused.source)}(cache[\"z{L}\"], T)"
        infer_loss = f"{_fname(fused.source)}(z, T)"
        infer_unpack = "_, z"
        loss_comment = f"{net.loss.title} from the logits z{L} (stable)"
    else:
        per_sample, _, _ = _loss_terms(net)
        loss_call = re.sub(r"\bA\b", f"cache[\"a{L}\"]", per_sample)
        infer_loss = re.sub(r"\bA\b", "y", per_sample)
        infer_unpack = "y, _"
        loss_comment = net.loss.title
    body = "\n".join(line for block in backward for line in block if not line.lstrip().startswith("#"))
    cache_names = _cache_names(net, target)
    params = d.parameters
    bn = [n for n in net.nodes if n.kind.name == "batchnorm"]
    constants = []
    for n in net.nodes:
        o = n.opts
        if n.kind.name in ("batchnorm", "layernorm"):
            constants.append((f"EPS{n.index}", repr(float(o["epsilon"])), f"epsilon of layer {n.index}"))
        if n.kind.name == "batchnorm":
            constants.append((f"BN_MOMENTUM{n.index}", repr(float(o["momentum"])),
                              f"momentum of layer {n.index}'s running statistics"))
        if n.kind.name == "dropout":
            constants.append((f"RATE{n.index}", repr(float(o["rate"])), f"drop probability of layer {n.index}"))
    kinked = [f"z{n.index}" for n in net.nodes if n.kind.name == "dense" and n.opts["activation"].kink]
    return {
        "name": json.dumps(net.name, ensure_ascii=False)[1:-1],
        "architecture": net.architecture,
        "target": target,
        "target_note": ("Vectorized matrix form: each layer calls its registry function (copied below)."
                        if target == "numpy" else
                        "Scalar form: explicit loops over samples b and units j, k, for reading and teaching."),
        "inputs": net.inputs,
        "outputs": net.output.units,
        "layers": [n.describe() for n in net.nodes],
        "params": [{"name": p.name, "shape": p.shape, "init": p.param.init, "title": p.param.title,
                    "kind": p.node.kind.name, "layer": p.node.index} for p in params],
        "keys": [p.name for p in params],
        "transposed": "{" + ", ".join(f'"{key}"' for key in transposed_weights(net)) + "}"
                      if transposed_weights(net) else "set()",
        "weights": [p.name for p in params if p.param.decay],
        "bn": [{"l": n.index, "units": n.units, "input": out_name(net, n.inputs[0]),
                "momentum": repr(float(n.opts["momentum"]))} for n in bn],
        "stochastic": any(n.kind.name in ("batchnorm", "dropout") for n in net.nodes),
        "dropout": [{"l": n.index, "units": n.units, "rate": n.opts["rate"]}
                    for n in net.nodes if n.kind.name == "dropout"],
        "constants": constants,
        "l2": repr(float(net.l2)),
        "has_l2": net.l2 > 0,
        "forward": forward,
        "infer": infer,
        "backward": backward,
        "forward_unpack": [f"{p.name} = params[\"{p.name}\"]" for p in params],
        "backward_unpack": _unpack(["X", *cache_names], "cache", body) + _unpack([p.name for p in params], "params", body),
        "cache_names": cache_names,
        "output_name": out_name(net, L),
        "L": L,
        "helpers": _helpers(helpers),
        "rowwise": ROWWISE if any("rowwise(" in line for line in step_lines) else None,
        "sources": sources,
        "loss_helper": fused.source if fused is not None else None,
        "loss_call": loss_call,
        "infer_loss": infer_loss,
        "infer_unpack": infer_unpack,
        "step_lines": step_lines,
        "buffers": workspace_buffers(net, step_lines) if target == "numpy" else [],
        "loss_comment": loss_comment,
        "loss_title": net.loss.title,
        **optimizer_context(opt),
        "problem": _problem(net),
        "target_kind": net.loss.target_kind,
        "batch_size": net.batch_size,
        "min_batch": 2 if bn else 1,
        "kinked": kinked,
    }


def _render(template: str, ctx: dict) -> str:
    return environment().get_template(template).render(ctx)


def graph_model(d, target: str = "numpy") -> str:
    """model.py of a layer graph: ``numpy`` (registry functions, matrix form) or ``scalar`` (loops)."""
    return _render("graph_model.py.j2", graph_context(d, target))


def graph_test(d) -> str:
    """test_model.py of a layer graph: finite differences with fixed masks, running statistics, training."""
    ctx = graph_context(d, "numpy")
    ctx["gradcheck_source"] = gradcheck_source()
    ctx["fd_entries"] = FD_ENTRIES
    return _render("graph_test_model.py.j2", ctx)


def check_target(target: str) -> None:
    """Refuse, in one line, a target that graphs of layers do not have."""
    if target not in (*TARGETS, "array-api"):
        raise SpecError("--target", f"{target!r} is not a target of networks with batchnorm, layernorm, dropout, "
                        "residual or regularization", "use --target numpy, scalar or array-api")


def graph_outputs(d, target: str = "numpy") -> dict[str, bytes]:
    """``model.py`` and ``test_model.py`` for ``derive -o`` (``target`` numpy or scalar); with ``array-api``,
    ``model_xp.py`` and ``test_model_xp.py`` (:mod:`symbackprop.codegen.graph_xp`)."""
    check_target(target)
    if target == "array-api":
        from .graph_xp import graph_xp_outputs

        return graph_xp_outputs(d)
    return {"model.py": graph_model(d, target).encode(), "test_model.py": graph_test(d).encode()}
