"""NumPy training code generated from a derivation: a printer and two renderers.

``--target numpy`` prints the general index form of every layer
(:mod:`symbackprop.engine.general`) as batch matrix code: an ``Indexed`` with the unit
index is a whole (batch, units) array, a ``Sum`` over a weight and a delta is a
matrix product.  ``--target scalar`` prints the concrete per-unit deltas
(``Derivation.delta``) after ``sympy.cse`` and the per-weight gradients
(``Derivation.compact_gradient``).  Stable code for activations and fused
losses comes from the registry (:data:`symbackprop.registry.ops.NUMPY_ACTIVATIONS`).
For tiny networks trained with SGD, ``--target numpy`` also prints the scalar target's
per-unit formulas on Python floats (:func:`float_step_context`): ``sgd_step_floats``, which
``train_step`` takes for small batches, where NumPy's per-call overhead dominates.
Generated code imports only NumPy (and the standard library's ``math``).
"""

from __future__ import annotations

import inspect
import json
import re
from argparse import Namespace

import numpy as np
import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter

from .._templates import environment
from ..engine import general, gradcheck
from ..engine.derive import Derivation
from ..errors import SpecError
from ..registry import ops
from ..registry.stable import sigmoid, stability_limit, stability_note, stabilize
from .comments import Comments, name_header

SCALAR_LIMIT = 2000
"""Most parameters the scalar target prints one formula for."""
KINK_ATTEMPTS = 30
"""Fixed points tried for one whose kinked pre-activations all keep 1/8 from the kink (else the widest margin)."""
REFERENCE_ENTRIES = 40
"""Most entries per parameter array embedded as reference data in test_model.py."""


class CodePrinter(NumPyPrinter):
    """NumPy printer for generated code: ``np.`` prefix, ``np.where`` for Piecewise.

    ``names`` maps an ``IndexedBase`` label to an array name; an ``Indexed`` with
    the unit index prints as the whole (batch, units) array, a contraction
    ``Sum(W[k, j] * delta[k], k)`` as ``delta @ W``, any other ``Sum`` over the
    units as ``np.sum(..., axis=-1, keepdims=True)``.
    """

    def __init__(self, names: dict[str, str] | None = None):
        super().__init__({"fully_qualified_modules": False, "allow_unknown_functions": True})
        self.names = names if names is not None else {}

    def _module_format(self, fqn, register=True):
        return "np." + fqn.split(".")[-1] if fqn.startswith("numpy.") else fqn

    def _print_Indexed(self, expr):
        label = str(expr.base.label)
        return self.names.get(label, label)

    def _print_sigmoid(self, expr):
        return f"sigmoid({self._print(expr.args[0])})"

    def _print_softplus(self, expr):
        return f"np.logaddexp(0, {self._print(expr.args[0])})"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        if exp == -1:
            return f"1/{self.parenthesize(base, sp.printing.precedence.PRECEDENCE['Pow'])}"
        if exp == sp.Rational(1, 2):
            return f"np.sqrt({self._print(base)})"
        if exp.is_Integer:
            return f"{self.parenthesize(base, sp.printing.precedence.PRECEDENCE['Pow'])}**{int(exp)}"
        return f"np.power({self._print(base)}, {self._print(exp)})"

    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"

    def _print_Piecewise(self, expr):
        value, cond = expr.args[-1]
        if cond != sp.true:
            raise ValueError(f"Piecewise without a default branch: {expr}")
        args = expr.args[:-1]
        if len(args) == 1 and args[0][0] == 0 and value == 1:
            return f"({self._print(args[0][1].negated)})"  # a 0/1 mask: bool array, keeps the dtype
        out = self._print(value)
        for branch, cond in reversed(args):
            out = f"np.where({self._print(cond)}, {self._print(branch)}, {out})"
        return out

    def _print_Sum(self, expr):
        body, index = expr.function, expr.limits[0][0]
        factors = sp.Mul.make_args(body)
        matrices = [f for f in factors if isinstance(f, sp.Indexed) and len(f.indices) == 2]
        if len(matrices) == 1 and len(factors) == 2:
            matrix = matrices[0]
            vector = factors[0] if factors[1] is matrix else factors[1]
            name = self._print(matrix)
            if matrix.indices[0] == index:
                return f"({self._print(vector)} @ {name})"
            return f"({self._print(vector)} @ {name}.T)"
        return f"np.sum({self._print(body)}, axis=-1, keepdims=True)"


def code_name(label: str) -> str:
    """The array name of an IndexedBase label in generated code."""
    return {"x": "X", "t": "T"}.get(label, label)


class _Names(dict):
    def get(self, key, default=None):  # every label maps to its code name
        return code_name(key)


def array_printer() -> CodePrinter:
    return CodePrinter(_Names())


# ----------------------------------------------------------------------------- shared context


def _activation_code(act: ops.Activation, printer: CodePrinter, arg: str, out: str | None) -> tuple[str, set]:
    """The call that applies ``act`` to ``arg`` and the helpers it needs."""
    if act.vector or act.name in ops.NUMPY_ACTIVATIONS:
        code = ops.NUMPY_ACTIVATIONS[act.name]
        extra = "".join(f", {k}={printer.doprint(v)}" for k, v in act.params)
        target = f", out={out}" if code.out and out else ""
        return f"{act.name}({arg}{extra}{target})", {act.name, *code.needs}
    if act.name == "identity":
        return arg, set()
    z = sp.Symbol(arg, real=True)
    expr = stabilize(act.at(z))
    text = printer.doprint(expr)
    return text, ({"sigmoid"} if expr.has(sigmoid) else set())


def _helpers(names: set[str]) -> list[str]:
    """Sources of the registry helpers, dependencies first, in a fixed order."""
    needed = set(names)
    for name in list(needed):
        needed.update(ops.NUMPY_ACTIVATIONS[name].needs if name in ops.NUMPY_ACTIVATIONS else ())
    order = sorted(needed, key=lambda n: (n != "sigmoid", n))
    return [ops.NUMPY_ACTIVATIONS[n].source for n in order if n in ops.NUMPY_ACTIVATIONS]


def _loss_code(d: Derivation, printer: CodePrinter) -> tuple[str, str, str | None]:
    """(call on Z and Y, comment, helper source) of the per-sample loss."""
    net = d.network
    out_act = net.layers[-1].activation
    fused = ops.NUMPY_LOSSES_FROM_LOGITS.get((out_act.name, net.loss.name))
    if fused is not None:
        fname = fused.source.split("(")[0].removeprefix("def ")
        return f"{fname}(cache[\"z{d.L}\"], T)", f"{net.loss.title} from the logits (stable)", fused.source
    m = net.sizes[-1]
    a, t = general.base("a", d.L), general.base("t")
    expr = net.loss.indexed(a, t, general.K, sp.Integer(m))
    text = CodePrinter({str(a.label): f"cache[\"a{d.L}\"]", "t": "T"}).doprint(expr)
    return f"({text})[..., 0]", net.loss.title, None



def backward_unpack(backward: list[list[str]], L: int) -> list[str]:
    """The ``W{l} = params[...]``, ``z{l}``/``a{l} = cache[...]`` lines that the backward statements use."""
    body = re.sub(r'"[^"]*"', "", "\n".join(line for block in backward for line in block if not line.startswith("#")))
    unpack = []
    for l in range(1, L + 1):
        unpack += [f"{name} = {source}" for name, source in
                   ((f"W{l}", f"params[\"W{l}\"]"), (f"z{l}", f"cache[\"z{l}\"]"), (f"a{l}", f"cache[\"a{l}\"]"))
                   if re.search(rf"\b{name}\b", body)]
    return unpack


def optimizer_context(opt) -> dict:
    """The optimizer's name and hyper-parameters as the model templates print them."""
    return {"optimizer": opt.name, "learning_rate": repr(opt.learning_rate), "momentum": repr(opt.momentum),
            "beta1": repr(opt.beta1), "beta2": repr(opt.beta2), "epsilon": repr(opt.epsilon)}

def parameter_shapes(d: Derivation) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of every parameter array in KEYS order: W{l} (units of l, units of l-1), then b{l} if any."""
    sizes, layers = d.network.sizes, d.network.layers
    return [(f"{kind}{l}", (sizes[l], sizes[l - 1]) if kind == "W" else (sizes[l],))
            for l in range(1, d.L + 1) for kind in ("W", "b") if kind == "W" or layers[l - 1].bias]


def _common(d: Derivation, notation: str | None = None) -> dict:
    net = d.network
    opt = net.optimizer
    sizes = net.sizes
    shapes = parameter_shapes(d)
    transposed, major = transposed_weights(d), feature_major_layers(d)
    return {
        "name": json.dumps(net.name, ensure_ascii=False)[1:-1],  # safe in a docstring and in "..." literals
        "architecture": net.architecture,
        "sizes": sizes,
        "L": d.L,
        "layers": [{"l": l, "bias": net.layers[l - 1].bias, "fan_in": sizes[l - 1], "units": sizes[l],
                    "activation": net.layers[l - 1].activation.describe(),
                    "feature_major": l in major,
                    "a_fortran": l == d.L and _fortran_out(net.layers[l - 1].activation),
                    "init_gain": 2.0 if net.layers[l - 1].activation.name in ("relu", "leaky_relu") else 1.0}
                   for l in range(1, d.L + 1)],
        "keys": [key for key, _ in shapes],
        "shapes": shapes,
        "feature_major_min_units": FEATURE_MAJOR_MIN_UNITS,
        "transposed": "{" + ", ".join(f'"{key}"' for key in transposed) + "}" if transposed else "set()",
        "loss_title": net.loss.title,
        **optimizer_context(opt),
        "problem": _problem(d),
        "epochs": {"xor": 8000, "blobs": 100, "regression": 200}[_problem(d)],
        "batch_size": {"xor": 4, "blobs": 32, "regression": 32}[_problem(d)],
        "target_note": "",
        "stability_note": stability_note(d.network),
        "target_constraint": d.target_constraint,
        "names": name_header(d, notation),
    }


TRANSPOSED_MIN_WEIGHTS = 4096
"""Weight arrays with fewer weights keep the plain layout and ``np.dot`` (see transposed_weights)."""

FEATURE_MAJOR_MIN_UNITS = 512
"""Hidden layers of this many units on keep their z, a and delta feature-major (see feature_major_layers)."""


def feature_major_layers(d: Derivation) -> list[int]:
    """Hidden layers whose ``z``, ``a`` and ``delta`` model.py stores feature-major (Fortran order).

    The arrays keep their (batch, units) shape; only the memory order changes, so that
    OpenBLAS 0.3.31 computes ``z = a Wᵀ`` as ``zᵀ = W aᵀ``.  With 512 units or more the five
    large products of a step then ran 2-7% faster at batch 256 and 15-22% at batch 32 and 64
    (float32, one thread, 784 inputs, 512 to 2048 units, every combination of layouts timed;
    ``benchmarks/gemm_layouts.py``); at 256 units the layouts tied, at 128 units this one was
    about 10% slower.  The output layer stays row-major (its softmax runs along a row).
    """
    sizes = d.network.sizes
    return [l for l in range(1, d.L) if sizes[l] >= FEATURE_MAJOR_MIN_UNITS]


def transposed_weights(d: Derivation) -> list[str]:
    """Weight arrays that model.py stores transposed (the same shape in Fortran order).

    Only arrays of TRANSPOSED_MIN_WEIGHTS or more: for small layers the call, not the kernel,
    costs, and ``np.dot`` has the least overhead.  Of those, as measured with OpenBLAS 0.3.31
    (float32, one thread; ``benchmarks/gemm_layouts.py``):

    * ``W1`` when layer 1 is row-major: ``X @ W1.T`` is then a product of two C-ordered
      matrices, 10-23% faster than with the transposed operand (batch 64 and 256, 784 inputs,
      128 to 1024 units), and ``np.matmul(delta1.T, X, out=dW1)`` into the transposed storage
      was as fast or faster.  Layer 1 has no ``delta @ W1`` product, which this layout slowed
      down by about 30% at 64 x 128 x 784, so hidden layers between row-major ones keep theirs.
    * ``W{l}`` whose input layer ``l - 1`` is feature-major (feature_major_layers): the
      fastest of the layouts timed there, or tied with the plain one (for the output layer's
      three products at 256 x 1024 x 10, 305 against 378 microseconds).
    """
    sizes, major = d.network.sizes, set(feature_major_layers(d))
    return [f"W{l}" for l in range(1, d.L + 1) if sizes[l - 1] * sizes[l] >= TRANSPOSED_MIN_WEIGHTS
            and ((l == 1 and 1 not in major) or l - 1 in major)]


FUSED_MIN_WEIGHTS = 65536
"""Weight arrays of this many weights on get their SGD update inside the gradient's product (see fused_weights)."""


def fused_weights(d: Derivation) -> list[str]:
    """Weight arrays whose SGD update model.py makes inside the product, where SciPy is installed.

    ``sgd_step_blas`` updates ``W -= deltaᵀ a`` with one BLAS call (``?gemm`` with alpha = -1,
    beta = 1, from ``scipy.linalg.blas``), which reads and writes W once; NumPy's ``matmul`` has
    no beta, so the array step writes dW (after OpenBLAS has zeroed it) and then subtracts it,
    two more passes over memory of W's size.  Measured (float32, one thread, OpenBLAS 0.3.31,
    interleaved; fused / matmul-then-subtract of one product, W stored transposed): at batch 256,
    0.89 for 1024 x 1024, 0.90 for 512 x 784, 0.93 for 256 x 784, 1.01 for 256 x 256 and 1.02
    for 128 x 784; at batch 32-64 each of these gained (0.52-0.88).  Whole steps (A/B,
    ``benchmarks/train_step.py``'s networks): 0.89-0.93 at 784-1024-1024-10 and 0.98-1.00 at
    784-256-256-10 (batch 256), 0.97 at 784-128-10 (batch 64, 1.005 at batch 256).  So arrays of
    FUSED_MIN_WEIGHTS or more, and only for SGD; model.py's blas_trial then picks per process.
    """
    if d.network.optimizer.name != "sgd":
        return []
    return [key for key, shape in parameter_shapes(d) if key[0] == "W" and shape[0] * shape[1] >= FUSED_MIN_WEIGHTS]


def _product(a: str, b: str, out: str, fortran: bool) -> str:
    """``a @ b`` into ``out``: ``np.dot`` (least overhead) writes only into C order, ``np.matmul`` into any."""
    return f"np.matmul({a}, {b}, out={out})" if fortran else f"np.dot({a}, {b}, out={out})"


def _problem(d: Derivation) -> str:
    net = d.network
    if net.layers[-1].activation.vector:
        return "blobs"
    if net.inputs == 2 and net.sizes[-1] == 1:
        return "xor"
    return "regression"


def _render(template: str, context: dict) -> str:
    return environment().get_template(template).render(context)


# ----------------------------------------------------------------------------- numpy target


def numpy_context(d: Derivation, notation: str | None = None) -> dict:
    """Statements of the vectorized forward and backward pass, from the general form; each block's
    comment prints its equation in the document's notation (``notation``, else the spec's)."""
    printer = array_printer()
    eq = Comments(d, notation).equation
    helpers: set[str] = set()
    net, L = d.network, d.L
    forward, backward = [], []
    transposed, major = transposed_weights(d), feature_major_layers(d)
    factors = {l: hidden_factor(d, l) for l in range(1, L)}
    in_place = in_place_layers(d, factors)
    prev = "X"
    for l in range(1, L + 1):
        form = d.general.layers[l]
        act = net.layers[l - 1].activation
        bias = f" + b{l}" if form.dz_db is not None else ""
        lines = [f"# z{l} = {prev} W{l}ᵀ{bias}   [{eq('z', l)}]",
                 f"z{l} = {_product(prev, f'W{l}.T', f'ws.z{l}', l in major)}"]
        if form.dz_db is not None:
            lines.append(f"z{l} += b{l}")
        call, used = _activation_code(act, printer, f"z{l}", f"z{l}" if l in in_place else f"ws.a{l}")
        helpers |= used
        note = f"  # over z{l}: the backward pass reads a{l} only" if l in in_place else ""
        lines += [f"# a{l} = {act.describe()}(z{l})   [{eq('a', l)}]", f"a{l} = {call}{note}"]
        forward.append(lines)
        prev = f"a{l}"
    fused = fused_weights(d)
    deltas, updates = [], []
    for l in range(L, 0, -1):
        form = d.general.layers[l]
        delta = form.delta.subs(d.sizes)
        lines = []
        if l == L:
            expr = stabilize(delta)
            why = "the output delta simplifies to a - t" if d.simplifies_to_error \
                else "dE/da times the activation derivative"
            lines += [f"# delta{l} = scale * dE/dz{l} / batch   [{eq('delta', l)}]  ({why})",
                      f"delta{l} = np.multiply({printer.doprint(expr)}, scale / batch, out=ws.delta{l})"]
        else:
            total, rest, from_output = factors[l]
            rest = stabilize(rest)
            matmul = printer.doprint(total)[1:-1].split(" @ ")
            lines += [f"# delta{l} = (delta{l + 1} W{l + 1}) * f{l}'(z{l})   [{eq('delta', l)}]"]
            if from_output:
                lines.append(f"#   f{l}'(z{l}) read from a{l}: {net.layers[l - 1].activation.describe()} keeps the sign, "
                             f"so a{l} > 0 exactly where z{l} > 0")
            lines.append(f"delta{l} = {_product(matmul[0], matmul[1], f'ws.delta{l}', l in major)}")
            if rest != 1:
                lines.append(f"delta{l} *= {printer.doprint(rest)}")
            helpers |= {"sigmoid"} if rest.has(sigmoid) else set()
        helpers |= {"sigmoid"} if delta.has(sigmoid) or stabilize(delta).has(sigmoid) else set()
        deltas.append(list(lines))
        local = printer.doprint(form.dz_dW)
        stored_transposed = f"W{l}" in transposed
        note = f"  # matmul: W{l} is stored transposed" if stored_transposed else ""
        product = _product(f"delta{l}.T", local, f"grads[\"W{l}\"]", stored_transposed)
        lines += [f"# dW{l} = delta{l}ᵀ {local}   [{eq('W', l)}]", f"dW{l} = grads[\"W{l}\"]",
                  _product(f"delta{l}.T", local, f"dW{l}", stored_transposed) + note]
        update = [f"# W{l} -= delta{l}ᵀ {local}   [{eq('W', l)}]"]
        update += ([f"gemm_update(params[\"W{l}\"], delta{l}.T, {local})  # inside the product: gemm, beta = 1"]
                   if f"W{l}" in fused else [f"params[\"W{l}\"] -= {product}"])
        if form.dz_db is not None:
            if form.dz_db != 1:
                raise ValueError(f"unexpected bias derivative {form.dz_db}")
            lines += [f"# db{l} = sum of delta{l} over the batch (ones @ delta{l})   [{eq('b', l)}]",
                      f"db{l} = grads[\"b{l}\"]", f"np.dot(ws.ones, delta{l}, out=db{l})"]
            update += [f"# b{l} -= sum of delta{l} over the batch   [{eq('b', l)}]",
                       f"params[\"b{l}\"] -= np.dot(ws.ones, delta{l}, out=grads[\"b{l}\"])"]
        backward.append(lines)
        updates.append(update)
    loss_call, loss_comment, loss_helper = _loss_code(d, printer)
    unpack = backward_unpack(backward, L)
    ctx = _common(d, notation)
    ctx["target_note"] = ("Vectorized matrix form: each block prints one equation of the general "
                          "index form (the comment in brackets).")
    ctx.update(forward=forward, backward=backward, backward_unpack=unpack, helpers=_helpers(helpers),
               loss_call=loss_call, loss_comment=loss_comment, loss_helper=loss_helper,
               out_layers=[l for l in range(1, L + 1)
                           if _writes_into(net.layers[l - 1].activation) and l not in in_place],
               in_place=in_place,
               float_step=float_step_context(d, notation),
               fused=fused and {"weights": fused, "min_weights": FUSED_MIN_WEIGHTS, "deltas": deltas,
                                "updates": updates, "unpack": backward_unpack(deltas + updates, L)})
    return ctx


def split_hidden_delta(d: Derivation, l: int) -> tuple[sp.Sum, sp.Expr]:
    """Hidden layer l's delta as (the sum over layer l + 1, which prints as a matrix product, the other
    factor f_l'(z_l))."""
    delta = d.general.layers[l].delta.subs(d.sizes)
    sums = [f for f in sp.Mul.make_args(delta) if isinstance(f, sp.Sum)]
    if len(sums) != 1:
        raise ValueError(f"unexpected hidden delta form {delta}")
    return sums[0], delta / sums[0]


def hidden_factor(d: Derivation, l: int) -> tuple[sp.Expr, sp.Expr, bool]:
    """split_hidden_delta and whether the factor was rewritten to read a_l.  Where the activation could
    write a over z (its registry code takes ``out``), a condition z_l <= 0 or z_l > 0 in the factor
    becomes the same condition on a_l if the activation keeps the sign (``Activation.keeps_sign``;
    ReLU: a > 0 exactly where z > 0)."""
    total, rest = split_hidden_delta(d, l)
    z, a = general.base("z", l), general.base("a", l)

    def on_z(e) -> bool:
        return (isinstance(e, (sp.LessThan, sp.StrictGreaterThan)) and e.rhs == 0
                and isinstance(e.lhs, sp.Indexed) and e.lhs.base == z)

    act = d.network.layers[l - 1].activation
    if _writes_into(act) and rest.find(on_z) and act.keeps_sign:
        return total, rest.replace(on_z, lambda e: e.func(a[e.lhs.indices], 0)), True
    return total, rest, False


def in_place_layers(d: Derivation, factors: dict | None = None) -> list[int]:
    """Hidden layers whose forward pass writes a{l} over z{l} (model.py keeps no separate z{l}).

    Where the activation writes into a buffer and the backward pass reads a{l} only (ReLU, with
    its mask read from a{l}: hidden_factor; sigmoid and tanh, whose derivatives are written with
    a{l}), z{l} is dead once a{l} is computed.  One buffer per layer instead of two: measured
    (float32, one thread, interleaved A/B of whole SGD steps, ``benchmarks/train_step.py``'s
    networks), 0.90-0.93x the step before at 784-128-10, batch 64, and 0.97-0.98x at
    784-256-256-10, batch 256; at 784-1024-1024-10 (its BLAS step) 0.97-1.05x, a tie within noise.
    """
    factors = factors if factors is not None else {l: hidden_factor(d, l) for l in range(1, d.L)}
    return [l for l, (_, rest, _) in factors.items()
            if _writes_into(d.network.layers[l - 1].activation) and not rest.has(general.base("z", l))]


def _fortran_out(act: ops.Activation) -> bool:
    """Whether the activation's registry code is faster into a Fortran-ordered out (softmax: the reductions
    over the units run on the transpose); model.py then allocates the output layer's a that way."""
    return _writes_into(act) and ops.NUMPY_ACTIVATIONS[act.name].fortran_out


def _writes_into(act: ops.Activation) -> bool:
    code = ops.NUMPY_ACTIVATIONS.get(act.name)
    return code is not None and code.out


def numpy_model(d: Derivation, notation: str | None = None) -> str:
    """model.py, vectorized matrix form."""
    return _render("model.py.j2", numpy_context(d, notation))


# ----------------------------------------------------------------------------- scalar target


def unit_forward(d: Derivation, printer, activation_lines) -> list[list[str]]:
    """Per layer, the per-unit forward statements: ``z{l}_j = W{l}_j_1*a{l-1}_1 + ... + b{l}_j`` for every
    unit, then ``activation_lines(l, activation)`` (the lines that set the a{l}_j)."""
    g = d.graph
    return [[f"{z.name} = {printer.doprint(zd)}" for z, zd in zip(g.z[l], g.z_def[l])]
            + activation_lines(l, d.network.layers[l - 1].activation) for l in range(1, d.L + 1)]


def unit_backward(d: Derivation, printer, assign: str = "=") -> tuple[list[tuple[int, list[str]]], list[sp.Expr]]:
    """Per layer from the output, (l, statements): the per-unit deltas (stabilized, after ``sympy.cse``
    with shared subexpressions u{l}_i) and one ``d{p} {assign} delta * dz/dp`` per parameter; and the
    stabilized deltas (for the helpers they call)."""
    g, blocks, every = d.graph, [], []
    for l in range(d.L, 0, -1):
        deltas = [stabilize(d.delta(l, j)) for j in range(1, d.network.sizes[l] + 1)]
        every += deltas
        shared, reduced = sp.cse(deltas, symbols=sp.numbered_symbols(f"u{l}_"), optimizations=None)
        lines = [f"{s} = {printer.doprint(e)}" for s, e in shared]
        lines += [f"{d.delta_symbol(l, j).name} = {printer.doprint(e)}" for j, e in enumerate(reduced, start=1)]
        lines += [f"d{p.name} {assign} {printer.doprint(d.compact_gradient(p))}"
                  for p in d.parameters if g.layer_of(p)[0] == l]
        blocks.append((l, lines))
    return blocks, every


def scalar_context(d: Derivation, notation: str | None = None) -> dict:
    """Per-unit forward pass, per-unit deltas after ``sympy.cse`` and per-weight gradients."""
    net, g, L = d.network, d.graph, d.L
    if len(d.parameters) > SCALAR_LIMIT:
        raise SpecError("layers", f"the network has {len(d.parameters)} parameters, too many for "
                        f"--target scalar (at most {SCALAR_LIMIT})", "use --target numpy")
    printer = CodePrinter()
    helpers: set[str] = set()
    unpack = [f"{p.name} = params[\"{p.name.split('_')[0]}\"][{', '.join(str(int(i) - 1) for i in p.name.split('_')[1:])}]"
              for p in d.parameters]
    inputs = [f"{x.name} = X[..., {i}]" for i, x in enumerate(g.x)]
    targets = [f"{t.name} = T[..., {i}]" for i, t in enumerate(g.t)]

    def activation_lines(l: int, act: ops.Activation) -> list[str]:
        if act.vector:
            helpers.add("softmax")
            return [f"a{l} = softmax(np.stack([{', '.join(z.name for z in g.z[l])}], axis=-1))",
                    *(f"{a.name} = a{l}[..., {j}]" for j, a in enumerate(g.a[l]))]
        lines = []
        for z, a in zip(g.z[l], g.a[l]):
            call, used = _activation_code(act, printer, z.name, None)
            helpers.update(used)
            lines.append(f"{a.name} = {call}")
        return lines

    forward = unit_forward(d, printer, activation_lines)
    backward, deltas = unit_backward(d, printer)
    helpers |= {"sigmoid"} if any(e.has(sigmoid) for e in deltas) else set()
    grads = {}
    for key, shape in parameter_shapes(d):
        if key[0] == "W":
            grads[key] = [[f"d{key}_{j}_{k}" for k in range(1, shape[1] + 1)] for j in range(1, shape[0] + 1)]
        else:
            grads[key] = [f"d{key}_{j}" for j in range(1, shape[0] + 1)]
    loss_call, loss_comment, loss_helper = _loss_code(d, printer)
    cache_names = [s.name for l in range(1, L + 1) for s in (*g.z[l], *g.a[l])]
    body = "\n".join(line for _, block in backward for line in block)
    candidates = unpack + [f"{n} = cache[\"{n}\"]" for n in cache_names] + inputs + targets
    backward_unpack = [line for line in candidates if re.search(rf"\b{line.split(' = ')[0]}\b", body)]
    eq = Comments(d, notation).equation
    forward_comments = [f"{eq('z', l)}, {eq('a', l)}" for l in range(1, L + 1)]
    ctx = _common(d, notation)
    ctx["target_note"] = ("Scalar form: one formula per weight, after common-subexpression "
                          "elimination; every formula works on floats and on arrays (a batch).")
    ctx.update(unpack=unpack, inputs=inputs, targets=targets, scalar_forward=forward, forward_comments=forward_comments, scalar_backward=backward,
               grads=grads, helpers=_helpers(helpers | {"softmax"} if net.layers[-1].activation.vector
                                              else helpers),
               loss_call=loss_call, loss_comment=loss_comment, loss_helper=loss_helper,
               stacked=[(l, [z.name for z in g.z[l]], [a.name for a in g.a[l]]) for l in range(1, L + 1)],
               cache_names=cache_names, backward_unpack=backward_unpack, float_step=None, fused=None)
    return ctx


def scalar_model(d: Derivation, notation: str | None = None) -> str:
    """model.py with one formula per weight."""
    return _render("model_scalar.py.j2", scalar_context(d, notation))


# ----------------------------------------------------------------------------- float step (numpy target)

FLOAT_STEP_LIMIT = 150
"""train_step takes sgd_step_floats while rows x parameters <= this.

Measured (float32, one core, interleaved, best of 150 x 20 steps; float step / array step):
2-3-1 (13 parameters) 0.21 at batch 1, 0.44 at 4, 0.71 at 8, 0.96 at 12, 1.20 at 16; 4-8-3
with softmax (67) 0.60 at batch 1, 0.82 at 2, 1.03 at 3, 3.6 at 16.  The float step costs
about 85 ns per row and parameter, the array step about 20 µs whatever the size here: the two
cross near 160 to 200; 150 keeps a margin."""


class FloatPrinter(PythonCodePrinter):
    """Printer for the float step: Python floats and the ``math`` module (``math.exp``), never NumPy.

    ``sigmoid`` and ``softplus`` print as calls of the stable float helpers of the registry
    (:data:`symbackprop.registry.ops.FLOAT_ACTIVATIONS`), recorded in ``used``; a 0/1
    Piecewise mask prints as its condition (a bool, as :class:`CodePrinter` prints it); a power
    with an exponent other than an integer or 1/2 as ``math.pow``, which raises on a negative
    base where ``**`` would return a complex number.  An unknown function raises (strict).
    """

    def __init__(self):
        super().__init__({"strict": True})
        self.used: set[str] = set()

    def helper(self, name: str, args: str) -> str:
        self.used.add(name)
        return f"{name}_float({args})"

    def _print_sigmoid(self, expr):
        return self.helper("sigmoid", self._print(expr.args[0]))

    def _print_softplus(self, expr):
        return self.helper("softplus", self._print(expr.args[0]))

    def _print_Piecewise(self, expr):
        args = expr.args
        if len(args) == 2 and args[0][0] == 0 and args[1][0] == 1 and args[1][1] == sp.true:
            return self._print(args[0][1].negated)  # printed in parentheses
        return super()._print_Piecewise(expr)

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        if exp.is_Integer or abs(exp) == sp.Rational(1, 2):
            return super()._print_Pow(expr, rational)
        return f"math.pow({self._print(base)}, {self._print(exp)})"


class _NoFloatForm(Exception):
    """An activation of the network has no float form: no float step."""


def _float_activation_lines(d: Derivation, printer: FloatPrinter):
    """activation_lines for :func:`unit_forward` on floats: the registry's float helpers, a custom formula printed."""
    g = d.graph

    def lines(l: int, act: ops.Activation) -> list[str]:
        if act.vector:
            names = ", ".join(a.name for a in g.a[l]) + ("," if len(g.a[l]) == 1 else "")
            return [f"{names} = {printer.helper(act.name, ', '.join(z.name for z in g.z[l]))}"]
        out = []
        for z, a in zip(g.z[l], g.a[l]):
            if act.name == "identity":
                value = z.name
            elif act.name in ops.FLOAT_ACTIVATIONS:
                value = printer.helper(act.name, z.name + "".join(f", {k}={printer.doprint(v)}" for k, v in act.params))
            elif act.name == "custom":
                try:
                    value = printer.doprint(stabilize(act.at(sp.Symbol(z.name, real=True))))
                except PrintMethodNotImplementedError:
                    raise _NoFloatForm(act.describe()) from None
            else:
                raise _NoFloatForm(act.describe())
            out.append(f"{a.name} = {value}")
        return out

    return lines


def _wrapped(head: str, items: list[str], tail: str, width: int = 100) -> list[str]:
    """``head + ", ".join(items) + tail`` as lines of about ``width`` characters, continuations aligned after head
    (a tuple of one item gets its comma)."""
    lines, line = [], head
    for i, item in enumerate(items):
        piece = item + (", " if i < len(items) - 1 else ("," if len(items) == 1 and head.endswith("(") else "") + tail)
        if len(line) + len(piece) > width and line.strip() not in ("", head.strip()):
            lines.append(line.rstrip())
            line = " " * len(head)
        line += piece
    return lines + [line]


def float_step_context(d: Derivation, notation: str | None = None) -> dict | None:
    """``sgd_step_floats`` of model.py, or None where the network gets none.

    The fast path of the SGD step for tiny networks and batches: NumPy spends about a microsecond
    per call on arrays of a few entries, and the array step makes some 25 calls, so that Python
    floats run the per-unit formulas of ``--target scalar`` (:func:`unit_forward`,
    :func:`unit_backward`, printed by :class:`FloatPrinter`) faster.  Emitted for SGD when
    rows x parameters <= FLOAT_STEP_LIMIT holds for one row, every activation has a float form (the
    registry's, or a custom formula that prints with ``math`` and whose form is finite up to
    |z| = 1e4) and the flat layout is the plain one (no transposed weights).
    """
    net, g = d.network, d.graph
    n = len(d.parameters)
    if net.optimizer.name != "sgd" or n > FLOAT_STEP_LIMIT or transposed_weights(d) or stability_note(net):
        return None
    printer = FloatPrinter()
    try:
        forward = unit_forward(d, printer, _float_activation_lines(d, printer))
        backward, _ = unit_backward(d, printer, "+=")
    except _NoFloatForm:
        return None
    order = []  # init_params' flat vector: KEYS order, each W row by row
    for key, shape in parameter_shapes(d):
        order += [f"{key}_{j}_{k}" for j in range(1, shape[0] + 1) for k in range(1, shape[1] + 1)] \
            if key[0] == "W" else [f"{key}_{j}" for j in range(1, shape[0] + 1)]
    if sorted(order) != sorted(p.name for p in d.parameters):
        raise ValueError(f"parameters {[p.name for p in d.parameters]} do not match the flat layout {order}")
    needed = set(printer.used)
    for name in list(needed):
        needed.update(ops.FLOAT_ACTIVATIONS[name].needs)
    eq = Comments(d, notation).equation
    return {
        "rows": FLOAT_STEP_LIMIT // n,
        "limit": FLOAT_STEP_LIMIT,
        "parameters": n,
        "read": _wrapped("(", order, ") = theta.tolist()"),
        "zero": _wrapped("(", [f"d{p}" for p in order], f") = [0.0] * {n}"),
        "loop": _wrapped("for (", [x.name for x in g.x],
                         f"), ({', '.join(t.name for t in g.t)}{',' if len(g.t) == 1 else ''}) "
                         "in zip(X.tolist(), T.tolist()):"),
        "forward": [(f"{eq('z', l)}, {eq('a', l)}", block) for l, block in enumerate(forward, start=1)],
        "backward": backward,
        "write": _wrapped("theta[:] = [", [f"{p} - rate*d{p}" for p in order], "]"),
        "helpers": [ops.FLOAT_ACTIVATIONS[name].source for name in sorted(needed, key=lambda n: (n != "sigmoid", n))],
    }


# ----------------------------------------------------------------------------- test_model.py


def fixed_point(shapes: dict, inputs: int, outputs: int, target_kind: str, attempt: int = 0, batch: int = 3):
    """A fixed point with dyadic values (exact in float32 and float64): params, X, T.

    Values come from an integer hash of each entry's position, not from a random
    generator, so that a generated test rebuilds the same point from a few numbers.
    """
    def ints(n: int, salt: int, lo: int, hi: int) -> np.ndarray:
        i = np.arange(n, dtype=np.uint64) + np.uint64(1 + 7919 * salt + 104729 * attempt)
        h = (i * np.uint64(2654435761)) % np.uint64(4294967291)
        h = (h ^ (h >> np.uint64(13))) * np.uint64(40503) % np.uint64(4294967291)
        return lo + (h % np.uint64(hi - lo + 1)).astype(np.int64)

    params = {}
    for salt, (key, shape) in enumerate(shapes.items(), start=1):
        n = int(np.prod(shape))
        if key.startswith("W"):
            params[key] = (np.round(ints(n, salt, -48, 48) / 32 / np.sqrt(shape[1]) * 256) / 256).reshape(shape)
        else:
            params[key] = ints(n, salt, -16, 16).reshape(shape) / 32
    X = (ints(batch * inputs, 0, -64, 64) / 32).reshape(batch, inputs)
    if target_kind == "simplex":
        raw = ints(batch * outputs, 99, 1, 8).reshape(batch, outputs).astype(float)
        T = raw / raw.sum(axis=1, keepdims=True)
    elif target_kind == "unit":
        T = (ints(batch * outputs, 99, 2, 30) / 32).reshape(batch, outputs)
    else:
        T = (ints(batch * outputs, 99, -32, 32) / 32).reshape(batch, outputs)
    return params, X, T


def reference_point(d: Derivation, batch: int = 3):
    """The fixed point of ``d``'s generated test and its attempt number: (params, X, T), attempt.

    Points where a pre-activation of a kinked activation lies within 1/8 of its
    kink are skipped, so that finite differences are meaningful there.
    """
    from ..engine.numeric import NumericNetwork

    numeric = NumericNetwork(d.network)
    net = d.network
    kinked = [l for l, layer in enumerate(net.layers, start=1) if layer.activation.kink]
    best = (-1.0, 0)
    for attempt in range(KINK_ATTEMPTS):
        params, X, _ = fixed_point(numeric.shapes(), net.inputs, net.sizes[-1], net.loss.target_kind, attempt, batch)
        margin = min((np.min(np.abs(numeric.forward(params, x)[0][l])) for x in X for l in kinked), default=np.inf)
        best = max(best, (margin, -attempt))
        if margin >= 0.125:
            break
    attempt = -best[1]
    return fixed_point(numeric.shapes(), net.inputs, net.sizes[-1], net.loss.target_kind, attempt, batch), attempt


def symbolic_gradients(d: Derivation, params: dict, X: np.ndarray, T: np.ndarray, entries: dict | None = None,
                       digits: int = 30) -> dict:
    """Batch-mean dE/dp from the derivation's templates, in ``digits``-digit arithmetic.

    The index-form delta and local-derivative templates of every layer (the
    derivation itself, before any printing) are evaluated with mpmath at every
    unit, on a forward pass in the same precision (exact for the first layer's
    dyadic sums).  ``entries`` (key -> list of indices) limits the result to those
    entries.
    """
    import mpmath

    net = d.network
    wanted = entries or {key: list(np.ndindex(*value.shape)) for key, value in params.items()}
    total = {key: {tuple(i): mpmath.mpf(0) for i in idx} for key, idx in wanted.items()}
    with mpmath.workdps(digits):
        mp = np.vectorize(lambda v: mpmath.mpf(float(v)), otypes=[object])
        weights = {l: mp(params[f"W{l}"]) for l in range(1, d.L + 1)}
        deltas = {}
        for l in range(d.L, 0, -1):
            template = d.general.layers[l].delta.subs(d.sizes)
            bases = sorted({e.base for e in template.atoms(sp.Indexed)}, key=str)
            deltas[l] = ([str(b.label) for b in bases], sp.lambdify([*bases, general.J], template, modules="mpmath"))
        locals_ = {}
        for l in range(1, d.L + 1):
            form = d.general.layers[l]
            locals_[l] = (sp.lambdify([general.base("a", l - 1), general.J, general.K], form.dz_dW, modules="mpmath"),
                          None if form.dz_db is None else sp.lambdify([general.J], form.dz_db, modules="mpmath"))
        acts = {l: sp.lambdify([ops.X], layer.activation.expr, modules="mpmath")
                for l, layer in enumerate(net.layers, start=1) if not layer.activation.vector}
        for x_row, t_row in zip(X, T):
            arrays = {"x": _padded_mp(mp(x_row)), "t": _padded_mp(mp(t_row))}
            prev = list(mp(x_row))
            for l in range(1, d.L + 1):
                b = params.get(f"b{l}")
                exact = _dyadic_product(params[f"W{l}"], x_row) if l == 1 else None
                z = [(exact[j] if exact is not None else mpmath.fsum(w * a for w, a in zip(weights[l][j], prev)))
                     + (mpmath.mpf(float(b[j])) if b is not None else 0) for j in range(net.sizes[l])]
                if l in acts:
                    a = [acts[l](v) for v in z]
                else:  # softmax
                    top = max(z)
                    e = [mpmath.exp(v - top) for v in z]
                    a = [v / mpmath.fsum(e) for v in e]
                arrays.update({f"z{l}": _padded_mp(z), f"a{l}": _padded_mp(a), f"W{l}": _padded_mp(weights[l])})
                prev = a
            for l in range(d.L, 0, -1):
                names, fn = deltas[l]
                values = [fn(*(arrays[n] for n in names), j) for j in range(1, net.sizes[l] + 1)]
                arrays[f"delta{l}"] = _padded_mp(values)
            for key, idx in total.items():
                l = int(key[1:])
                delta, prev_a = arrays[f"delta{l}"], arrays["x" if l == 1 else f"a{l - 1}"]
                w_local, b_local = locals_[l]
                for index in idx:
                    j = index[0] + 1
                    idx[index] += delta[j] * (w_local(prev_a, j, index[1] + 1) if key[0] == "W" else b_local(j))
    return {key: {index: float(value / len(X)) for index, value in idx.items()} for key, idx in total.items()}


def _padded_mp(values) -> np.ndarray:
    """An object array of mpmath numbers, padded so that 1-based indices address the values."""
    arr = np.asarray(values, dtype=object)
    return np.pad(arr, [(1, 0)] * arr.ndim, constant_values=None)


def _dyadic_product(W: np.ndarray, x: np.ndarray, scale: int = 1 << 12):
    """``W @ x`` exactly (as mpmath numbers) when every entry is a multiple of 1/scale, else None."""
    import mpmath

    Wi, xi = np.asarray(W) * scale, np.asarray(x) * scale
    if not (np.all(Wi == np.round(Wi)) and np.all(xi == np.round(xi))) or np.abs(Wi).max(initial=0) > 2**20:
        return None
    total = Wi.astype(np.int64) @ xi.astype(np.int64)  # |entries| < 2**20 each: no overflow for 2**23 terms
    return [mpmath.mpf(int(v)) / scale**2 for v in total]


def _entries(shape: tuple[int, ...], rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Every entry of a small array; of a larger one a sample that includes both corners."""
    everything = list(np.ndindex(*shape))
    if len(everything) <= REFERENCE_ENTRIES:
        return everything
    chosen = {0, len(everything) - 1, *rng.choice(len(everything), size=REFERENCE_ENTRIES - 2, replace=False)}
    return [everything[i] for i in sorted(chosen)][:REFERENCE_ENTRIES]


def generated_test_context(d: Derivation) -> dict:
    (params, X, T), attempt = reference_point(d)
    rng = np.random.default_rng(7)
    sampled = {key: _entries(value.shape, rng) for key, value in params.items()}
    ref = symbolic_gradients(d, params, X, T, sampled)
    ctx = _common(d)
    net = d.network
    ctx.update(
        fixed_point_source=inspect.getsource(fixed_point),
        point_call=(f"fixed_point({ {k: v.shape for k, v in params.items()} !r}, {net.inputs}, {net.sizes[-1]}, "
                    f"{net.loss.target_kind!r}, attempt={attempt}, batch={len(X)})"),
        batch=len(X),
        reference={k: [(list(i), repr(ref[k][tuple(i)])) for i in sampled[k]] for k in params},
        gradcheck_source=gradcheck_source(),
        reduction=_reduction(d),
        stability_scales=repr(_stability_scales(d)),
        stability_limit=_fmt_limit(stability_limit(d.network)),
        fd_entries=REFERENCE_ENTRIES,
    )
    return ctx


_BOUNDED = ("unit", "open_pm1", "simplex")


def _fmt_limit(value: float) -> str:
    return f"{value:.4g}"


def _stability_scales(d: Derivation) -> list[float]:
    """Weight magnitude per layer so that |z| reaches the stability limit with all-ones inputs."""
    layers, sizes = d.network.layers, d.network.sizes
    limit = stability_limit(d.network)
    return [(limit if l == 1 or layers[l - 2].activation.output_range in _BOUNDED else 1.0) / sizes[l - 1]
            for l in range(1, d.L + 1)]


def _reduction(d: Derivation) -> int:
    """Factor by which the generated test requires training to reduce the loss."""
    return 2


def gradcheck_source() -> str:
    """The finite-difference checker's source, embedded in generated tests."""
    parts = [inspect.getsource(gradcheck.GradientCheckError), inspect.getsource(gradcheck.central_difference),
             inspect.getsource(gradcheck.check_gradients)]
    return "\n\n".join(p.rstrip() for p in parts)


def generated_test(d: Derivation) -> str:
    """test_model.py: finite differences, reference values from the derivation, training."""
    return _render("test_model.py.j2", generated_test_context(d))


# ----------------------------------------------------------------------------- CLI writer


def code_names(args: Namespace) -> tuple[str, ...]:
    """The files :func:`code_outputs` writes."""
    if (getattr(args, "target", "numpy") or "numpy") == "array-api":
        return ("model_xp.py", "test_model_xp.py")
    return ("model.py", "test_model.py")


def code_precheck(args: Namespace) -> None:
    """Before any work: refuse a target that ``args.network`` (the loaded spec, when set) has no code for."""
    from ..spec.graph import GraphNetwork

    if isinstance(getattr(args, "network", None), GraphNetwork):
        from .graph_code import check_target

        check_target(getattr(args, "target", "numpy") or "numpy")


def code_outputs(d: Derivation, args: Namespace) -> dict[str, bytes]:
    """``model.py`` (``args.target``: numpy or scalar) and ``test_model.py`` for ``derive -o``;
    with ``array-api``, ``model_xp.py`` and ``test_model_xp.py`` (:mod:`symbackprop.codegen.array_api`)."""
    target = getattr(args, "target", "numpy") or "numpy"
    from ..engine.layergraph import LayerDerivation

    if isinstance(d, LayerDerivation):  # a graph of layers (batchnorm, dropout, ...): its own generator
        from .graph_code import graph_outputs

        return graph_outputs(d, target)
    notation = getattr(args, "notation", None)
    if target == "array-api":
        from .array_api import xp_model, xp_test

        return {"model_xp.py": xp_model(d, notation).encode(), "test_model_xp.py": xp_test(d).encode()}
    model = scalar_model(d, notation) if target == "scalar" else numpy_model(d, notation)
    return {"model.py": model.encode(), "test_model.py": generated_test(d).encode()}
