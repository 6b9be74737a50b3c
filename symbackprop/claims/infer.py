"""The network a notes file describes, read from its forward pass (when no spec is given).

``z^{(l)} = W^{(l)} a^{(l-1)} + b^{(l)}`` (``x`` for ``a^{(0)}``; ``+ b^{(l)}`` optional)
gives the layers and their biases, ``a^{(l)} = \\sigma(z^{(l)})`` (or ``\\tanh``,
``\\mathrm{ReLU}``, ``\\mathrm{softmax}``) their activations.  The claims are parsed
with :func:`~symbackprop.claims.parse.parse_claim` (never evaluated).

Widths stay general: :func:`network_options` builds the network at several widths,
and a claim is correct only if it is correct at all of them.  What the notes leave
abstract stays abstract the honest way: a generic activation (``f``, ``g``,
``\\varphi``) is tried as sigmoid and as tanh, a loss the notes never define as
every loss that fits the output (half squared error, binary cross-entropy); a claim
whose verdict changes with that choice cannot be checked (:mod:`.notes` says why).  A loss
the notes define (``L = \\frac12 \\sum_k (y_k - a^{(2)}_k)^2``) narrows the choice:
:func:`narrow_by_definitions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..engine.derive import Derivation, derive
from ..registry.ops import LOSSES, activation, loss_accepts
from .lexer import ClaimSyntaxError
from .nodes import Bin, Call, Num, Paren, Sym
from .parse import parse_claim

WIDTHS = ((2, 3, 2), (3, 2, 1))
"""Input and layer widths tried, cycled over the layers: (inputs, hidden..., output)."""

CONCRETE = {"sigma": "sigmoid", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "softmax": "softmax"}
GENERIC = ("sigmoid", "tanh")
LOSS_PREFERENCE = ("half_sse", "binary_cross_entropy", "categorical_cross_entropy", "sse", "mse")
"""An undefined loss is tried as the first two of these that fit the output (different in form)."""
MISSING_HINT = ("write the forward pass in the notes (z^{(1)} = W^{(1)}x + b^{(1)}, a^{(1)} = \\sigma(z^{(1)}), "
                "...) or pass a spec: symbackprop check SPEC NOTES")


class NotesNetworkError(ClaimSyntaxError):
    """The notes do not define enough of the network (exit code 2)."""


@dataclass(frozen=True)
class Layer:
    bias: bool
    activation: str | None  # None: generic (f, g, \varphi) or not given


@dataclass(frozen=True)
class Architecture:
    """What the notes say about the network: its layers and whether they fix the loss."""

    layers: tuple[Layer, ...]

    @property
    def describe(self) -> str:
        acts = ", ".join(layer.activation or "generic" for layer in self.layers)
        biases = ", ".join("bias" if layer.bias else "no bias" for layer in self.layers)
        return f"{len(self.layers)} layers read from the notes' forward pass (activations: {acts}; {biases})"


@dataclass(frozen=True)
class Option:
    """One concrete network to judge at: its widths and the choices for what the notes leave open."""

    derivation: Derivation
    widths: tuple[int, ...]
    choice: str  # e.g. "loss half_sse" or "loss half_sse, activation tanh"


def _layer_of(node) -> int | None:
    if isinstance(node, Sym) and isinstance(node.layer, Num) and node.layer.value.denominator == 1 and not node.index:
        return int(node.layer.value)
    return None


def _terms(node) -> list:
    while isinstance(node, Paren):
        node = node.arg
    if isinstance(node, Bin) and node.op == "+":
        return _terms(node.left) + _terms(node.right)
    return [node]


def read_architecture(claim_texts: list[str]) -> Architecture:
    """The layers of the forward pass written in ``claim_texts``; raises :class:`NotesNetworkError`."""
    zdef: dict[int, bool] = {}
    adef: dict[int, str | None] = {}
    for text in claim_texts:
        try:
            claim = parse_claim(text)
        except ClaimSyntaxError:
            continue
        if len(claim.sides) != 2 or claim.relations[0] != "=":
            continue
        lhs, rhs = claim.sides
        layer = _layer_of(lhs)
        if layer is None or layer < 1:
            continue
        if lhs.name == "z" and layer not in zdef:
            terms = _terms(rhs)
            product = [t for t in terms if isinstance(t, Bin) and t.op == "*"
                       and isinstance(t.left, Sym) and t.left.name == "W" and _layer_of(t.left) == layer]
            prev = product[0].right if product else None
            ok_prev = prev is not None and ((layer == 1 and isinstance(prev, Sym) and prev.name == "x"
                                             and prev.layer is None) or
                                            (isinstance(prev, Sym) and prev.name == "a" and _layer_of(prev) == layer - 1))
            biases = [t for t in terms if isinstance(t, Sym) and t.name == "b" and _layer_of(t) == layer]
            if ok_prev and len(terms) == 1 + len(biases) and len(biases) <= 1:
                zdef[layer] = bool(biases)
        elif lhs.name == "a" and layer not in adef and isinstance(rhs, Call) and rhs.primes == 0 \
                and len(rhs.args) == 1 and isinstance(rhs.args[0], Sym) and rhs.args[0].name == "z" \
                and _layer_of(rhs.args[0]) == layer:
            adef[layer] = CONCRETE.get(rhs.func)
    if not zdef:
        raise NotesNetworkError(f"the notes do not define the network: no forward pass found; {MISSING_HINT}")
    depth = max(zdef)
    missing = [f"z^{{({l})}} = W^{{({l})}}{'x' if l == 1 else f'a^{{({l - 1})}}'} + b^{{({l})}}"
               for l in range(1, depth + 1) if l not in zdef]
    missing += [f"a^{{({l})}} = \\sigma(z^{{({l})}})" for l in range(1, depth + 1) if l not in adef]
    if missing:
        raise NotesNetworkError(f"the notes' forward pass is incomplete: missing {', '.join(missing)}; "
                                f"add it to the notes or pass a spec: symbackprop check SPEC NOTES")
    return Architecture(tuple(Layer(zdef[l], adef[l]) for l in range(1, depth + 1)))


def network_options(arch: Architecture, widths: tuple[tuple[int, ...], ...] = WIDTHS) -> list[list[Option]]:
    """For each width, the networks of every open choice (activation, loss); derived without verification."""
    generic = [i for i, layer in enumerate(arch.layers) if layer.activation is None]
    act_choices = [{}] if not generic else [{i: a for i in generic} for a in GENERIC]
    out = []
    for base in widths:
        sizes = [base[min(i, len(base) - 1)] if i < len(arch.layers) else base[-1] for i in range(len(arch.layers) + 1)]
        sizes[-1] = base[-1]
        options = []
        for acts in act_choices:
            names = [acts.get(i, layer.activation) for i, layer in enumerate(arch.layers)]
            losses = [n for n in LOSS_PREFERENCE if n in LOSSES and loss_accepts(LOSSES[n], activation(names[-1]))][:2]
            if names[-1] == "softmax":
                sizes[-1] = max(sizes[-1], 2)
            for loss in losses:
                spec = {"name": "from-notes", "inputs": sizes[0], "loss": loss,
                        "layers": [{"units": sizes[i + 1], "activation": names[i], "bias": layer.bias}
                                   for i, layer in enumerate(arch.layers)],
                        "optimizer": {"name": "sgd", "learning_rate": 0.5}}
                choice = f"loss {loss}" + (f", activation {names[generic[0]]}" if generic else "")
                options.append(Option(derive(spec, verify=False), tuple(sizes), choice))
        out.append(options)
    return out


_LOSS_DEFINITION = re.compile(r"^\s*(?:L|E|C|J|\\ell|\\mathcal\{L\})\s*=(?!.*\\partial)")


def narrow_by_definitions(options: list[list[Option]], claim_texts: list[str], notation: str
                          ) -> tuple[list[list[Option]], str | None]:
    """Keep the open choices under which the notes' own loss definitions (``L = ...``) hold.

    A choice is kept when every definition is correct under it at some width (a definition
    written for one output, ``\\frac12 (y - \\hat y)^2``, holds at the width with one output);
    when no choice fits them, nothing is narrowed (the definitions are then reported wrong)."""
    from .judge import judge, new_context

    definitions = [t for t in claim_texts if _LOSS_DEFINITION.match(t)]
    if not definitions or len(options[0]) < 2:
        return options, None
    keep = set()
    for k, option in enumerate(options[0]):
        if all(any(judge(t, new_context(row[k].derivation, notation)).verdict == "correct" for row in options)
               for t in definitions):
            keep.add(k)
    if not keep or len(keep) == len(options[0]):
        return options, None
    narrowed = [[row[k] for k in sorted(keep)] for row in options]
    chosen = ", ".join(o.choice for o in narrowed[0])
    return narrowed, f"{chosen}, from the notes' definition {definitions[0]}"
