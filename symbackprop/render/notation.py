"""Notation profiles: how each canonical quantity is written in a document or a claim.

Canonical names never change (``W{l}_{j}_{k}`` is the weight from unit k of
layer l-1 to unit j of layer l); a profile only says how to write them.

| profile   | weight (k -> j, layer l) | z        | a      | f         | delta    | target | loss |
|-----------|--------------------------|----------|--------|-----------|----------|--------|------|
| seed      | W^{(l)}_{jk}             | z^{(l)}_j| a^{(l)}_j | \\sigma | \\delta^{(l)}_j | y | L |
| wikipedia | w^{(l)}_{kj} (from k to j)| net_j   | o_j    | \\varphi  | \\delta_j | t     | E    |
| aima      | w_{k,j} (from k to j)    | in_j     | a_j    | g         | \\Delta_j | y     | E    |
| bishop    | w^{(l)}_{jk}             | a_j      | z_j    | h         | \\delta_j | t     | E    |

Bishop (PRML 5.3) swaps the seed's letters: a_j is the pre-activation, z_j = h(a_j) the
activation, y_k the output, and delta_k = y_k - t_k for a canonical output/loss pair.

``weight_order`` says which index comes first: ``"to_from"`` (seed: j then k) or
``"from_to"`` (wikipedia, aima: the source unit first).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import SpecError

PROFILE_NAMES = ("seed", "wikipedia", "aima", "bishop")


@dataclass(frozen=True)
class Profile:
    """Symbols (LaTeX) for each quantity, and the wording conventions of a profile."""

    name: str
    weight: str            # weight letter
    weight_order: str      # "to_from" (W_{jk}: j <- k) or "from_to" (w_{kj}: k -> j)
    index_comma: bool      # w_{j,k} rather than w_{jk}
    layer_superscript: bool  # W^{(l)} rather than per-layer index letters only
    bias: str
    preactivation: str
    activation_value: str
    activation: str        # the generic activation function symbol
    delta: str
    input: str
    target: str
    loss: str
    learning_rate: str
    descent_sign: str      # "minus": w <- w - alpha dE/dw ; "plus": w <- w + alpha a Delta (Delta = -delta)
    output_value: str | None = None  # name of the network output, e.g. \hat{y}

    @property
    def gradient_delta(self) -> str:
        """The symbol of dE/dz.  Profiles that update with ``+`` (aima) write Delta = -delta,
        so dE/dz itself keeps the name delta there."""
        return r"\delta" if self.descent_sign == "plus" else self.delta

    @property
    def words(self) -> dict[str, str]:
        """How the profile's own texts name each quantity, in prose."""
        return WORDS[self.name]


WORDS: dict[str, dict[str, str]] = {
    "seed": {"z": "pre-activation", "a": "activation", "f": "activation function",
             "delta": "error term", "unit": "unit", "E": "loss"},
    "wikipedia": {"z": "net input", "a": "output", "f": "activation function",
                  "delta": "error term", "unit": "neuron", "E": "error"},
    "aima": {"z": "weighted input", "a": "activation", "f": "activation function",
             "delta": "modified error", "unit": "unit", "E": "loss"},
    "bishop": {"z": "activation", "a": "hidden-unit output", "f": "activation function",
               "delta": "error", "unit": "unit", "E": "error"},
}


PROFILES: dict[str, Profile] = {
    "seed": Profile("seed", "W", "to_from", False, True, "b", "z", "a", r"\sigma", r"\delta",
                    "x", "y", "L", r"\alpha", "minus", r"\hat{y}"),
    "wikipedia": Profile("wikipedia", "w", "from_to", False, True, "b", r"\mathrm{net}", "o", r"\varphi",
                         r"\delta", "x", "t", "E", r"\eta", "minus", "y"),
    "aima": Profile("aima", "w", "from_to", True, False, "b", r"\mathrm{in}", "a", "g", r"\Delta",
                    "x", "y", "E", r"\alpha", "plus", None),
    "bishop": Profile("bishop", "w", "to_from", False, True, "b", "a", "z", "h", r"\delta",
                      "x", "t", "E", r"\eta", "minus", "y"),
}

_OVERRIDE_FIELDS = {"loss": "loss", "weight": "weight", "bias": "bias", "preactivation": "preactivation",
                    "activation_value": "activation_value", "activation": "activation", "delta": "delta",
                    "input": "input", "target": "target", "learning_rate": "learning_rate"}


def profile(name: str | None = None, overrides: tuple[tuple[str, str], ...] = ()) -> Profile:
    """The named profile (default ``seed``) with the spec's single-symbol overrides applied."""
    settings = dict(overrides)
    chosen = name or settings.pop("profile", None) or "seed"
    settings.pop("profile", None)
    if chosen not in PROFILES:
        raise SpecError("notation", f"unknown profile {chosen!r}", f"use one of {', '.join(PROFILE_NAMES)}")
    return replace(PROFILES[chosen], **{_OVERRIDE_FIELDS[k]: v for k, v in settings.items()})
