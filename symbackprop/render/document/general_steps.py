"""The general derivations (``engine.steps.general_steps``): each equation derived once in index
form, every step with the rule it applies."""

from __future__ import annotations

import sympy as sp

from ...engine.derive import Step
from .context import Context, in_order, put_in
from .derivations import rule_label
from .model import Heading, para

TITLES = {"output_delta": "The output error term", "recursion": "The error-term recursion",
          "weight": "The weight gradient", "bias": "The bias gradient",
          "gradients": "The weight and bias gradients"}


def title(key: str) -> str:
    if key.startswith("activation:"):
        return f"The derivative of {key.split(':', 1)[1]}"
    return TITLES.get(key, key.replace("_", " "))


def blocks(ctx: Context, steps: dict) -> list:
    out = [para("Each equation of the results, derived once for any unit ", ("math", "j"),
                " of any layer, every step named by the rule it applies.")]
    for key, chain in merged(steps).items():
        if not chain or (key.startswith("activation:") and _vector(ctx, key)):
            continue  # softmax: its Jacobian is part of the output error term
        out.append(Heading(para(title(key))))
        rows, prev, top, named = [], None, None, {}
        for s in folded(chain):
            if s.rule == "result" and prev is not None and s.rhs == prev.rhs and _named(s.lhs, named) == top:
                continue  # the row above already reads the result
            if prev is not None and s.lhs == prev.rhs:
                lhs = ""  # continues the previous row
            else:
                # an expression shown earlier as a right-hand side: name it by that row's left-hand side
                top = lhs = _named(s.lhs, named)
            named.setdefault(s.rhs, top)
            rhs = s.rhs
            if isinstance(rhs, sp.Mul) and sp.S.One in rhs.args:  # identity's f' = 1 put in: not "1 x"
                rhs = sp.Mul(*[f for f in rhs.args if f != 1], evaluate=False)
            if s.where is not None:  # a case: the condition beside the formula, where the checker sees it
                rhs = ctx.pr.doprint(rhs) + rf" \quad ({ctx.pr.doprint(s.where.lhs)} \neq {ctx.pr.doprint(s.where.rhs)})"
            if s.rule.startswith("chain rule, definition of delta"):
                rhs = in_order(rhs, ctx.pr) or rhs
            rows.append((lhs, rhs, rule_label(s)))
            prev = s
        out.append(ctx.display(rows))  # with layer marks in every profile: no unit is ambiguous
    return out


def folded(chain: list[Step]) -> list[Step]:
    """Two steps on one row where the second only names what the first uses: ``dL/dz_k = delta_k``
    just before the substitution that puts it in (labelled "substitution, definition of delta"), and
    f' put in just after the substitution, read as the result (labelled as the derivative)."""
    out: list[Step] = []
    i = 0
    while i < len(chain):
        s, nxt = chain[i], chain[i + 1] if i + 1 < len(chain) else None
        if (s.rule == "definition of the loss" and nxt is not None and nxt.rule.startswith("sum rule")
                and isinstance(nxt.lhs, sp.Derivative) and nxt.lhs.expr == s.rhs):
            # the loss as the results state it, differentiated at once: dL/da_j = d/da_j (its one term)
            out.append(Step(f"definition of the loss, {rule_label(nxt)}", sp.Derivative(s.lhs, *nxt.lhs.variables),
                            nxt.rhs, nxt.note))
            i += 2
            continue
        if s.rule == "definition of delta" and nxt is not None and nxt.rule == "substitution" \
                and nxt.lhs.has(s.lhs) and s.lhs != nxt.lhs:
            out.append(Step("substitution, definition of delta", nxt.lhs, nxt.rhs, nxt.note, nxt.where))
            i += 2
            continue
        last = out[-1] if out else None
        if (s.rule.startswith("derivative of the activation") and nxt is not None and nxt.rule == "result"
                and last is not None and last.rule.startswith("substitution") and last.rhs.has(s.lhs)
                and sp.expand(last.rhs.xreplace({s.lhs: s.rhs}).doit() - nxt.rhs.doit()) == 0):
            out.append(Step(rule_label(s), last.rhs, nxt.rhs, s.note))
            i += 2
            continue
        out.append(s)
        i += 1
    return out


def merged(steps: dict) -> dict:
    """The weight and the bias gradient of one layer derived together: dz/dW_jk = a_k and dz/db_j = 1
    share the chain rule, the definition of delta and the written-out pre-activation."""
    weight, bias = steps.get("weight"), steps.get("bias")
    if not weight or not bias:
        return steps
    (w_chain, w_def, w_sum, w_const, w_delta, w_result) = weight
    (b_chain, b_def, b_sum, b_var, b_delta, b_result) = bias
    written = w_def.rhs.expr
    if b_def.rhs.expr != written or w_delta != b_delta:
        return steps  # different layers (the last layer has no bias): derived apart
    z = w_def.lhs.expr
    pre = Step(w_def.rule, z, written, w_def.note)
    named = {w_delta.lhs: w_delta.rhs}  # dL/dz_j = delta_j, put into both chain rules
    w_chain, b_chain = (Step("chain rule, definition of delta", c.lhs, put_in(c.rhs, named), c.note)
                        for c in (w_chain, b_chain))
    together = [w_chain, b_chain, pre, w_sum, w_const, b_sum, b_var, w_result, b_result]
    out = {}
    for key, chain in steps.items():
        if key == "weight":
            out["gradients"] = together
        elif key != "bias":
            out[key] = chain
    return out


def _vector(ctx: Context, key: str) -> bool:
    name = key.split(":", 1)[1]
    return any(layer.activation.vector and layer.activation.name == name for layer in ctx.net.layers)


def _named(expr, named: dict):
    """``expr`` by the name a row gave it; the derivative of a defined expression by its name (dL/da)."""
    if expr in named:
        return named[expr]
    if isinstance(expr, sp.Derivative) and expr.expr in named and not isinstance(named[expr.expr], str):
        return sp.Derivative(named[expr.expr], *expr.variables)
    return expr
