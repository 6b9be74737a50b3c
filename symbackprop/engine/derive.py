"""The chain-rule engine: every dE/dp from SymPy differentiation of the graph.

The derivative factors come from SymPy: the local derivatives of each z-sum and
the back-propagation factor dz{l+1}_k/da{l}_j are derived once per layer in the
general index form (:mod:`symbackprop.engine.general`), the activation derivative from
the registry entry, the loss derivative from the loss.  Concrete per-unit
deltas, per-parameter gradients and chain-rule steps are instantiated from
those results on request, so the cost of :func:`derive` grows with the number
of units, not of products of widths.  ``Derivation.gradient(p)`` builds the
closed form (inputs, targets and parameters only) lazily; it is practical for
small nets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, wraps
from typing import Any

import sympy as sp

from ..registry import ops
from ..spec import Network, load
from . import general
from .general import J, K
from .graph import ForwardGraph, symbol

E = sp.Symbol("E", real=True)
"""The per-sample loss, as a name in chain-rule steps."""

PER_WEIGHT_LIMIT = 64
"""Listings (documents, gradients.json/.txt) go parameter by parameter up to this many parameters,
and one entry per layer above it (``per_weight="all"`` lists every parameter)."""

RULES = (
    "chain rule",                    # d f/d v = sum over intermediates u of (d f/d u)(d u/d v)
    "sum rule",                      # the derivative of a sum is the sum of the derivatives
    "sum rule (only one term varies)",  # ... only one term depends on the variable: the others give 0
    "constant factor rule",          # d(c g)/dv = c dg/dv, c free of v
    "product rule",                  # d(g h)/dv, both g and h depend on v
    "quotient rule",                 # d(g/h)/dv, h depends on v
    "derivative of a variable by itself",  # dv/dv = 1
    "definition of the loss",        # E written out
    "definition of the pre-activation",   # z_j = sum_k W_jk a_k + b_j written out
    "definition of the activation",  # a = f(z) written out, or f(z) named a again
    "definition of delta",           # delta_j = dE/dz_j
    "derivative of the loss",        # dE/da by SymPy
    "derivative of the activation",  # da/dz by SymPy
    "derivative of the activation (convenient form)",  # f'(z) written with the output a = f(z)
    "split the sum at k = j",        # sum_k = (k = j term) + sum_{k != j}
    "join the k = j term into the sum",  # the reverse
    "sum of the targets is one",     # sum_k t_k = 1
    "substitution",                  # earlier results put in
    "simplification",                # algebra only: expand, factor, cancel
    "result",                        # the step chain restated from its first lhs
)
"""The closed list of step rules; tests/engine/test_steps.py checks each step's rule applies."""


@dataclass(frozen=True)
class Step:
    """One labelled step ``lhs = rhs`` of a chain-rule derivation."""

    rule: str
    lhs: sp.Expr
    rhs: sp.Expr
    note: str = ""
    where: sp.Expr | None = None  # a condition on the indices, e.g. Ne(k, j); None: always

    def as_dict(self) -> dict[str, str]:
        out = {"rule": self.rule, "lhs": str(self.lhs), "rhs": str(self.rhs), "note": self.note}
        if self.where is not None:
            out["where"] = str(self.where)
        return out


def D(f: sp.Expr, x: sp.Expr) -> sp.Derivative:
    """An unevaluated partial derivative df/dx, for steps."""
    return sp.Derivative(f, x, evaluate=False)


def times(*factors: sp.Expr) -> sp.Expr:
    """An unevaluated product, kept in the order given."""
    return sp.Mul(*factors, evaluate=False)


def signed_product(*factors: sp.Expr) -> sp.Expr:
    """An unevaluated product with the factors' minus signs pulled to the front (prints ``- a b``, not ``+ -a b``)."""
    negative, kept = False, []
    for f in factors:
        if f.could_extract_minus_sign():
            negative, f = not negative, -f
        kept.append(f)
    return sp.Mul(sp.S.NegativeOne, *kept, evaluate=False) if negative else times(*kept)


def _per_instance(method):
    """Memoize a method's results on its instance (no process-wide cache holding derivations alive)."""
    @wraps(method)
    def cached(self, *args):
        memo = self.__dict__.setdefault("_memo", {})
        key = (method.__name__, args)
        if key not in memo:
            memo[key] = method(self, *args)
        return memo[key]

    return cached


def _indexed_to_symbol(expr: sp.Expr) -> sp.Expr:
    """Map ``W2[k, j]`` to ``W2_k_j``, ``a1[j]`` to ``a1_j``, ``x[k]`` to ``x_k``, ... (integer indices)."""
    return expr.xreplace({e: symbol(f"{e.base.label}_{'_'.join(str(int(i)) for i in e.indices)}")
                          for e in expr.atoms(sp.Indexed)})


class Derivation:
    """Backpropagation of one network: deltas, gradients, steps and their verification."""

    def __init__(self, network: Network):
        self.network = network
        self.graph = ForwardGraph(network)
        self.general = general.GeneralForm(network)
        self.L = network.depth
        self.sizes = {general.size(l): n for l, n in enumerate(network.sizes)}
        self.verification = None  # set by derive(verify=True)

    # ------------------------------------------------------------------ the API contract

    @property
    def parameters(self) -> list[sp.Symbol]:
        """W1 row-major, b1, W2, b2, ..."""
        return self.graph.parameters

    @property
    def inputs(self) -> list[sp.Symbol]:
        return self.graph.x

    @property
    def targets(self) -> list[sp.Symbol]:
        return self.graph.t

    @property
    def loss(self) -> sp.Expr:
        """The closed-form per-sample E in inputs, targets and parameters."""
        return self.graph.closed_loss

    @property
    def target_constraint(self) -> str | None:
        """A condition on the targets that the deltas assume, or None."""
        if self.network.loss.targets_sum_to_one:
            return "the targets sum to one (one-hot or a probability vector)"
        return None

    def delta_symbol(self, l: int, j: int) -> sp.Symbol:
        return symbol(f"delta{l}_{j}")

    def delta(self, l: int, j: int) -> sp.Expr:
        """delta{l}_{j} = dE/dz{l}_{j} in compact form: z, a, t, W and delta{l+1} symbols."""
        return self._delta(l, j)

    @_per_instance
    def _delta(self, l: int, j: int) -> sp.Expr:
        self._check_unit(l, j)
        expr = self.layer_delta(l)
        unit = {J: sp.Integer(j)}
        mapping = {e: _indexed_to_symbol(e.xreplace(unit)) for e in expr.atoms(sp.Indexed)}
        return expr.xreplace({**mapping, **unit})  # one pass: unit j and canonical names together

    @_per_instance
    def layer_delta(self, l: int) -> sp.Expr:
        """Layer l's index-form delta at this network's widths, sums written out (j still free)."""
        return self.general.layers[l].delta.subs(self.sizes).doit()

    @_per_instance
    def local(self, p: sp.Symbol) -> sp.Expr:
        """dz{l}_{j}/dp for a parameter p of layer l (instantiated from the general form)."""
        l, j, k = self.graph.layer_of(p)
        form = self.general.layers[l]
        template = form.dz_dW.subs({J: j, K: k}) if k is not None else form.dz_db.subs(J, j)
        return _indexed_to_symbol(template)

    @_per_instance
    def compact_gradient(self, p: sp.Symbol) -> sp.Expr:
        """dE/dp = delta{l}_{j} * dz{l}_{j}/dp, with the delta kept as a name."""
        l, j, _ = self.graph.layer_of(p)
        return self.delta_symbol(l, j) * self.local(p)

    def gradient(self, p: sp.Symbol) -> sp.Expr:
        """dE/dp in closed form (inputs, targets and parameters only); small nets only."""
        l, j, _ = self.graph.layer_of(p)
        return self._closed_delta(l)[j - 1] * self.local(p).xreplace(self._closed_sub)

    def steps(self, p: sp.Symbol) -> list[Step]:
        """The labelled chain-rule steps from dE/dp to its compact result."""
        l, j, k = self.graph.layer_of(p)
        zj = self.graph.z[l][j - 1]
        dj = self.delta_symbol(l, j)
        local = self.local(p)
        term = self.graph.W[l][j - 1][k - 1] * self.graph.a[l - 1][k - 1] if k is not None else p
        steps = [
            Step("chain rule", D(E, p), times(D(E, zj), D(zj, p)),
                 f"p enters E only through z{l}_{j}"),
            Step("sum rule (only one term varies)", D(zj, p), D(term, p),
                 f"of the sum z{l}_{j} = sum_k W{l}_{j}_k a{l-1}_k + b{l}_{j} only this term depends on {p}"),
            Step("constant factor rule", D(term, p), local, f"{local} does not depend on {p}")
            if k is not None else Step("derivative of a variable by itself", D(term, p), local),
            Step("definition of delta", D(E, zj), dj, f"delta{l}_{j} = dE/dz{l}_{j}"),
        ]
        steps.extend(self.delta_steps(l, j))
        steps.append(Step("result", D(E, p), times(dj, local) if local != 1 else dj))
        return steps

    def delta_steps(self, l: int, j: int) -> list[Step]:
        """How delta{l}_{j} follows from the chain rule."""
        g, act = self.graph, self.network.layers[l - 1].activation
        zj, aj, dj = g.z[l][j - 1], g.a[l][j - 1], self.delta_symbol(l, j)
        steps: list[Step] = []
        if l < self.L:
            nxt = [(g.z[l + 1][k], self.delta_symbol(l + 1, k + 1)) for k in range(len(g.z[l + 1]))]
            chain = sp.Add(*(times(D(E, zk), D(zk, aj)) for zk, _ in nxt), evaluate=False)
            steps.append(Step("chain rule", dj, times(D(aj, zj), chain),
                              f"a{l}_{j} feeds every unit of layer {l + 1}"))
            weight = _indexed_to_symbol(self.general.layers[l].dnext_da.subs({J: j, K: 1}))
            steps.append(Step("sum rule (only one term varies)", D(nxt[0][0], aj),
                              D(times(weight, aj), aj),
                              f"only the term with a{l}_{j} of each z{l + 1}_k depends on it"))
            steps.append(Step("constant factor rule", D(times(weight, aj), aj), weight,
                              f"{weight} does not depend on a{l}_{j}"))
            steps.extend(self._activation_steps(act, zj, aj))
            steps.append(Step("result", dj, self.delta(l, j), "the delta recursion"))
            return steps
        if act.vector:
            outs = list(zip(g.a[l], g.z[l]))
            chain = sp.Add(*(times(D(E, ak), D(ak, zj)) for ak, _ in outs), evaluate=False)
            steps.append(Step("chain rule", dj, chain, "softmax couples every output to every z"))
            steps.append(Step("derivative of the loss", D(E, g.a[l][0]), sp.diff(g.loss_def, g.a[l][0])))
            k1 = g.a[l][0]
            steps.append(Step("derivative of the activation", D(k1, zj), self._softmax_jacobian(1, j),
                              "softmax Jacobian da_k/dz_j = a_k (delta_kj - a_j), derived by SymPy"))
        else:
            steps.append(Step("chain rule", dj, times(D(E, aj), D(aj, zj))))
            steps.append(Step("derivative of the loss", D(E, aj), sp.diff(g.loss_def, aj)))
            steps.extend(self._activation_steps(act, zj, aj))
        rule = "simplification"
        if self.network.loss.requires:
            note = "cross-entropy meets its matching output: the delta simplifies to a - t"
        else:
            note = "the factors cancel: the delta simplifies to a - t"
        if self.target_constraint:
            note += f", using that {self.target_constraint}"
        result = self.delta(l, j)
        if not self.simplifies_to_error:
            steps.append(Step("result", dj, result))
            return steps
        # the factors put together, then simplified (softmax: the algebra leaves a_j sum_k t_k - t_j)
        if act.vector:
            jacobian = [times(aj, 1 - aj) if ak == aj else -times(ak, aj) for ak in g.a[l]]
            product = sp.Add(*(signed_product(sp.diff(g.loss_def, ak), jk)
                               for ak, jk in zip(g.a[l], jacobian)), evaluate=False)
        else:
            factors = [f for f in (sp.diff(g.loss_def, aj), act.derivative_at(zj, aj)) if f != 1]
            if len(factors) == 1 and factors[0] == result:  # nothing left to simplify (identity + MSE)
                steps.append(Step("result", dj, result))
                return steps
            product = signed_product(*factors)
        steps.append(Step("substitution", dj, product, "the derivatives above put into the chain rule"
                          + (" (the same for every k)" if act.vector else "")))
        if self.network.loss.targets_sum_to_one:
            tj = g.t[j - 1]
            collected = sp.Add(times(aj, sp.Add(*g.t)), -tj, evaluate=False)
            steps.append(Step(rule, product, collected, note))
            steps.append(Step("sum of the targets is one", collected, result, "sum_k t_k = 1"))
        else:
            steps.append(Step(rule, product, result, note))
        return steps

    def _activation_steps(self, act: ops.Activation, zj, aj) -> list[Step]:
        derived = act.derivative.subs(ops.X, zj)
        convenient = act.derivative_at(zj, aj)
        steps = [Step("derivative of the activation", D(aj, zj), derived, f"{act.title}, differentiated by SymPy")]
        if act.kink:
            steps[-1] = Step(steps[-1].rule, steps[-1].lhs, derived, f"{act.title}; convention: {act.kink}")
        if convenient != derived:
            if act.uses_output:
                steps.append(Step("derivative of the activation (convenient form)", D(aj, zj), convenient,
                                  "the convenient form in terms of the output, proven equal"))
            else:  # a shorter form in z (SiLU)
                steps.append(Step("simplification", derived, convenient, "the textbook form, proven equal"))
        return steps

    @_per_instance
    def _softmax_jacobian(self, k: int, j: int) -> sp.Expr:
        """da{L}_k/dz{L}_j by SymPy, rewritten with the outputs a{L}."""
        g = self.graph
        zs, a_syms = g.z[self.L], g.a[self.L]
        d = sp.diff(g.a_def[self.L][k - 1], zs[j - 1])
        s_sym = sp.Dummy("S", positive=True)
        total = sp.Add(*(sp.exp(z) for z in zs))
        named = {z: a for z, a in zip(zs, a_syms)}

        def output(e: sp.exp) -> sp.Expr:  # exp(c*z_i) -> (a_i S)^c
            c, u = e.args[0].as_coeff_Mul()
            return (named[u] * s_sym) ** c if u in named else e

        d = sp.factor(sp.simplify(d.xreplace({total: s_sym}).replace(lambda e: isinstance(e, sp.exp), output)))
        ak, aj = a_syms[k - 1], a_syms[j - 1]
        textbook = times(aj, 1 - aj) if k == j else -times(ak, aj)  # a_j (1 - a_j), - a_k a_j
        return textbook if sp.expand(textbook - d) == 0 else d

    @cached_property
    def matrix(self):
        """The matrix and batch form (:class:`symbackprop.engine.matrix.MatrixForm`)."""
        from .matrix import MatrixForm

        return MatrixForm(self)

    @cached_property
    def simplifies_to_error(self) -> bool:
        """True when the output delta is exactly a - t (cross-entropy with its matching output)."""
        g = self.graph
        return all(sp.expand(self.delta(self.L, j) - (g.a[self.L][j - 1] - g.t[j - 1])) == 0
                   for j in range(1, len(g.t) + 1))

    # ------------------------------------------------------------------ closed forms

    @cached_property
    def _closed_sub(self) -> dict[sp.Symbol, sp.Expr]:
        return self.graph.closed_substitution()

    @_per_instance
    def _closed_delta(self, l: int) -> list[sp.Expr]:
        sub = dict(self._closed_sub)
        if l < self.L:
            nxt = self._closed_delta(l + 1)
            sub.update({self.delta_symbol(l + 1, k + 1): d for k, d in enumerate(nxt)})
        return [self.delta(l, j).xreplace(sub) for j in range(1, self.network.sizes[l] + 1)]

    def _check_unit(self, l: int, j: int) -> None:
        if not (1 <= l <= self.L and 1 <= j <= self.network.sizes[l]):
            raise IndexError(f"no unit {j} in layer {l} of a {self.network.architecture} network")

    # ------------------------------------------------------------------ summaries

    def lists_every_parameter(self, per_weight: str = "auto") -> bool:
        """Whether listings go parameter by parameter (see :data:`PER_WEIGHT_LIMIT`)."""
        return per_weight == "all" or len(self.parameters) <= PER_WEIGHT_LIMIT

    def representatives(self, l: int) -> list[sp.Symbol]:
        """The parameters that stand for layer ``l`` in per-layer listings: first and last weight, first bias."""
        g = self.graph
        picks = [g.W[l][0][0], g.W[l][-1][-1]] + ([g.b[l][0]] if g.b[l] is not None else [])
        return list(dict.fromkeys(picks))

    def layer_templates(self, l: int) -> dict[str, str]:
        """Layer ``l``'s gradients in index form, with their index ranges (free of widths)."""
        form = self.general.layers[l]
        delta = general.base("delta", l)[J]
        n, m = self.network.sizes[l], self.network.sizes[l - 1]
        out = {"layer": l, "delta": f"delta{l}[j] = {form.delta.subs(self.sizes)}",
               "weight": f"dE/dW{l}[j, k] = {delta * form.dz_dW}", "ranges": f"j = 1..{n}, k = 1..{m}"}
        if form.dz_db is not None:
            out["bias"] = f"dE/db{l}[j] = {delta * form.dz_db}"
        return out

    def as_dict(self, steps: bool = True, per_weight: str = "auto") -> dict[str, Any]:
        """A JSON-ready summary: the gradients (each parameter, or each layer with representatives, see
        :meth:`lists_every_parameter`), their steps, the deltas, the matrix form and the verification."""
        net = self.network
        every = self.lists_every_parameter(per_weight)
        out: dict[str, Any] = {
            "network": {"name": net.name, "architecture": net.architecture, "loss": net.loss.name,
                        "activations": [layer.activation.describe() for layer in net.layers],
                        "bias": [layer.bias for layer in net.layers],
                        "parameters": len(self.parameters)},
            "target_constraint": self.target_constraint,
        }

        def item(p: sp.Symbol) -> dict[str, Any]:
            entry: dict[str, Any] = {"parameter": p.name, "gradient": str(self.compact_gradient(p))}
            if steps:
                entry["steps"] = [s.as_dict() for s in self.steps(p)]
            return entry

        if every:
            out["deltas"] = {str(self.delta_symbol(l, j)): str(self.delta(l, j))
                             for l in range(1, self.L + 1) for j in range(1, net.sizes[l] + 1)}
            out["gradients"] = [item(p) for p in self.parameters]
        else:
            out["listing"] = (f"one entry per layer: {len(self.parameters)} parameters is more than "
                              f"{PER_WEIGHT_LIMIT} (per_weight='all' lists every parameter)")
            out["layers"] = [{**self.layer_templates(l), "representatives": [item(p) for p in self.representatives(l)]}
                             for l in range(1, self.L + 1)]
        form = self.matrix
        out["matrix_form"] = [f"{e.lhs} = {e.rhs}" for e in form.forward() + form.backward()]
        out["batch_form"] = [f"{e.lhs} = {e.rhs}" for e in form.batch()]
        out["update_rules"] = [f"{e.lhs} <- {e.rhs}" for e in form.updates()]
        if self.verification is not None:
            out["verification"] = self.verification.as_dict()
        return out

    def __repr__(self) -> str:
        net, v = self.network, self.verification
        status = ("not verified" if v is None else
                  f"verification {'passed' if v.passed else 'FAILED'} (--verify {v.mode})")
        acts = "/".join(layer.activation.describe() for layer in net.layers)
        return (f"<Derivation {net.name!r}: {net.architecture} {acts}, loss {net.loss.name}, "
                f"{len(self.parameters):,} parameters, {status}>")


def derive(spec: Any, verify: bool | str = True, seed: int = 0, progress=None) -> Derivation:
    """Derive backpropagation for ``spec`` (a path, dict or Network) and verify it.

    ``verify``: ``"auto"`` (or True), ``"full"``, ``"numeric"``, or ``"none"`` (or False);
    see :mod:`symbackprop.engine.verify` for what each tier checks.  ``progress(stage)``, if
    given, is called as each stage starts.
    """
    mode = {True: "auto", False: "none", None: "none"}.get(verify, verify)
    network = load(spec)
    if not isinstance(network, Network):  # a graph of layers (batch norm, dropout, residual, ...)
        from .layergraph import LayerDerivation
        from .layerverify import verify as verify_graph

        graph = LayerDerivation(network)
        if mode != "none":
            graph.verification = verify_graph(graph, seed=seed, mode=mode, progress=progress)
        return graph
    derivation = Derivation(network)
    if mode != "none":
        from .verify import verify as run_verification

        derivation.verification = run_verification(derivation, seed=seed, mode=mode, progress=progress)
    return derivation
