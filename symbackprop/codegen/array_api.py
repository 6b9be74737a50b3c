"""Array API training code (``--target array-api``): ``model_xp.py`` and its test.

The same derivation as the NumPy target (:mod:`symbackprop.codegen.numpy_code`), printed for
any namespace of the Python Array API standard: the generated code takes ``xp``
from its inputs (``array_api_compat.array_namespace``), calls only the standard's
functions, writes into no buffer and updates no array in place (every step
returns new parameters and optimizer state, so ``jax.jit`` can wrap it), and keeps
the dtype and device of its inputs.  Every expression goes through
:class:`XpPrinter`; stable helpers (activations, losses from logits) come from the
tables below, one entry per NumPy registry entry (:data:`symbackprop.registry.ops.NUMPY_ACTIVATIONS`).
"""

from __future__ import annotations

import sympy as sp

from ..engine import general
from ..engine.derive import Derivation
from ..registry import ops
from ..registry.stable import sigmoid, stabilize
from .comments import Comments
from .numpy_code import (
    CodePrinter,
    _common,
    _Names,
    _render,
    backward_unpack,
    generated_test_context,
    split_hidden_delta,
)

XP_ACTIVATIONS = ops.ARRAY_API_ACTIVATIONS
XP_LOSSES_FROM_LOGITS = ops.ARRAY_API_LOSSES_FROM_LOGITS

STANDARD_NAMES = {"arctan": "atan", "arcsin": "asin", "arccos": "acos", "arctanh": "atanh", "arcsinh": "asinh",
                  "arccosh": "acosh", "arctan2": "atan2", "power": "pow", "absolute": "abs", "amax": "max",
                  "amin": "min"}
"""NumPy function names whose Array API standard name differs."""


class XpPrinter(CodePrinter):
    """Array API printer: ``xp.`` prefix and the standard's names; no bool arithmetic.

    Relations print as operators; a factor ``Piecewise`` of numbers (a 0/1 mask, a
    leaky slope) is distributed over the other factors of its product, so that
    ``xp.where`` never gets two Python scalars and no bool array is multiplied; a 0/1 mask
    prints as ``rest * xp.astype(mask, z.dtype)`` (a bool array cast, then multiplied).
    """

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            name = fqn.split(".")[-1]
            return "xp." + STANDARD_NAMES.get(name, name)
        return fqn

    def _print_sigmoid(self, expr):
        return f"sigmoid({self._print(expr.args[0])}, xp)"

    def _print_softplus(self, expr):
        return f"xp.logaddexp(0, {self._print(expr.args[0])})"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        if exp.is_Integer or exp == -1 or exp == sp.Rational(1, 2):
            return super()._print_Pow(expr, rational).replace("np.sqrt(", "xp.sqrt(")
        return f"xp.pow({self._print(base)}, {self._print(exp)})"

    def _print_Relational(self, expr):
        ops_ = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
        return f"({self._print(expr.lhs)} {ops_[expr.rel_op]} {self._print(expr.rhs)})"

    def _print_Max(self, expr):
        return self._fold("xp.maximum", expr.args)

    def _print_Min(self, expr):
        return self._fold("xp.minimum", expr.args)

    def _fold(self, func, args):
        out = self._print(args[0])
        for arg in args[1:]:
            out = f"{func}({out}, {self._print(arg)})"
        return out

    def _print_Piecewise(self, expr):
        if all(value.is_Number for value, _ in expr.args):
            raise ValueError(f"a Piecewise of numbers must be a factor of a product: {expr}")
        value, cond = expr.args[-1]
        if cond != sp.true:
            raise ValueError(f"Piecewise without a default branch: {expr}")
        out = self._print(value)
        for branch, cond in reversed(expr.args[:-1]):
            out = f"xp.where({self._print(cond)}, {self._print(branch)}, {out})"
        return out

    def _print_Mul(self, expr):
        masks = [f for f in expr.args if isinstance(f, sp.Piecewise) and all(v.is_Number for v, _ in f.args)]
        if not masks:
            return super()._print_Mul(expr)
        mask = masks[0]
        rest = sp.Mul(*[f for f in expr.args if f is not mask])
        if len(mask.args) == 2 and mask.args[0][0] == 0 and mask.args[1] == (1, sp.true) \
                and isinstance(mask.args[0][1], sp.core.relational.Relational) \
                and isinstance(mask.args[0][1].lhs, (sp.Symbol, sp.Indexed)):
            # a 0/1 mask (the ReLU derivative): rest * astype(mask) is one fast pass; xp.where
            # with a scalar branch is several times slower on NumPy
            keep = mask.args[0][1].negated
            return f"{self.parenthesize(rest, 50)} * xp.astype({self._print(keep)}, {self._print(keep.lhs)}.dtype)"
        return self._print(sp.Piecewise(*[(value * rest, cond) for value, cond in mask.args]))

    def _print_Sum(self, expr):
        return super()._print_Sum(expr).replace("np.sum(", "xp.sum(")


def xp_printer() -> XpPrinter:
    return XpPrinter(_Names())


def _activation_code(act: ops.Activation, printer: XpPrinter, arg: str) -> tuple[str, set]:
    """The call that applies ``act`` to ``arg`` and the helpers it needs."""
    if act.vector or act.name in XP_ACTIVATIONS:
        extra = "".join(f", {k}={printer.doprint(v)}" for k, v in act.params)
        return f"{act.name}({arg}, xp{extra})", {act.name, *XP_ACTIVATIONS[act.name].needs}
    if act.name == "identity":
        return arg, set()
    expr = stabilize(act.at(sp.Symbol(arg, real=True)))
    return printer.doprint(expr), ({"sigmoid"} if expr.has(sigmoid) else set())


def _helpers(names: set[str]) -> list[str]:
    """Sources of the helpers, dependencies first, in a fixed order."""
    needed = set(names)
    for name in list(needed):
        needed.update(XP_ACTIVATIONS[name].needs if name in XP_ACTIVATIONS else ())
    return [XP_ACTIVATIONS[n].source for n in sorted(needed, key=lambda n: (n != "sigmoid", n))
            if n in XP_ACTIVATIONS]


def _loss_code(d: Derivation) -> tuple[str, str, str | None]:
    """(call on the cache and T, comment, helper source) of the per-sample loss."""
    net = d.network
    fused = XP_LOSSES_FROM_LOGITS.get((net.layers[-1].activation.name, net.loss.name))
    if fused is not None:
        fname = fused.source.split("(")[0].removeprefix("def ")
        return f"{fname}(cache[\"z{d.L}\"], T, xp)", f"{net.loss.title} from the logits (stable)", fused.source
    a, t = general.base("a", d.L), general.base("t")
    expr = net.loss.indexed(a, t, general.K, sp.Integer(net.sizes[-1]))
    text = XpPrinter({str(a.label): f"cache[\"a{d.L}\"]", "t": "T"}).doprint(expr)
    return f"({text})[..., 0]", net.loss.title, None


def xp_context(d: Derivation, notation: str | None = None) -> dict:
    """Statements of the forward and backward pass in Array API form, from the general form; each
    block's comment prints its equation in the document's notation (``notation``, else the spec's)."""
    printer = xp_printer()
    eq = Comments(d, notation).equation
    helpers: set[str] = set()
    net, L = d.network, d.L
    forward, backward = [], []
    prev = "X"
    for l in range(1, L + 1):
        form = d.general.layers[l]
        act = net.layers[l - 1].activation
        bias = f" + b{l}" if form.dz_db is not None else ""
        call, used = _activation_code(act, printer, f"z{l}")
        helpers |= used
        forward.append([f"# z{l} = {prev} W{l}ᵀ{bias}   [{eq('z', l)}]",
                        f"z{l} = {prev} @ W{l}.T{bias}",
                        f"# a{l} = {act.describe()}(z{l})   [{eq('a', l)}]",
                        f"a{l} = {call}"])
        prev = f"a{l}"
    ones_made = False
    for l in range(L, 0, -1):
        form = d.general.layers[l]
        delta = form.delta.subs(d.sizes)
        if l == L:
            why = "the output delta simplifies to a - t" if d.simplifies_to_error \
                else "dE/da times the activation derivative"
            expr = stabilize(delta)
            lines = [f"# delta{l} = scale * dE/dz{l} / batch   [{eq('delta', l)}]  ({why})",
                     f"delta{l} = ({printer.doprint(expr)}) * (scale / batch)"]
        else:
            total, rest = split_hidden_delta(d, l)
            rest = stabilize(rest)
            product = printer.doprint(total)  # "(delta{l+1} @ W{l+1})"
            expr = sp.Symbol(product) * rest
            lines = [f"# delta{l} = (delta{l + 1} W{l + 1}) * f{l}'(z{l})   [{eq('delta', l)}]",
                     f"delta{l} = {printer.doprint(expr)}"]
            helpers |= {"sigmoid"} if rest.has(sigmoid) else set()
        helpers |= {"sigmoid"} if stabilize(delta).has(sigmoid) else set()
        local = printer.doprint(form.dz_dW)
        lines += [f"# dW{l} = delta{l}ᵀ {local}   [{eq('W', l)}]",
                  f"grads[\"W{l}\"] = delta{l}.T @ {local}"]
        if form.dz_db is not None:
            if form.dz_db != 1:
                raise ValueError(f"unexpected bias derivative {form.dz_db}")
            if not ones_made:  # one vector of ones for every layer's batch sum
                lines += [f"ones = xp.ones_like(delta{l}[:, 0])  # batch sums as products: cheaper than xp.sum"]
                ones_made = True
            lines += [f"# db{l} = sum of delta{l} over the batch (ones @ delta{l})   [{eq('b', l)}]",
                      f"grads[\"b{l}\"] = ones @ delta{l}"]
        backward.append(lines)
    loss_call, loss_comment, loss_helper = _loss_code(d)
    unpack = backward_unpack(backward, L)
    ctx = _common(d, notation)
    ctx["target_note"] = ("Array API form: each block prints one equation of the general index form (the "
                          "comment in brackets); the standard's functions only.")
    ctx.update(forward=forward, backward=backward, backward_unpack=unpack, helpers=_helpers(helpers),
               loss_call=loss_call, loss_comment=loss_comment, loss_helper=loss_helper)
    return ctx


def xp_model(d: Derivation, notation: str | None = None) -> str:
    """model_xp.py: Array API training code."""
    return _render("model_xp.py.j2", xp_context(d, notation))


def xp_test(d: Derivation) -> str:
    """test_model_xp.py: finite differences, the derivation's values, training, stability, purity."""
    return _render("test_model_xp.py.j2", generated_test_context(d))
