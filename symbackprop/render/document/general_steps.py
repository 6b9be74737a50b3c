"""The general derivations (``engine.steps.general_steps``): each equation derived once in index
form, every step with the rule it applies."""

from __future__ import annotations

from .context import Context
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
        if not chain:
            continue
        out.append(Heading(para(title(key))))
        rows, prev = [], None
        for s in chain:
            lhs = "" if prev is not None and (s.lhs == prev.lhs or s.lhs == prev.rhs) else s.lhs
            rows.append((lhs, s.rhs, s.rule))
            prev = s
        out.append(ctx.display(rows, general_form=True))
    return out
