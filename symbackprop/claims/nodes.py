"""The claim syntax tree: small immutable nodes, so diagnoses can rewrite copies."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


class Node:
    """Base class of claim expressions."""


@dataclass(frozen=True)
class Num(Node):
    value: Fraction


@dataclass(frozen=True)
class Sym(Node):
    """A named quantity with optional layer (superscript) and indices (subscript)."""

    name: str
    layer: Node | None = None
    index: tuple[Node, ...] | None = None
    hat: bool = False
    layer_parens: bool = True
    example: Node | None = None  # Ng's x^{(i)}, dz^{[1](i)}: the i-th training example


@dataclass(frozen=True)
class Idx(Node):
    """An index or layer letter (``j``, ``l``)."""

    name: str


@dataclass(frozen=True)
class Call(Node):
    """f(args), f'(args) for activations, exp, log, ... and the loss L(t, y)."""

    func: str
    args: tuple[Node, ...]
    primes: int = 0
    layer: Node | None = None  # g^{[1]}: the layer written on the function (its argument decides)


@dataclass(frozen=True)
class Bin(Node):
    """``op`` in + - * (juxtaposition, cdot, times) odot /."""

    op: str
    left: Node
    right: Node
    spelled: str = ""


@dataclass(frozen=True)
class Neg(Node):
    arg: Node


@dataclass(frozen=True)
class Pow(Node):
    base: Node
    exp: Node


@dataclass(frozen=True)
class Transpose(Node):
    arg: Node


@dataclass(frozen=True)
class Paren(Node):
    arg: Node


@dataclass(frozen=True)
class Brackets(Paren):
    """``[...]``: grouping, or a layer written Ng's way (``W^{[2]}``)."""


@dataclass(frozen=True)
class Deriv(Node):
    """``d num / d wrt``; ``body`` set for the operator form ``d/d wrt (body)``."""

    num: Node | None
    wrt: Node
    body: Node | None = None
    spelled: str = "partial"


@dataclass(frozen=True)
class SumOver(Node):
    var: str
    lower: Node | None
    upper: Node | None
    body: Node


@dataclass(frozen=True)
class Claim:
    text: str
    sides: tuple[Node, ...]
    relations: tuple[str, ...]
    notes: tuple[str, ...] = ()


def scalar_bin(op: str, a: float, b: float) -> float | None:
    """``a op b`` for numbers (``odot`` is ``*``; x / 0 is NaN), or None for an operator numbers do not take."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op in ("*", "odot"):
        return a * b
    if op == "/":
        return a / b if b != 0 else float("nan")
    return None


def walk(node: Node):
    """Every node of a tree, parents first."""
    yield node
    for child in children(node):
        yield from walk(child)


def children(node: Node) -> list[Node]:
    if isinstance(node, Sym):
        return [n for n in ([node.layer] if node.layer is not None else []) + list(node.index or ())]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, Bin):
        return [node.left, node.right]
    if isinstance(node, (Neg, Transpose, Paren)):
        return [node.arg]
    if isinstance(node, Pow):
        return [node.base, node.exp]
    if isinstance(node, Deriv):
        return [n for n in (node.num, node.wrt, node.body) if n is not None]
    if isinstance(node, SumOver):
        return [n for n in (node.lower, node.upper, node.body) if n is not None]
    return []


def weight_indices(index: tuple[Node, ...] | None) -> list[Node]:
    """A weight's two indices; ``W_{12}`` (one number of two digits or more) means ``W_{1,2}``."""
    idx = list(index or ())
    if len(idx) == 1 and isinstance(idx[0], Num) and idx[0].value.denominator == 1 and idx[0].value >= 10:
        idx = [Num(type(idx[0].value)(int(c))) for c in str(int(idx[0].value))]
    return idx
