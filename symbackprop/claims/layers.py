"""Claims about the layers of a graph spec, in the notation of their papers, judged numerically.

A spec with layer kinds (:class:`~symbackprop.spec.graph.GraphNetwork`) is read here:
batch normalization (``\\mu_\\mathcal{B}``, ``\\sigma_\\mathcal{B}^2``, ``\\widehat{x}_i``,
``y_i``, ``\\gamma``, ``\\beta``, ``\\epsilon``, the batch size ``m``), layer normalization
(the same symbols, statistics of one sample over its units), inverted dropout (mask ``m_i`` or
``r_i``, rate ``p``) and weight decay (``\\lambda``).

Truth comes from the registry (:mod:`.scenes`): each kind's SymPy ``forward`` on a column of
symbols at concrete sizes (3 and 4), with the upstream ``\\partial \\ell/\\partial y_i`` free
and ``\\ell = \\sum_i g_i y_i``.  The claim tree (read by :func:`~.parse.parse_claim`, never run)
is evaluated by :class:`LayerEvaluator` at random points, for every size and every value of
its free indices; one disagreement is the counterexample.  A wrong claim gets a diagnosis and a
fix when one factor or sign of one term explains it (:func:`diagnose_layers`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np

from .checker import Verdict
from .evaluate import close
from .graphclaims import METHOD as GRAPH_METHOD
from .graphclaims import (
    GraphCannotRead,
    as_update,
    compare_graph,
    compare_matrix,
    has_layer_marks,
    hyper_parameter,
    is_matrix_form,
    letters,
)
from .lexer import MAX_CLAIM_LENGTH, ClaimSyntaxError
from .nodes import (
    Bin,
    Brackets,
    Call,
    Claim,
    Deriv,
    Idx,
    Neg,
    Node,
    Num,
    Paren,
    Pow,
    SumOver,
    Sym,
    Transpose,
    scalar_bin,
)
from .parse import parse_claim
from .printer import print_claim
from .scenes import LOSS_NAMES, SIZES, Scene, scenes_for

METHOD = ("numeric: both sides evaluated at random points (inputs, upstream gradients, parameters, epsilon, "
          f"rate) for every batch or layer size in {SIZES} and every index value, against SymPy derivatives "
          "of the layer's registry forward; pass rule |lhs - rhs| <= 1e-06 + 1e-05*max(|lhs|, |rhs|)")
SIZE_LETTERS = {"batchnorm": ("m", "B", "N"), "layernorm": ("H", "n", "d", "m", "N", "D"),
                "dropout": (), "decay": (), "graph": ("B",)}
TITLES = {"batchnorm": "batch normalization", "layernorm": "layer normalization",
          "dropout": "inverted dropout", "decay": "weight decay"}
READ_AS = {"batchnorm": "read for the batch-normalization layer", "layernorm": "read for the layer-normalization layer",
           "dropout": "read for the dropout layer", "decay": "read for the weight decay (L2 regularization)"}
_VIA = re.compile(r"\^\s*\{\s*\(\s*(\d+)\s*\\leftarrow\s*(\d+)\s*\)\s*\}\s*_\s*\{([^{}]*)\}")
_BARE_SUB = re.compile(r"(\^\s*\{\s*\(\s*\d+\s*\)\s*\})\s*_\s*([A-Za-z0-9])")
_ADDS = re.compile(r"\\frac\s*\{\s*\\partial\s*[A-Za-z]+\s*\}\s*\{\s*\\partial\s*\\?[A-Za-z]+\s*\^\s*\{\s*\(\s*"
                   r"(?P<src>\d+)\s*\)\s*\}\s*_\s*\{(?P<ij>[a-z]{2})\}\s*\}\s*\\mathrel\s*\{\s*\+\s*\}\s*=\s*"
                   r"(?P<g>[gu])\s*\^\s*\{\s*\(\s*(?P<via>\d+)\s*\)\s*\}\s*_\s*\{(?P<ij2>[a-z]{2})\}\s*$")
"""``\\partial L/\\partial a^{(s)}_{ij} \\mathrel{+}= g^{(c)}_{ij}`` (a residual's share): ``g^{(s \\leftarrow c)}_{ij} = g^{(c)}_{ij}``."""
_IVERSON = re.compile(r"\[\s*([a-z])\s*=\s*([a-z])\s*\]")
_SET = re.compile(r"\\\{|\\[lc]?dots\b")


class CannotRead(Exception):
    """A symbol or form the layer contexts do not know: the claim is 'cannot check'."""


@dataclass
class LayerClaims:
    """What ``symbackprop check`` judges claims against for a graph spec (in place of a Derivation)."""

    network: Any

    @property
    def kinds(self) -> tuple[str, ...]:
        names = {n.kind.name for n in self.network.nodes}
        out = tuple(k for k in ("batchnorm", "layernorm", "dropout") if k in names)
        return out + (("decay",) if getattr(self.network, "l2", 0) else ())


@dataclass
class LayerContext:
    """The judging state for the claims of one notes file about a graph spec."""

    target: LayerClaims
    scenes: dict[str, list[Scene]] = field(default_factory=dict)
    notation: str | None = None


def claim_target(spec: Any):
    """A Derivation for a dense spec, a :class:`LayerClaims` for a spec with layer kinds."""
    from ..engine.derive import derive
    from ..spec import load
    from ..spec.graph import GraphNetwork

    net = spec if isinstance(spec, GraphNetwork) else load(spec) if not hasattr(spec, "layers") else spec
    if isinstance(net, GraphNetwork):
        return LayerClaims(net)
    return derive(net, verify=False)


def layer_context(target: Any, notation: str | None = None) -> LayerContext:
    """The judging state for ``target``: a :class:`LayerClaims`, or anything with a GraphNetwork
    as ``.network`` (the engine's LayerDerivation)."""
    if not isinstance(target, LayerClaims):
        target = LayerClaims(target.network)
    return LayerContext(target, {k: scenes_for(k, target.network) for k in target.kinds}, notation)


# ----------------------------------------------------------------------------- reading the text

_BIG = re.compile(r"\\(?:[Bb]igg?|[Bb]igg?[lrm])(?![A-Za-z])")
_SIGMA_SUP_SUB = re.compile(r"\\sigma\s*\^\s*(\{\s*2\s*\}|2)\s*_\s*(\{[^{}]*\}|\\mathcal\s*\{\s*B\s*\}|\\mathcal\s*B|[A-Za-z])")
_SIGMA_SQUARED = re.compile(r"\\sigma\s*\^\s*(?:\{\s*2\s*\}|2)(?!\s*[_(])")
_NAMED_MAP = re.compile(r"(?:\\equiv|=)\s*\\(?:mathrm|operatorname|text|textrm)\s*\{\s*(?:BN|LN)\s*\}.*$")
_SUM_MINUS = re.compile(r"(\\sum(?:\s*_\s*(?:\{[^{}]*\}|[A-Za-z0-9]))?(?:\s*\^\s*(?:\{[^{}]*\}|[A-Za-z0-9]))?)\s*-")


def _braced(text: str, start: int) -> int:
    """The index just past the brace group opening at ``start``."""
    depth = 0
    for k in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return k + 1
    raise ClaimSyntaxError("unbalanced braces after \\sqrt")


def prepare(text: str) -> str:
    """The paper's typography in the claim language: ``\\bigg(`` as ``(``, ``\\sqrt{a}`` as
    ``(a)^{1/2}``, ``\\sigma^2_B`` as ``\\sigma_B^2``, ``\\sum_{i} -2 x`` as ``\\sum_i (-1) 2 x``."""
    if len(text) > MAX_CLAIM_LENGTH:
        raise ClaimSyntaxError(f"claim is {len(text)} characters long (at most {MAX_CLAIM_LENGTH}); split it")
    text = _BIG.sub(" ", text)
    text = _NAMED_MAP.sub(" ", text)  # y_i = ... \equiv \mathrm{BN}_{\gamma,\beta}(x_i): the map's name, no value
    text = _SIGMA_SUP_SUB.sub(lambda m: f"\\sigma_{m.group(2)}^2", text)
    text = _SIGMA_SQUARED.sub(r"(\\sigma)^2", text)  # a bare sigma^2 is the variance, not a function's square
    while True:
        k = text.find("\\sqrt")
        if k < 0:
            break
        j = k + len("\\sqrt")
        while j < len(text) and text[j] == " ":
            j += 1
        if j >= len(text) or text[j] != "{":
            raise ClaimSyntaxError("write a square root as \\sqrt{...} with braces")
        end = _braced(text, j)
        text = f"{text[:k]}({text[j + 1:end - 1]})^{{1/2}}{text[end:]}"
    return _SUM_MINUS.sub(lambda m: m.group(1) + " (-1) ", text)


# ----------------------------------------------------------------------------- evaluation

def _int(node: Node, scene: Scene, env: dict[str, int]) -> int:
    """An index or a sum bound as a number (1-based)."""
    if isinstance(node, Num) and node.value.denominator == 1:
        return int(node.value)
    if isinstance(node, (Idx, Sym)) and node.name in env:
        return env[node.name]
    if isinstance(node, (Idx, Sym)) and node.name in SIZE_LETTERS[scene.kind]:
        return scene.size
    raise CannotRead(f"cannot tell which value the index {getattr(node, 'name', '?')} takes")


def _is_B(node: Node) -> bool:
    return isinstance(node, Idx) and node.name in ("B", "b") or isinstance(node, Sym) and node.name == "B"


class LayerEvaluator:
    """The value of a claim tree in one scene, at one point, for one binding of its index letters."""

    def __init__(self, scene: Scene, point: int, env: dict[str, int]):
        self.scene, self.point, self.env = scene, point, env

    # -- names
    def key(self, node: Node) -> tuple[str, int | None]:
        """The scene quantity a symbol stands for: (name, 0-based index or None)."""
        kind = self.scene.kind
        if isinstance(node, Pow) and isinstance(node.base, Paren) and isinstance(node.base.arg, Sym):
            node = Pow(node.base.arg, node.exp)
        if isinstance(node, Pow) and isinstance(node.base, Sym) and node.base.name == "sigma" \
                and isinstance(node.exp, Num) and node.exp.value == 2 and kind in ("batchnorm", "layernorm"):
            self._stat_index(node.base)
            return ("var", None)
        if not isinstance(node, Sym) or node.layer is not None or node.example is not None:
            raise CannotRead("only the layer's own symbols are read here (no layer superscripts)")
        name, idx = node.name, node.index or ()
        if kind in ("batchnorm", "layernorm"):
            if name == "x" or name == "y":
                stem = "xhat" if node.hat and name == "x" else ("yhat" if node.hat else name)
                if stem == "yhat":
                    raise CannotRead("\\hat{y} is not a quantity of a normalization layer")
                return (stem, self._unit(idx))
            if name == "mu" and not node.hat or name == "sigma" and not node.hat:
                self._stat_index(node)
                return ("mu" if name == "mu" else "std", None)
            if name in ("gamma", "beta"):
                if kind == "layernorm":
                    return (name, self._unit(idx))
                if len(idx) > 1:
                    raise CannotRead(f"\\{name} has one value per unit; write \\{name} or \\{name}_j")
                return (name, None)
            if name in ("epsilon", "varepsilon") and not idx:
                return ("eps", None)
            if name in SIZE_LETTERS[kind] and not idx:
                return ("size", None)
        if kind == "dropout":
            if name in ("x", "y") and not node.hat:
                return (name, self._unit(idx))
            if name in ("m", "r") and idx:
                return ("mask", self._unit(idx))
            if name == "p" and not idx:
                return ("p", None)
        if kind == "decay":
            if name in ("W", "w", "theta") and idx:
                return ("w", self._weight(idx))
            if name in ("W", "w", "theta") and not idx:
                return ("w", 0)
            if name == "lambda" and not idx:
                return ("lambda", None)
            if name in ("eta", "alpha") and not idx:
                return ("eta", None)
        raise CannotRead(f"the symbol {name} is not one the {TITLES[kind]} layer defines")

    def _stat_index(self, node: Sym) -> None:
        """mu_B, mu_{B,j} (batch), mu, mu_i (one sample of a layer norm): one statistic."""
        idx = [i for i in node.index or () if not _is_B(i)]
        if len(idx) > 1:
            raise CannotRead("a statistic takes at most one index")

    def _unit(self, idx) -> int:
        """x_i (the sample of a batch norm, the unit of a layer norm or dropout); x_{ij}: (sample, unit)."""
        if not idx:
            raise CannotRead("write the element's index, e.g. x_i")
        if len(idx) > 2:
            raise CannotRead("at most two indices (sample, unit)")
        pos = 0 if self.scene.kind == "batchnorm" else len(idx) - 1
        value = _int(idx[pos], self.scene, self.env)
        if not 1 <= value <= self.scene.size:
            raise IndexError(f"index {value} outside 1..{self.scene.size}")
        return value - 1

    def _weight(self, idx) -> int:
        if len(idx) == 1 and isinstance(idx[0], Num) and idx[0].value >= 10:
            idx = [Num(Fraction(int(c))) for c in str(int(idx[0].value))]
        values = [_int(i, self.scene, self.env) for i in idx]
        if len(values) != 2 or not all(1 <= v <= self.scene.size for v in values):
            raise CannotRead("a weight takes two indices, W_{jk}")
        return (values[0] - 1) * self.scene.size + values[1] - 1

    # -- values
    def value(self, key: tuple[str, int | None], d: tuple | None = None) -> float:
        return self.scene.value(self.point, key, d)

    def eval(self, node: Node) -> float:
        if isinstance(node, Num):
            return float(node.value)
        if isinstance(node, Idx):
            if node.name in SIZE_LETTERS[self.scene.kind]:
                return float(self.scene.size)
            raise CannotRead(f"the index {node.name} is used as a number")
        if isinstance(node, (Sym, Pow)) and self._is_quantity(node):
            return self.value(self.key(node))
        if isinstance(node, Paren):  # Brackets too
            return self.eval(node.arg)
        if isinstance(node, Neg):
            return -self.eval(node.arg)
        if isinstance(node, Bin):
            value = scalar_bin(node.op, self.eval(node.left), self.eval(node.right))
            if value is not None:
                return value
        if isinstance(node, Pow):
            base, exp = self.eval(node.base), self.eval(node.exp)
            with np.errstate(all="ignore"):
                return float(np.power(base, exp)) if base > 0 or float(exp).is_integer() else float("nan")
        if isinstance(node, SumOver):
            lo = _int(node.lower, self.scene, self.env) if node.lower is not None else 1
            hi = _int(node.upper, self.scene, self.env) if node.upper is not None else self.scene.size
            total = 0.0
            for v in range(lo, hi + 1):
                inner = LayerEvaluator(self.scene, self.point, {**self.env, node.var: v})
                total += inner.eval(node.body)
            return total
        if isinstance(node, Deriv):
            return self._deriv(node)
        if isinstance(node, Call) and node.func in ("exp", "log") and not node.primes and len(node.args) == 1:
            x = self.eval(node.args[0])
            return float(np.exp(x)) if node.func == "exp" else (float(np.log(x)) if x > 0 else float("nan"))
        if isinstance(node, (Transpose, Call)):
            raise CannotRead("a transpose or a function call is not read for these layers")
        raise CannotRead(f"cannot read {type(node).__name__} here")

    def _is_quantity(self, node: Node) -> bool:
        if isinstance(node, Pow):
            base = node.base.arg if isinstance(node.base, Paren) else node.base
            return isinstance(base, Sym) and base.name == "sigma" and isinstance(node.exp, Num) \
                and node.exp.value == 2 and self.scene.kind in ("batchnorm", "layernorm")
        return True

    def _deriv(self, node: Deriv) -> float:
        if node.body is not None or node.num is None:
            raise CannotRead("write a derivative as \\frac{\\partial \\ell}{\\partial x_i}")
        wrt = self.key(node.wrt)
        num = node.num
        if isinstance(num, Sym) and num.name in LOSS_NAMES and num.layer is None and not num.hat:
            if num.index is None:
                return self.value(wrt, ("adj", "loss"))
            if self.scene.kind == "decay" and len(num.index) == 1 and isinstance(num.index[0], Num) \
                    and num.index[0].value == 0:  # E_0: the data loss, without the decay term
                return self.value(wrt, ("adj", "data"))
            raise CannotRead("a loss with an index is read only as E_0, the loss without weight decay")
        return self.value(wrt, ("local", self.key(num)))


# ----------------------------------------------------------------------------- judging

def free_letters(node: Node, bound: frozenset = frozenset()) -> list[str]:
    """Index letters of ``node`` that no sum binds, in order of appearance (B, the batch label, excluded)."""
    out: list[str] = []
    if isinstance(node, SumOver):
        for part in (node.lower, node.upper):
            if part is not None:
                out += free_letters(part, bound)
        return out + free_letters(node.body, bound | {node.var})
    if isinstance(node, Sym):
        for i in node.index or ():
            for sub in _nodes(i):
                if isinstance(sub, Idx) and sub.name not in bound and not _is_B(sub) and sub.name not in out:
                    out.append(sub.name)
        return out
    for child in _children(node):
        out += [x for x in free_letters(child, bound) if x not in out]
    return list(dict.fromkeys(out))


def _nodes(node: Node):
    yield node
    for c in _children(node):
        yield from _nodes(c)


def _children(node: Node) -> list[Node]:
    if isinstance(node, Bin):
        return [node.left, node.right]
    if isinstance(node, (Neg, Paren, Transpose)):
        return [node.arg]
    if isinstance(node, Pow):
        return [node.base, node.exp]
    if isinstance(node, Deriv):
        return [n for n in (node.num, node.wrt, node.body) if n is not None]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, SumOver):
        return [n for n in (node.lower, node.upper, node.body) if n is not None]
    if isinstance(node, Sym):
        return list(node.index or ())
    return []


@dataclass
class Mismatch:
    scene: Scene
    point: int
    env: dict
    side: int
    left: float
    right: float


def compare(claim: Claim, scenes: list[Scene]) -> tuple[Mismatch | None, int]:
    """The first disagreement of the claim's sides (or None) and the number of comparisons."""
    letters: list[str] = []
    for side in claim.sides:
        letters += [x for x in free_letters(side) if x not in letters]
    count = 0
    for scene in scenes:
        letters_here = [x for x in letters if x not in SIZE_LETTERS[scene.kind]]
        for values in itertools.product(range(1, scene.size + 1), repeat=len(letters_here)):
            env = dict(zip(letters_here, values))
            for point in range(scene.points):
                ev = LayerEvaluator(scene, point, env)
                lhs = ev.eval(claim.sides[0])
                for k, side in enumerate(claim.sides[1:], start=1):
                    rhs = ev.eval(side)
                    count += 1
                    if not close(np.array([lhs]), np.array([rhs])):
                        return Mismatch(scene, point, env, k, lhs, rhs), count
    return None, count


def judge_layers(text: str, ctx: LayerContext) -> Verdict:
    """The verdict on one claim text about the graph spec's layers; never raises."""
    try:
        return _judge(text, ctx)
    except Exception as exc:  # noqa: BLE001 - the contract: never raise for any text
        return Verdict(text, "cannot-check", reason=f"could not judge this claim ({type(exc).__name__}: {exc})")


def _read(text: str) -> Claim:
    return parse_claim(prepare(text), frozenset({"ell"}))


def _judge(text: str, ctx: LayerContext) -> Verdict:
    from .judge import relation_in

    if _SET.search(text):
        return Verdict(text, "skipped", reason="a set or a list (\\{...\\}, \\ldots), not an equation between values")
    graph = _read_graph(text, ctx)
    try:
        claim = _read(text)
    except ClaimSyntaxError as exc:
        if graph is not None:
            return _judge_graph(text, graph, ctx)
        if not relation_in(text):
            return Verdict(text, "skipped", reason="no relation ('=' or '\\leftarrow'): a name or a "
                                                   "notation entry, not a claim")
        return Verdict(text, "cannot-check", reason=str(exc))
    setting = _setting(text, claim, ctx)
    if setting is not None:
        return setting
    if graph is not None and has_layer_marks(graph):
        return _judge_graph(text, graph, ctx)
    v = _judge_scenes(text, claim, ctx)
    if v.verdict == "cannot-check" and graph is not None:
        g = _judge_graph(text, graph, ctx)
        return g if g.verdict != "cannot-check" else v
    return v


def _judge_scenes(text: str, claim: Claim, ctx: LayerContext) -> Verdict:
    if not ctx.scenes:
        return Verdict(text, "cannot-check", reason="the spec has no batchnorm, layernorm, dropout or weight "
                                                    "decay; claims about its dense layers are not read for "
                                                    "graph specs yet")
    if claim.relations and claim.relations[0] == "<-":
        claim = _as_update(claim)
    reasons, results = [], []
    for kind, scenes in ctx.scenes.items():
        try:
            mismatch, count = compare(claim, scenes)
        except (CannotRead, IndexError, KeyError, ZeroDivisionError) as exc:
            reasons.append(f"{TITLES[kind]}: {exc}")
            continue
        results.append((kind, scenes, mismatch, count))
    if not results:
        return Verdict(text, "cannot-check", reason=_why_not(reasons))
    for kind, _, mismatch, count in results:
        if mismatch is None:
            v = Verdict(text, "correct", method=METHOD, checked=count,
                        confidence=f"{count} comparisons agree at random points for sizes {SIZES} (high confidence)")
            if len(ctx.scenes) > 1:
                v.note = READ_AS[kind]
            return v
    kind, scenes, mismatch, count = results[0]
    return _incorrect(claim, text, kind, scenes, mismatch, count, len(ctx.scenes) > 1)


def _read_graph(text: str, ctx: LayerContext) -> Claim | None:
    """The claim in the graph documents' notation (g^{(l)} a quantity, g^{(l \\leftarrow c)}), or None."""
    lt = letters(ctx.notation, ctx.target.network)
    text = _VIA.sub(lambda m: f"^{{({m.group(1)})}}_{{{m.group(3)}{m.group(2)}}}", text)
    text = _BARE_SUB.sub(lambda m: f"{m.group(1)}_{{{m.group(2)}}}", text)
    text = _strip_text(text)
    text = _ADDS.sub(lambda m: f"{m['g']}^{{({m['src']})}}_{{{m['ij']}{m['via']}}} = "
                               f"{m['g']}^{{({m['via']})}}_{{{m['ij2']}}}", text)
    text = _IVERSON.sub(lambda m: f"\\delta_{{{m.group(1)}{m.group(2)}}}", text)  # [j = k]: Kronecker's delta
    quantities = {lt.g, "gamma", "beta", lt.out, lt.pre} | ({"h"} if lt.act != "h" else set())
    try:
        return parse_claim(prepare(text), frozenset({"ell"}), frozenset(quantities))
    except (ClaimSyntaxError, RecursionError):
        return None


def _strip_text(text: str) -> str:
    """The formula without its ``\\text{...}`` remarks (a chained row's labels)."""
    while True:
        k = text.find("\\text{")
        if k < 0:
            return text
        end = _braced(text, k + len("\\text"))
        text = text[:k] + " " + text[end:]


def _setting(text: str, claim: Claim, ctx: LayerContext) -> Verdict | None:
    """A hyper-parameter given a number, judged against the spec (never the random scenes)."""
    found = hyper_parameter(claim, ctx.target.network, ctx.notation)
    if found is None:
        return None
    verdict, what, value, written = found
    v = Verdict(text, verdict, method=f"spec: compared with {what} of the spec", checked=1,
                confidence="certain: a number of the spec")
    if verdict == "incorrect":
        v.diagnosis = f"{what} is {value:g} in the spec, not {written:g}"
        v.expected = f"{print_claim(Claim(text, (claim.sides[0],), ()))} = {value:g}"
    return v


def _judge_graph(text: str, claim: Claim, ctx: LayerContext) -> Verdict:
    """The claim judged on the whole network in the graph documents' notation."""
    net = ctx.target.network
    if claim.relations and claim.relations[0] == "<-":
        claim = as_update(claim, letters(ctx.notation, net))
        if claim is None:
            return Verdict(text, "cannot-check", reason="an update of a generic parameter (theta): "
                                                        "write it for one parameter, e.g. W^{(1)}_{jk}")
    try:
        compare = compare_matrix if is_matrix_form(claim) else compare_graph
        mismatch, count = compare(claim, net, ctx.notation)
    except (GraphCannotRead, IndexError, KeyError, ZeroDivisionError) as exc:
        return Verdict(text, "cannot-check", reason=f"not read for this network: {exc}")
    if mismatch is None:
        return Verdict(text, "correct", method=GRAPH_METHOD, checked=count,
                       confidence=f"{count} comparisons agree at random points (high confidence)")
    m = mismatch
    v = Verdict(text, "incorrect", method=GRAPH_METHOD, checked=count,
                confidence="certain: the counterexample shows the two sides differ")
    v.counterexample = {"indices": {k: x for k, x in m.env.items() if not k.startswith("#")},
                        "batch size": m.scene.B, "left": float(f"{m.left:.6g}"), "right": float(f"{m.right:.6g}"),
                        "compared": f"left: side 1; right: side {m.side + 1} of the claim"}
    whole = []
    for label, factor in (("a factor 1/B is missing: the loss is the mean over the B samples of the batch",
                           Bin("/", Num(Fraction(1)), Sym("B"), "frac")), ("a factor 1/B too many", Sym("B"))):
        sides = list(claim.sides)
        sides[m.side] = Bin("*", factor, Paren(sides[m.side]))
        whole.append((label, replace(claim, sides=tuple(sides))))
    for n, (label, fixed) in enumerate([*whole, *candidates(claim, m.side, "graph")]):
        if n >= 60:
            break
        try:
            if compare(fixed, net, ctx.notation)[0] is None:
                v.diagnosis, v.expected = label, print_claim(fixed, sqrt=True)
                break
        except (GraphCannotRead, IndexError, KeyError, ZeroDivisionError):
            continue
    else:
        v.diagnosis = "not one of the common mistakes (a factor or the sign of one term); compare both sides " \
                      "at the counterexample"
    if not v.diagnosis:
        v.diagnosis = "not one of the common mistakes (a factor or the sign of one term); compare both sides " \
                      "at the counterexample"
    return v


def _why_not(reasons: list[str]) -> str:
    """One reason for a claim no layer context reads."""
    if reasons and all("layer superscripts" in r for r in reasons):
        return ("a claim about a dense layer (a layer superscript): for a spec with layer kinds the checker reads "
                "the notation of batchnorm, layernorm, dropout and weight decay, not the dense layers' yet")
    return "; ".join(dict.fromkeys(reasons)) or "not a claim about these layers"


def _as_update(claim: Claim) -> Claim:
    """``w \\leftarrow rhs`` read as ``w - \\eta \\partial E/\\partial w = rhs`` (decay); any other
    ``a \\leftarrow b`` (the paper's Algorithm 1) as the definition ``a = b``."""
    lhs = claim.sides[0]
    if not (isinstance(lhs, Sym) and lhs.name in ("W", "w", "theta")):  # Algorithm 1's mu_B <- ...: a definition
        return replace(claim, relations=("=",) * len(claim.relations))
    step = Bin("-", lhs, Bin("*", Sym("eta"), Deriv(Sym("E"), lhs)))
    return replace(claim, sides=(step, *claim.sides[1:]), relations=("=",) * len(claim.relations))


def _incorrect(claim, text, kind, scenes, m: Mismatch, count, several) -> Verdict:
    v = Verdict(text, "incorrect", method=METHOD, checked=count,
                confidence="certain: the counterexample shows the two sides differ")
    v.counterexample = {"indices": dict(m.env), "size": m.scene.size, "layer": TITLES[kind],
                        "point": m.scene.describe(m.point), "left": float(f"{m.left:.6g}"),
                        "right": float(f"{m.right:.6g}"),
                        "compared": f"left: side 1; right: side {m.side + 1} of the claim"}
    found = diagnose_layers(claim, m.side, scenes)
    if found is not None:
        v.diagnosis, fixed = found
        v.expected = print_claim(fixed, sqrt=True)
    else:
        v.diagnosis = "not one of the common mistakes (a factor or the sign of one term); compare both sides " \
                      "at the counterexample"
    if several:
        v.note = READ_AS[kind]
    return v


# ----------------------------------------------------------------------------- diagnosis

HALF = Bin("/", Neg(Num(Fraction(1))), Num(Fraction(2)), "frac")
FACTORS: tuple[tuple[str, Node, str], ...] = (
    ("-1/2", HALF, ("the factor -1/2 of d/dsigma^2 (sigma_B^2 + epsilon)^{-1/2} = -1/2 (sigma_B^2 + epsilon)^{-3/2} "
                    "is missing")),
    ("-1", Num(Fraction(-1)), "sign: this term has the wrong sign"),
    ("1/m", Bin("/", Num(Fraction(1)), Sym("m"), "frac"), ("a factor 1/m is missing: mu_B and sigma_B^2 are means "
                                                            "over the m samples of the batch")),
    ("m", Sym("m"), "a factor 1/m too many (constant factor)"),
    ("gamma", Sym("gamma"), "gamma is missing: dy_i/dxhat_i = gamma"),
    ("1/gamma", Bin("/", Num(Fraction(1)), Sym("gamma"), "frac"), "a factor gamma too many"),
    ("1/2", Bin("/", Num(Fraction(1)), Num(Fraction(2)), "frac"), "a constant factor 1/2 is missing"),
    ("2", Num(Fraction(2)), "a constant factor 2 is missing (the derivative of a square)"),
    ("-2", Num(Fraction(-2)), "a constant factor -2 is missing"),
)


def _terms(node: Node) -> list[tuple[int, Node]]:
    """The additive terms of a side with their signs."""
    if isinstance(node, Bin) and node.op in "+-":
        right = _terms(node.right)
        return _terms(node.left) + ([(s if node.op == "+" else -s, t) for s, t in right])
    if isinstance(node, Paren) and not isinstance(node, Brackets) and isinstance(node.arg, Bin) \
            and node.arg.op in "+-":
        return _terms(node.arg)
    return [(1, node)]


def _join(terms: list[tuple[int, Node]]) -> Node:
    out = None
    for sign, t in terms:
        if out is None:
            out = t if sign > 0 else Neg(t)
        else:
            out = Bin("+" if sign > 0 else "-", out, t)
    return out


def _scaled(term: Node, factor: Node, label: str) -> Node:
    """``term`` times ``factor``, written where a reader would put it."""
    if label == "-1/2":
        for sub in _nodes(term):
            if isinstance(sub, Pow) and isinstance(sub.exp, Neg):  # beside (sigma^2 + eps)^{-3/2}
                return _replace(term, sub, Bin("*", factor, sub, "cdot"))
    if label == "-1":
        return Neg(Paren(term)) if isinstance(term, Bin) else Neg(term)
    if isinstance(term, SumOver):
        return SumOver(term.var, term.lower, term.upper, Bin("*", term.body, factor, "cdot"))
    return Bin("*", Paren(term) if isinstance(term, Bin) and term.op in "+-" else term, factor, "cdot")


def _replace(node: Node, old: Node, new: Node) -> Node:
    if node is old:
        return new
    if isinstance(node, Bin):
        return replace(node, left=_replace(node.left, old, new), right=_replace(node.right, old, new))
    if isinstance(node, (Neg, Paren)):
        return replace(node, arg=_replace(node.arg, old, new))
    if isinstance(node, Pow):
        return replace(node, base=_replace(node.base, old, new), exp=_replace(node.exp, old, new))
    if isinstance(node, SumOver):
        return replace(node, body=_replace(node.body, old, new))
    return node


def _kind_factors(kind: str, claim: Claim) -> tuple[tuple[str, Node, str], ...]:
    """Factors a reader forgets in one kind's formulas (the dropout mask and its scale)."""
    if kind != "dropout":
        return ()
    letters = free_letters(claim.sides[0]) or ["i"]
    keep = Paren(Bin("-", Num(Fraction(1)), Sym("p")))
    return (("mask", Sym("m", index=tuple(Idx(x) for x in letters[:1])),
             "the dropout mask m_i is missing: a dropped unit passes no gradient"),
            ("1/(1-p)", Bin("/", Num(Fraction(1)), keep, "frac"),
             "the inverted-dropout scale 1/(1-p) is missing"),
            ("1-p", keep, "a factor 1/(1-p) too many"))


def candidates(claim: Claim, side: int, kind: str = "batchnorm"):
    """(diagnosis, claim) for each one-factor or one-sign repair of a term of ``side``."""
    terms = _terms(claim.sides[side])
    several = len(terms) > 1
    used = {n.name for s in claim.sides for n in _nodes(s) if isinstance(n, (Sym, Idx))}
    size = next((x for x in SIZE_LETTERS.get(kind, ()) if x in used), "m")  # 1/H for a layer norm in H
    for label, factor, what in (*_kind_factors(kind, claim), *FACTORS):
        if label in ("1/m", "m"):
            factor = _replace(factor, factor.right if label == "1/m" else factor, Sym(size))
            what = what.replace("1/m", f"1/{size}")
            if kind == "graph" and label == "1/m":
                what = f"a factor 1/{size} is missing: the loss is the mean over the {size} samples of the batch"
            if kind == "layernorm" and label == "1/m":
                what = f"a factor 1/{size} is missing: mu and sigma^2 are means over the {size} units of the sample"
        for k, (sign, term) in enumerate(terms):
            new = list(terms)
            if label == "-1":
                new[k] = (-sign, term)
            else:
                new[k] = (sign, _scaled(term, factor, label))
            where = f" (term {k + 1} of the right side)" if several else ""
            sides = list(claim.sides)
            sides[side] = _join(new)
            yield what + where, replace(claim, sides=tuple(sides))
    if several:
        for k in range(len(terms)):
            sides = list(claim.sides)
            sides[side] = _join(terms[:k] + terms[k + 1:])
            yield f"term {k + 1} of the right side should not be there", replace(claim, sides=tuple(sides))
    letters = [x for x in free_letters(claim.sides[side]) if x not in free_letters(claim.sides[0])]
    if len(letters) == 1:
        sides = list(claim.sides)
        sides[side] = SumOver(letters[0], Num(Fraction(1)), Idx("m"), claim.sides[side])
        yield f"sum: index {letters[0]} appears on the right side only and is not summed", \
            replace(claim, sides=tuple(sides))


def diagnose_layers(claim: Claim, side: int, scenes: list[Scene]) -> tuple[str, Claim] | None:
    """The first repair that makes the claim correct, as (diagnosis, fixed claim), or None."""
    for label, fixed in candidates(claim, side, scenes[0].kind):
        try:
            if compare(fixed, scenes)[0] is None:
                return label, fixed
        except (CannotRead, IndexError, KeyError, ZeroDivisionError):
            continue
    return None


def check_layers(target: LayerClaims, text: str, notation: str | None = None) -> list[Verdict]:
    """Every claim of ``text`` (one per line) judged against the graph spec's layers."""
    from .lexer import split_claims

    ctx = layer_context(target, notation)
    out = []
    for n, line in enumerate(split_claims(text), start=1):
        v = judge_layers(line, ctx)
        v.line = n
        out.append(v)
    return out
