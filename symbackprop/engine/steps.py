"""The general index-form derivations, every algebra step named (for the documents' derivations).

:func:`general_steps` returns, per network, the labelled steps of

* ``"output_delta"``: delta^(L)_j = dE/dz^(L)_j for the network's loss and output activation
  (softmax: the full Jacobian, cases k = j and k != j, the split sum, and for cross-entropy
  sum_k t_k = 1, down to a_j - t_j; sigmoid with binary cross-entropy down to a - t);
* ``"recursion"``: delta^(l) from delta^(l+1) (l = L-1; absent for a one-layer net);
* ``"weight"`` and ``"bias"``: dE/dW^(l)_jk and dE/db^(l)_j (l = L; ``"bias"`` is absent when no
  layer has a bias, and then taken at the last layer that has one);
* ``"activation:<name>"``: each activation's derivative, from its definition to its convenient
  form (sigma(1 - sigma), 1 - tanh^2, ReLU's kink convention, ...), at the first layer that uses it.

Every quantity is an ``IndexedBase`` over symbolic sizes as in :mod:`.general`; every rhs is
computed by SymPy from the registry entries (derivatives by ``sympy.diff``, rewritten forms checked
equal), never typed as text.  Rules come from :data:`.derive.RULES`.  A ``Step.where`` of
``Ne(k, j)`` marks a step that holds for k != j only.  The sum over k != j is written
``Sum(f * (1 - KroneckerDelta(k, j)), (k, 1, n))``: see :func:`sum_except`.
"""

from __future__ import annotations

import sympy as sp

from ..registry import ops
from ..spec import Network
from .derive import RULES, D, E, Step, signed_product, times
from .general import I, J, K, base, layer_form, output_delta, size

__all__ = [
    "activation_steps",
    "bias_steps",
    "general_steps",
    "output_delta_steps",
    "recursion_steps",
    "softmax_jacobian_steps",
    "sum_except",
    "weight_steps",
]


def _step(rule: str, lhs, rhs, note: str = "", where=None) -> Step:
    assert rule in RULES, rule
    return Step(rule, lhs, rhs, note, where)


def sum_except(f: sp.Expr, k: sp.Symbol, j: sp.Symbol, n: sp.Expr) -> sp.Sum:
    """sum over k = 1..n, k != j, of f, as ``Sum(f * (1 - KroneckerDelta(k, j)), (k, 1, n))``."""
    return sp.Sum(times(f, 1 - sp.KroneckerDelta(k, j)), (k, 1, n))


def _equal(a: sp.Expr, b: sp.Expr) -> bool:
    return sp.simplify(a - b) == 0


def _pre_activation(l: int, bias: bool, row: sp.Expr = J) -> sp.Expr:
    """z^(l)_row written out: sum_i W^(l)_{row,i} a^(l-1)_i (+ b^(l)_row), summed over i."""
    W, a_prev = base("W", l), base("a", l - 1)
    z = sp.Sum(W[row, I] * a_prev[I], (I, 1, size(l - 1)))
    return z + base("b", l)[row] if bias else z


# ----------------------------------------------------------------------------- activations


def activation_steps(act: ops.Activation, l: int) -> list[Step]:
    """da^(l)_j/dz^(l)_j from the definition to the convenient form (softmax: its Jacobian)."""
    if act.vector:
        return softmax_jacobian_steps(l)
    a, z = base("a", l)[J], base("z", l)[J]
    f = act.at(z)
    derived = sp.diff(f, z)
    note = f"{act.title}; convention: {act.kink}" if act.kink else act.title
    steps = [_step("definition of the activation", D(a, z), D(f, z), f"a_j = {act.name}(z_j)"),
             _step("derivative of the activation", D(f, z), derived, note)]
    if act.convenient is None:
        return steps
    in_z = act.derivative_at(z)  # the convenient form with y = f(z) put in
    if in_z != derived:
        if not _equal(in_z, derived):
            raise ArithmeticError(f"the registry's convenient derivative of {act.name} is not f'")
        steps.append(_step("simplification", derived, in_z, "rewritten towards the output f(z)"))
    if act.uses_output:
        steps.append(_step("derivative of the activation (convenient form)", in_z, act.derivative_at(z, a),
                           f"{act.name}(z_j) named a_j again"))
    return steps


def softmax_jacobian_steps(l: int) -> list[Step]:
    """da_k/dz_j for softmax: the quotient rule for k = j and for k != j, named with the outputs."""
    a, z, n = base("a", l), base("z", l), size(l)
    S = sp.Sum(sp.exp(z[I]), (I, 1, n))
    ej, ek = sp.exp(z[J]), sp.exp(z[K])
    dS = ej  # dS/dz_j: only the term i = j of the sum depends on z_j (checked at n = 3, j = 2)
    assert _equal(sp.diff(S.subs(n, 3).doit(), z[2]), ej.subs(J, 2))
    same = sp.Add(times(ej, S), -times(ej, dS), evaluate=False) / S**2
    other = -times(ek, dS) / S**2
    return [
        _step("definition of the activation", a[K], ek / S, "softmax"),
        _step("quotient rule", D(ej / S, z[J]), same, "k = j: the numerator and the denominator depend on z_j; "
              "dS/dz_j = exp(z_j)"),
        _step("definition of the activation", same, sp.Add(a[J], -a[J] ** 2, evaluate=False),
              "exp(z_j)/S = a_j"),
        _step("simplification", sp.Add(a[J], -a[J] ** 2, evaluate=False), times(a[J], 1 - a[J])),
        _step("quotient rule", D(ek / S, z[J]), other,
              "k != j: only the denominator depends on z_j", where=sp.Ne(K, J)),
        _step("definition of the activation", other, -times(a[K], a[J]), "exp(z_k)/S = a_k",
              where=sp.Ne(K, J)),
    ]


# ----------------------------------------------------------------------------- the output delta


def _loss_steps(loss: ops.Loss, a: sp.IndexedBase, t: sp.IndexedBase, n, k, summed) -> tuple[list[Step], sp.Expr]:
    """dE/da_k from the definition of the loss: the one term, then its derivative (SymPy)."""
    definition = loss.indexed(a, t, summed, n)
    scale = loss.scale(n)
    term = loss.term(a[k], t[k])
    one = scale * D(term, a[k]) if scale != 1 else D(term, a[k])
    derived = sp.diff(scale * term, a[k])
    steps = [_step("definition of the loss", E, definition, loss.title),
             _step("sum rule (only one term varies)", D(definition, a[k]), one,
                   f"only the term {summed} = {k} depends on a_{k}"),
             _step("derivative of the loss", one, derived)]
    if loss.name == "binary_cross_entropy":
        combined = (a[k] - t[k]) / times(a[k], 1 - a[k])
        if not _equal(combined, derived):
            raise ArithmeticError("binary cross-entropy derivative")
        steps.append(_step("simplification", derived, combined, "over the common denominator a (1 - a)"))
        derived = combined
    return steps, derived


def output_delta_steps(network: Network) -> list[Step]:
    """delta^(L)_j = dE/dz^(L)_j, every step, for the network's loss and output activation."""
    L, loss = network.depth, network.loss
    act = network.layers[-1].activation
    a, z, t, d, n = base("a", L), base("z", L), base("t"), base("delta", L), size(L)
    final = output_delta(L, act, loss)
    steps = [_step("definition of delta", d[J], D(E, z[J]))]
    if not act.vector:
        chain = times(D(E, a[J]), D(a[J], z[J]))
        steps.append(_step("chain rule", D(E, z[J]), chain, "z_j reaches E only through a_j (element-wise)"))
        loss_steps, dE_da = _loss_steps(loss, a, t, n, J, K)
        steps += loss_steps
        fprime = act.derivative_at(z[J], a[J])
        steps.append(_step("derivative of the activation (convenient form)" if act.uses_output
                           else "derivative of the activation", D(a[J], z[J]), fprime,
                           f"see the derivative of {act.name}"))
        product = signed_product(dE_da, fprime)
        steps.append(_step("substitution", chain, product))
        simpler = sp.factor(sp.cancel(product))
        if simpler != product and sp.count_ops(simpler) < sp.count_ops(product):
            steps.append(_step("simplification", product, simpler,
                               "the factor a (1 - a) cancels" if loss.requires else ""))
        steps.append(_step("result", d[J], simpler if sp.count_ops(simpler) < sp.count_ops(product) else product))
        return steps
    # softmax: every output depends on every z
    summand = lambda k: times(D(E, a[k]), D(a[k], z[J]))
    chain = sp.Sum(summand(K), (K, 1, n))
    steps.append(_step("chain rule", D(E, z[J]), chain, "every a_k depends on z_j (the shared denominator)"))
    loss_steps, _ = _loss_steps(loss, a, t, n, K, I)
    steps += loss_steps
    dE_da = lambda k: sp.diff(loss.scale(n) * loss.term(a[k], t[k]), a[k])
    steps += softmax_jacobian_steps(L)
    split = sp.Add(summand(J), sum_except(summand(K), K, J, n), evaluate=False)
    steps.append(_step("split the sum at k = j", chain, split))
    jac_same, jac_other = times(a[J], 1 - a[J]), -times(a[K], a[J])
    put = sp.Add(signed_product(dE_da(J), jac_same), sum_except(signed_product(dE_da(K), jac_other), K, J, n),
                 evaluate=False)
    steps.append(_step("substitution", split, put, "dE/da_k and the two cases of the Jacobian"))
    if loss.name == "categorical_cross_entropy":
        same = sp.expand(dE_da(J) * jac_same)        # t_j a_j - t_j
        other = sp.factor(dE_da(K) * jac_other)      # a_j t_k
        pulled = sp.Add(same, times(a[J], sum_except(other / a[J], K, J, n)), evaluate=False)
        steps.append(_step("simplification", put, pulled, "a_k cancels; a_j does not depend on k"))
        joined = sp.Add(-t[J], times(a[J], sp.Sum(t[K], (K, 1, n))), evaluate=False)
        steps.append(_step("join the k = j term into the sum", pulled, joined, "a_j t_j is the k = j term"))
        steps.append(_step("sum of the targets is one", joined, a[J] - t[J], "sum_k t_k = 1"))
        steps.append(_step("result", d[J], a[J] - t[J]))
        return steps
    steps.append(_step("simplification", put, final))
    steps.append(_step("result", d[J], final))
    return steps


# ----------------------------------------------------------------------------- recursion, weight, bias


def recursion_steps(network: Network, l: int | None = None) -> list[Step]:
    """delta^(l)_j from delta^(l+1) (default l = L - 1); empty for a one-layer network."""
    L = network.depth
    l = L - 1 if l is None else l
    if not 1 <= l < L:
        return []
    act, nxt = network.layers[l - 1].activation, network.layers[l]
    a, z, d = base("a", l), base("z", l), base("delta", l)
    zn, dn, Wn = base("z", l + 1), base("delta", l + 1), base("W", l + 1)
    n = size(l + 1)
    chain = times(D(a[J], z[J]), sp.Sum(times(D(E, zn[K]), D(zn[K], a[J])), (K, 1, n)))
    written = _pre_activation(l + 1, nxt.bias, K).subs(base("a", l), a)
    one = D(times(Wn[K, J], a[J]), a[J])
    weight = sp.diff(Wn[K, J] * a[J], a[J])
    form = layer_form(l, False, act, network.layers[l - 1].bias, None)
    put = times(D(a[J], z[J]), sp.Sum(times(dn[K], weight), (K, 1, n)))
    fprime = form.fprime
    result = times(fprime, sp.Sum(times(weight, dn[K]), (K, 1, n)))
    return [
        _step("definition of delta", d[J], D(E, z[J])),
        _step("chain rule", D(E, z[J]), chain, f"a_j feeds every unit k of layer {l + 1}"),
        _step("definition of the pre-activation", D(zn[K], a[J]), D(written, a[J])),
        _step("sum rule (only one term varies)", D(written, a[J]), one,
              "only the term i = j depends on a_j"),
        _step("constant factor rule", one, weight, "the weight does not depend on a_j"),
        _step("definition of delta", D(E, zn[K]), dn[K]),
        _step("substitution", chain, put),
        _step("derivative of the activation (convenient form)" if act.uses_output
              else "derivative of the activation", D(a[J], z[J]), fprime, f"see the derivative of {act.name}"),
        _step("result", d[J], result, "the delta recursion"),
    ]


def weight_steps(network: Network, l: int | None = None) -> list[Step]:
    """dE/dW^(l)_jk = delta^(l)_j a^(l-1)_k (default l = L)."""
    l = network.depth if l is None else l
    W, z, d, a_prev = base("W", l), base("z", l), base("delta", l), base("a", l - 1)
    written = _pre_activation(l, network.layers[l - 1].bias)
    one = D(times(W[J, K], a_prev[K]), W[J, K])
    local = sp.diff(W[J, K] * a_prev[K], W[J, K])
    return [
        _step("chain rule", D(E, W[J, K]), times(D(E, z[J]), D(z[J], W[J, K])), "W_jk enters E only through z_j"),
        _step("definition of the pre-activation", D(z[J], W[J, K]), D(written, W[J, K])),
        _step("sum rule (only one term varies)", D(written, W[J, K]), one,
              "only the term i = k depends on W_jk"),
        _step("constant factor rule", one, local, "a_k does not depend on W_jk"),
        _step("definition of delta", D(E, z[J]), d[J]),
        _step("result", D(E, W[J, K]), times(d[J], local)),
    ]


def bias_steps(network: Network, l: int | None = None) -> list[Step]:
    """dE/db^(l)_j = delta^(l)_j (default: the last layer with a bias); empty if it has none."""
    if l is None:
        with_bias = [m for m in range(1, network.depth + 1) if network.layers[m - 1].bias]
        if not with_bias:
            return []
        l = with_bias[-1]
    if not network.layers[l - 1].bias:
        return []
    b, z, d = base("b", l), base("z", l), base("delta", l)
    written = _pre_activation(l, True)
    return [
        _step("chain rule", D(E, b[J]), times(D(E, z[J]), D(z[J], b[J])), "b_j enters E only through z_j"),
        _step("definition of the pre-activation", D(z[J], b[J]), D(written, b[J])),
        _step("sum rule (only one term varies)", D(written, b[J]), D(b[J], b[J]),
              "only the term b_j depends on b_j"),
        _step("derivative of a variable by itself", D(b[J], b[J]), sp.diff(b[J], b[J])),
        _step("definition of delta", D(E, z[J]), d[J]),
        _step("result", D(E, b[J]), d[J]),
    ]


def general_steps(network: Network) -> dict[str, list[Step]]:
    """Every algebra step of the general derivations, by key (see the module docstring)."""
    out = {"output_delta": output_delta_steps(network)}
    recursion = recursion_steps(network)
    if recursion:
        out["recursion"] = recursion
    out["weight"] = weight_steps(network)
    bias = bias_steps(network)
    if bias:
        out["bias"] = bias
    seen: set[str] = set()
    for l, layer in enumerate(network.layers, start=1):
        act = layer.activation
        if act.name not in seen:
            seen.add(act.name)
            out[f"activation:{act.name}"] = activation_steps(act, l)
    return out
