"""The width-independent (general index) form, derived once per layer.

Every quantity is an ``IndexedBase`` over symbolic layer sizes ``n0..nL``:
``z{l}[j] = Sum(W{l}[j, k] * a{l-1}[k], (k, 1, n{l-1})) + b{l}[j]``.  SymPy
differentiates these sums; the ``KroneckerDelta`` and range ``Piecewise`` it
produces are collapsed with :func:`collapse`.  The concrete derivation
instantiates these templates per unit and per weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from ..registry import ops
from ..spec import Network

J, K, I = sp.symbols("j k i", integer=True, positive=True)
P, Q = sp.symbols("p q", integer=True, positive=True)
_SLACK = sp.Symbol("s", integer=True, nonnegative=True)


def size(l: int) -> sp.Symbol:
    """Symbolic width of layer ``l`` (``n0`` is the number of inputs)."""
    return sp.Symbol(f"n{l}", integer=True, positive=True)


def base(kind: str, l: int | None = None) -> sp.IndexedBase:
    """IndexedBase by canonical stem: W, b, z, a, delta (per layer), x and t."""
    if kind == "a" and l == 0:
        return sp.IndexedBase("x", real=True)
    name = kind if l is None else f"{kind}{l}"
    return sp.IndexedBase(name, real=True)


def collapse(expr: sp.Expr, ranges: list[tuple[sp.Symbol, sp.Symbol]]) -> sp.Expr:
    """Replace each range ``Piecewise`` by the branch that holds for indices in ``1..size``."""
    shift = {n: idx + _SLACK for idx, n in ranges}

    def pick(pw: sp.Piecewise) -> sp.Expr:
        for value, cond in pw.args:
            if cond.subs(shift) == sp.true:
                return value
        return pw

    return expr.replace(lambda e: isinstance(e, sp.Piecewise), pick)


def activation_derivative(act: ops.Activation, z: sp.Expr, a: sp.Expr) -> sp.Expr:
    """The convenient f'(z) of an element-wise activation, with y = a."""
    return act.derivative_at(z, a)


@dataclass
class LayerForm:
    """Index-form templates of one layer, all derived by SymPy."""

    l: int
    z: sp.Expr          # z{l}[j]
    dz_dW_raw: sp.Expr  # d z{l}[j] / d W{l}[p, q] before collapsing
    dz_dW: sp.Expr      # at p = j, q = k, collapsed: a{l-1}[k]
    dz_db: sp.Expr      # 1 (or None without bias)
    fprime: sp.Expr | None  # f'(z{l}[j]) (None for softmax)
    dnext_da: sp.Expr | None = None  # d z{l+1}[k] / d a{l}[j]: W{l+1}[k, j]
    delta: sp.Expr | None = None      # delta{l}[j] in index form


class GeneralForm:
    """The general index form of a network's backpropagation.

    Layer templates depend only on the layer's index, activation, bias and (for the
    output layer) the loss, never on widths: :func:`layer_form` derives each once per process.
    """

    def __init__(self, network: Network):
        self.network = network
        self.L = network.depth
        self.layers: dict[int, LayerForm] = {}
        for l in range(self.L, 0, -1):
            layer, output = network.layers[l - 1], l == self.L
            self.layers[l] = layer_form(l, output, layer.activation, layer.bias, network.loss if output else None)


@lru_cache(maxsize=256)
def layer_form(l: int, output: bool, act: ops.Activation, bias: bool, loss: ops.Loss | None) -> LayerForm:
    """Differentiate layer ``l``'s index-form sums with SymPy and collapse the results."""
    W, b, a_prev = base("W", l), base("b", l), base("a", l - 1)
    z = sp.Sum(W[J, K] * a_prev[K], (K, 1, size(l - 1)))
    if bias:
        z = z + b[J]
    raw = sp.diff(z, W[P, Q]).doit()
    dz_dW = collapse(raw.subs({P: J, Q: K}), [(K, size(l - 1)), (J, size(l))])
    dz_db = collapse(sp.diff(z, b[P]).doit().subs(P, J), [(J, size(l))]) if bias else None
    fprime = None if act.vector else activation_derivative(act, base("z", l)[J], base("a", l)[J])
    form = LayerForm(l, z, raw, dz_dW, dz_db, fprime)
    if output:
        form.delta = output_delta(l, act, loss)
    else:
        Wn, a_l = base("W", l + 1), base("a", l)
        z_next = sp.Sum(Wn[K, I] * a_l[I], (I, 1, size(l)))
        form.dnext_da = collapse(sp.diff(z_next, a_l[J]).doit(), [(J, size(l))])
        form.delta = fprime * sp.Sum(form.dnext_da * base("delta", l + 1)[K], (K, 1, size(l + 1)))
    return form


def output_delta(L: int, act: ops.Activation, loss: ops.Loss) -> sp.Expr:
    """delta{L}[j] = dE/dz{L}[j], by SymPy from the index-form loss."""
    a, z, t, m = base("a", L), base("z", L), base("t"), size(L)
    if not act.vector:
        dE_da = collapse(sp.diff(loss.indexed(a, t, K, m), a[J]).doit(), [(J, m)])
        raw = dE_da * activation_derivative(act, z[J], a[J])
        return _shorter(raw, sp.factor(sp.cancel(raw)))
    # softmax: differentiate E(softmax(z)) with respect to z[j], then name a[j] again
    S = sp.Sum(sp.exp(z[I]), (I, 1, m))
    E = loss.scale(m) * sp.Sum(loss.term(sp.exp(z[K]) / S, t[K]), (K, 1, m))
    raw = collapse(sp.diff(E, z[J]).doit(), [(J, m)])
    s_sym = sp.Dummy("S", positive=True)
    named = raw.xreplace({S: s_sym})
    named = named.replace(lambda e: isinstance(e, sp.exp) and isinstance(e.args[0], sp.Indexed)
                          and e.args[0].base == z, lambda e: a[e.args[0].indices[0]] * s_sym)
    named = sp.expand(sp.simplify(named))
    if loss.targets_sum_to_one:
        named = named.xreplace({sp.Sum(t[K], (K, 1, m)): sp.Integer(1)})
    return named


def _shorter(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    return b if sp.count_ops(b) < sp.count_ops(a) else a


def check_widths(network: Network, widths: tuple[int, ...] = (2, 3)) -> list[str]:
    """Show the general form is width-independent: instantiated at each width, every delta
    equals ``sympy.diff`` of the concrete graph's E with respect to that unit's z.

    The templates of ``network`` (derived once) are used for every width; all layers of
    the variant networks get ``width`` units.  Returns the disagreements (empty if none).
    """
    from dataclasses import replace

    from .derive import Derivation
    from .verify import constraint_substitution, symbolic_equal

    once = GeneralForm(network)
    problems = []
    for width in widths:
        variant = replace(network, inputs=width,
                          layers=tuple(replace(layer, units=width) for layer in network.layers))
        d = Derivation(variant)
        d.general = once  # the templates derived once, not re-derived for this width
        sub = constraint_substitution(d)
        g = d.graph
        for l in range(1, d.L + 1):
            E_of_z = _loss_from_layer(g, l)
            z_closed = {z: g.closed_substitution()[z] for z in g.z[l]}
            for j in range(1, width + 1):
                direct = sp.diff(E_of_z, g.z[l][j - 1]).xreplace(z_closed).xreplace(sub)
                general = d._closed_delta(l)[j - 1].xreplace(sub)
                if not symbolic_equal(general, direct):
                    problems.append(f"width {width}: delta{l}_{j} from the general form differs from dE/dz{l}_{j}")
    return problems


def _loss_from_layer(g, l: int) -> sp.Expr:
    """E as a function of the symbols z{l} (the graph run forward from layer l)."""
    acts = list(g.a_def[l])
    for m in range(l + 1, g.L + 1):
        prev = dict(zip(g.a[m - 1], acts))
        zs = [zd.xreplace(prev) for zd in g.z_def[m]]
        acts = [ad.xreplace(dict(zip(g.z[m], zs))) for ad in g.a_def[m]]
    return g.loss_def.xreplace(dict(zip(g.a[g.L], acts)))
