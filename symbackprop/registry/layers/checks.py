"""Validators for layer-kind options: one clear SpecError line each."""

from __future__ import annotations

from typing import Any

from ...errors import SpecError
from .base import Option


def numeric_text_hint(value: Any) -> str:
    """A hint for ``1e-5`` written in YAML, which YAML 1.1 reads as text (it needs ``1.0e-5``)."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return f" (YAML reads {value} as text; write the mantissa with a dot, as in 1.0e-5)"
    return ""


def _number(value: Any, where: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(where, f"must be a number, got {value!r}",
                        f"write a number such as {example}{numeric_text_hint(value)}")
    return float(value)


def epsilon_option() -> Option:
    def check(value, where):
        v = _number(value, where, "1.0e-5")
        if not 0 < v < 1:
            raise SpecError(where, f"is {v}, outside (0, 1)", "use a small positive number such as 1.0e-5")
        return v
    return Option("epsilon", check, default=1e-5, doc="added to the variance before the square root")


def momentum_option() -> Option:
    def check(value, where):
        v = _number(value, where, "0.9")
        if not 0 <= v < 1:
            raise SpecError(where, f"is {v}, outside [0, 1)", "use a value such as 0.9")
        return v
    return Option("momentum", check, default=0.9,
                  doc="running statistics: running = momentum * running + (1 - momentum) * batch")


def rate_option() -> Option:
    def check(value, where):
        v = _number(value, where, "0.5 (the probability that a unit is dropped)")
        if not 0 <= v < 1:
            raise SpecError(where, f"is {v}, outside [0, 1)",
                            "use a drop probability such as 0.5 (1 would drop every unit)")
        return v
    return Option("rate", check, required=True, doc="probability that a unit is dropped")


def from_option() -> Option:
    def check(value, where):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpecError(where, f"must be a layer number (0 = the inputs), got {value!r}",
                            "write from: 1 to add layer 1's output")
        return value
    return Option("from", check, required=True, doc="the earlier layer whose output is added (0 = the inputs)")
