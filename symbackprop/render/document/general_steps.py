"""The general derivations (``engine.steps.general_steps``): each equation derived once in index
form, every step with the rule it applies."""

from __future__ import annotations

import sympy as sp

from .context import Context
from .derivations import rule_label
from .model import Heading, para

TITLES = {"output_delta": "The output error term", "recursion": "The error-term recursion",
          "weight": "The weight gradient", "bias": "The bias gradient"}


def title(key: str) -> str:
    if key.startswith("activation:"):
        return f"The derivative of {key.split(':', 1)[1]}"
    return TITLES.get(key, key.replace("_", " "))


def blocks(ctx: Context, steps: dict) -> list:
    out = [para("Each equation of the results, derived once for any unit ", ("math", "j"),
                " of any layer, every step named by the rule it applies.")]
    for key, chain in steps.items():
        if not chain or (key.startswith("activation:") and _vector(ctx, key)):
            continue  # softmax: its Jacobian is part of the output error term
        out.append(Heading(para(title(key))))
        rows, prev, top, named = [], None, None, {}
        for s in chain:
            if s.rule == "result" and prev is not None and s.rhs == prev.rhs and _named(s.lhs, named) == top:
                continue  # the row above already reads the result
            if prev is not None and s.lhs == prev.rhs:
                lhs = ""  # continues the previous row
            else:
                # an expression shown earlier as a right-hand side: name it by that row's left-hand side
                top = lhs = _named(s.lhs, named)
            named.setdefault(s.rhs, top)
            rhs = s.rhs
            if s.where is not None:  # a case: the condition beside the formula, where the checker sees it
                rhs = ctx.pr.doprint(rhs) + rf" \quad ({ctx.pr.doprint(s.where.lhs)} \neq {ctx.pr.doprint(s.where.rhs)})"
            rows.append((lhs, rhs, rule_label(s)))
            prev = s
        out.append(ctx.display(rows))  # with layer marks in every profile: no unit is ambiguous
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
