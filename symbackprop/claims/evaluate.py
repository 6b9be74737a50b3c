"""Numeric meaning of a claim: symbols resolved in a notation profile, evaluated at points.

Truth comes from the Derivation only: its deltas and gradients
(:class:`~symbackprop.engine.numeric.DerivedGradients`) and the registry's activations
and loss; derivatives that are not a delta or a gradient (``dE/do_j``,
``do_j/dnet_j``) are central finite differences of the forward pass.  Values are
2-D arrays (a scalar is 1x1, a vector a column).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache

import numpy as np
import sympy as sp

from ..engine.derive import Derivation
from ..engine.numeric import DerivedGradients
from ..errors import SymbackpropError
from ..registry import ops
from ..render.notation import Profile
from .nodes import Bin, Call, Deriv, Idx, Node, Num, Paren, SumOver, Sym, walk, weight_indices

MAX_BINDINGS = 400
FD_STEP = 1e-6


class CannotCheck(SymbackpropError):
    """A claim that reads fine but has no meaning on this network."""


class NoBinding(CannotCheck):
    """No layer of the network fits the claim's indices."""


class ShapeMismatch(CannotCheck):
    """An operation on matrices whose shapes do not fit."""


# ----------------------------------------------------------------------------- vocabulary

KINDS = {"W": "weight", "w": "weight", "b": "bias", "z": "z", "net": "z", "in": "z", "a": "a", "o": "a",
         "out": "a", "x": "x", "t": "target", "delta": "delta", "Delta": "delta", "E": "loss",
         "L": "loss", "C": "loss", "J": "loss", "ell": "loss", "Loss": "loss", "Cost": "loss",
         "alpha": "lr", "eta": "lr", "e": "euler", "Err": "err", "m": "batch",
         "Z": "z", "A": "a", "X": "x", "Y": "target", "onehot": "target", "kron": "kron", "ones": "ones",
         "B": "batch"}
UNIT_KINDS = {"weight", "bias", "z", "a", "x", "target", "output", "delta", "err"}
GENERIC_ACTIVATIONS = {"sigma", "varphi", "g", "f", "h"}
NAMED_ACTIVATIONS = {"sigmoid", "tanh", "relu", "softmax", "id"}
_ACTIVATION_OF = {"id": "identity"}  # the documents' \operatorname{id}
LOSS_NAMES = {"L", "E", "C", "J", "ell", "Loss", "Cost"}
SCORE_NAMES = {"f": "z", "p": "output"}
STEP_NAMES = {"DeltaW": "W", "Deltaw": "w", "Deltab": "b", "Deltatheta": "theta"}
GRADIENT_NAMES = {"dW": "W", "dw": "w", "db": "b", "dZ": "Z", "dz": "z", "dA": "A", "da": "a"}
_PROFILE_FIELDS = {"preactivation": "z", "activation_value": "a", "loss": "loss", "weight": "weight",
                   "bias": "bias", "input": "x", "delta": "delta", "learning_rate": "lr"}


def plain_name(tex: str) -> str:
    """``\\mathrm{net}`` -> ``net``, ``\\delta`` -> ``delta``, ``\\mathcal{L}`` -> ``L``."""
    m = re.fullmatch(r"\\[A-Za-z]+\{\\?([A-Za-z]+)\}", tex)
    return m.group(1) if m else tex.lstrip("\\")


@lru_cache(maxsize=32)
def profile_kinds(profile: Profile) -> dict[str, str]:
    """Symbol name -> kind in this profile (bishop's a is the pre-activation, z the activation)."""
    kinds = dict(KINDS)
    for fld, kind in _PROFILE_FIELDS.items():
        kinds[plain_name(getattr(profile, fld))] = kind
    return kinds


def kind_of(sym: Sym, profile: Profile) -> str:
    if sym.name == "y":
        if sym.hat or (profile.output_value == "y"):
            return "output"
        return "target"
    if sym.hat and sym.name not in profile_kinds(profile):
        return "free"
    if sym.name in GRADIENT_NAMES:
        return "grad"
    if sym.name in STEP_NAMES:
        return "step"
    if sym.name in SCORE_NAMES and sym.layer is None and sym.index is not None and len(sym.index) == 1:
        return SCORE_NAMES[sym.name]  # CS231n: f_k the class scores, p_k the probabilities
    if sym.name == plain_name(profile.target):
        return "target"
    return profile_kinds(profile).get(sym.name, "free")


def weight_order(sym: Sym, profile: Profile) -> str:
    """``to_from`` (W_{jk}: k -> j) or ``from_to`` (w_{kj}: k -> j), as the profile says."""
    return profile.weight_order


# ----------------------------------------------------------------------------- points

@dataclass
class Point:
    """One random evaluation point: parameters, input, target, learning rate and all truths."""

    params: dict
    x: np.ndarray
    t: np.ndarray
    alpha: float
    zs: list
    acts: list
    deltas: dict
    grads: dict
    loss: float
    free: dict = field(default_factory=dict)
    rng_seed: int = 0

    def free_value(self, name: str) -> float:
        if name not in self.free:
            seed = (self.rng_seed * 1000003 + sum(ord(c) * 31 ** i for i, c in enumerate(name))) % 2**32
            self.free[name] = float(np.random.default_rng(seed).normal(0.3, 0.8))
        return self.free[name]


class Truth:
    """The derivation's numbers at random points, and a forward pass that can be perturbed."""

    def __init__(self, derivation: Derivation, points: int = 4, seed: int = 0):
        self.d = derivation
        self.net = derivation.network
        self.sizes = self.net.sizes
        self.L = self.net.depth
        self.evaluator = DerivedGradients(derivation)
        self.numeric = self.evaluator.numeric
        self._f = {}
        rng = np.random.default_rng(seed)
        self.points = [self._point(rng, i) for i in range(points)]
        m = self.sizes[-1]
        a = sp.symbols(f"a:{m}", real=True)
        t = sp.symbols(f"t:{m}", real=True)
        self._loss = sp.lambdify([a, t], self.net.loss(a, t), modules="numpy")

    def _point(self, rng, i) -> Point:
        params, x, t = self.numeric.random_point(rng)
        deltas, acts = self.evaluator.deltas(params, x, t)
        zs, _ = self.numeric.forward(params, x)
        grads = self.evaluator.gradients(params, x, t)
        return Point(params, x, t, float(rng.uniform(0.05, 0.9)), zs, acts, deltas, grads,
                     self.numeric.loss(params, x, t), rng_seed=i + 1)

    def activation(self, l: int) -> ops.Activation:
        return self.net.layers[l - 1].activation

    def elementwise(self, act: ops.Activation, primes: int):
        key = (act.describe(), primes)
        if key not in self._f:
            if act.vector:
                raise CannotCheck("softmax has a Jacobian, not an element-wise derivative; "
                                  "write the output delta directly (a - y for cross-entropy)")
            expr = sp.diff(act.expr, ops.X, primes) if primes else act.expr
            self._f[key] = np.vectorize(sp.lambdify([ops.X], expr, modules="numpy"), otypes=[float])
        return self._f[key]

    batch_mode = False  # set while judging a claim in Ng's batch notation (Z, A, Y, dW, 1/m);
    # "rows" while judging it with one ROW per sample (bold z, a, delta; X is B x n_0; 1 a column of ones)
    forced = None  # an activation that generic names mean while a claim is tried per activation
    BATCH = 7  # unlike any layer width in the examples, so no product fits by accident

    def batch(self, point: Point) -> dict:
        """``BATCH`` examples at the point's parameters: columns of z, a, targets, deltas and
        dL/da per example, and the batch-mean gradients and loss (Ng's J)."""
        if "batch" in point.free:
            return point.free["batch"]
        rng = np.random.default_rng(1000 + point.rng_seed)
        xs, ts = [], []
        for _ in range(self.BATCH):
            _, x, t = self.numeric.random_point(rng)
            xs.append(x)
            ts.append(t)
        cols = {"Z": {}, "A": {}, "dZ": {}, "dA": {}}
        grads, losses = [], []
        for x, t in zip(xs, ts):
            zs, acts = self.numeric.forward(point.params, x)
            deltas, _ = self.evaluator.deltas(point.params, x, t)
            grads.append(self.evaluator.gradients(point.params, x, t))
            losses.append(self.numeric.loss(point.params, x, t))
            for l in range(self.L + 1):
                cols["A"].setdefault(l, []).append(np.ravel(acts[l]))
                if l >= 1:
                    cols["Z"].setdefault(l, []).append(np.ravel(zs[l]))
                    cols["dZ"].setdefault(l, []).append(np.ravel(deltas[l]))
            for l in range(1, self.L + 1):
                if l < self.L:
                    da = point.params[f"W{l + 1}"].T @ np.ravel(deltas[l + 1])
                else:
                    a, h = np.ravel(acts[l]).astype(float), 1e-6
                    da = np.array([(self.loss_value(a + h * e, t) - self.loss_value(a - h * e, t)) / (2 * h)
                                   for e in np.eye(len(a))])
                cols["dA"].setdefault(l, []).append(da)
        out = {k: {l: np.column_stack(v) for l, v in d.items()} for k, d in cols.items()}
        out["Y"] = np.column_stack([np.ravel(t) for t in ts])
        out["grads"] = {k: sum(g[k] for g in grads) / self.BATCH for k in grads[0]}
        out["J"] = float(np.mean(losses))
        point.free["batch"] = out
        return out

    def loss_value(self, a: np.ndarray, t: np.ndarray) -> float:
        return float(self._loss(list(np.ravel(a)), list(np.ravel(t))))

    def forward(self, point: Point, key: tuple, value: float) -> dict:
        """z, a and E with one quantity (parameter, input, target, z or a) set to ``value``."""
        params = {k: v.copy() for k, v in point.params.items()}
        x, t = point.x.copy(), point.t.copy()
        kind = key[0]
        if kind == "W":
            params[f"W{key[1]}"][key[2] - 1, key[3] - 1] = value
        elif kind == "b":
            params[f"b{key[1]}"][key[2] - 1] = value
        elif kind == "x" or (kind == "a" and key[1] == 0):
            x[key[-1] - 1] = value
        elif kind == "t":
            t[key[1] - 1] = value
        zs, acts = [None], [x]
        for l in range(1, self.L + 1):
            z = params[f"W{l}"] @ acts[-1]
            if f"b{l}" in params:
                z = z + params[f"b{l}"]
            if kind == "z" and key[1] == l:
                z[key[2] - 1] = value
            act = self.activation(l)
            if act.vector:
                e = np.exp(z - z.max())
                a = e / e.sum()
            else:
                a = np.asarray(self.elementwise(act, 0)(z), dtype=float)
            if kind == "a" and key[1] == l:
                a = a.copy()
                a[key[2] - 1] = value
            zs.append(z)
            acts.append(a)
        return {"z": zs, "a": acts, "E": self.loss_value(acts[-1], t)}


# ----------------------------------------------------------------------------- bindings

@dataclass(frozen=True)
class Binding:
    units: tuple  # ((letter, unit), ...)
    layers: tuple  # ((letter, layer), ...)

    def unit(self, name):
        return dict(self.units).get(name)

    def layer(self, name):
        return dict(self.layers).get(name)

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.units)


def _letters(node: Node) -> set[str]:
    return {n.name for n in walk(node) if isinstance(n, Idx)}


def _layer_letters(node: Node) -> set[str]:
    return {n.name for n in walk(node) if isinstance(n, Idx)}


def _index_letters(sides, profile) -> tuple[set[str], set[str], set[str]]:
    """(free index letters, summed letters, layer letters) of a claim."""
    index, summed, layers = set(), set(), set()
    for side in sides:
        for n in walk(side):
            if isinstance(n, Sym):
                if n.layer is not None:
                    layers |= _layer_letters(n.layer) - {"L"}
                for i in n.index or ():
                    if isinstance(i, Idx):
                        index.add(i.name)
                    else:
                        layers |= set()
            elif isinstance(n, SumOver):
                summed.add(n.var)
    return index - summed, summed, layers - index - summed


class Resolver:
    """Resolves symbols to quantities and enumerates the index values of a claim."""

    def __init__(self, truth: Truth, profile: Profile):
        self.truth, self.profile = truth, profile
        self.L, self.sizes = truth.L, truth.sizes

    # -- layers of symbols
    def int_value(self, node: Node, layers: dict, units: dict | None = None) -> int:
        if isinstance(node, Num):
            if node.value.denominator != 1:
                raise CannotCheck(f"index {node.value} is not a whole number")
            return int(node.value)
        if isinstance(node, Idx):
            if node.name == "L":
                return self.L
            if units is not None and node.name in units:
                return units[node.name]
            if node.name in layers:
                return layers[node.name]
            raise KeyError(node.name)
        if isinstance(node, Paren):
            return self.int_value(node.arg, layers, units)
        if _is_width(node):
            return self.width(node, layers)
        if isinstance(node, Bin) and node.op in "+-":
            a, b = self.int_value(node.left, layers, units), self.int_value(node.right, layers, units)
            return a + b if node.op == "+" else a - b
        raise CannotCheck("an index or layer must be a letter, a number or a sum such as l+1")

    def width(self, node: Sym, layers: dict) -> int:
        """``n_{1}``, ``n_{l}``: the number of units of a layer (the documents' notation)."""
        l = self.int_value(node.index[0], layers)
        if not 0 <= l <= self.L:
            raise CannotCheck(f"the network has no layer {l} for n_{{{l}}}")
        return self.sizes[l]

    def unit_layers(self, sym: Sym, kind: str, layers: dict) -> list[tuple[Node, int | None]]:
        """(index node, the layer its unit lies in) for each index of ``sym``."""
        idx = list(sym.index or ())
        given = self.int_value(sym.layer, layers) if sym.layer is not None else None
        if kind == "weight":
            idx = weight_indices(sym.index)
            if len(idx) != 2:
                raise CannotCheck(f"a weight needs two indices, got {len(idx)}")
            to, frm = (idx[0], idx[1]) if weight_order(sym, self.profile) == "to_from" else (idx[1], idx[0])
            if given is None:
                given = self._layer_of(to, layers)
                if given is None:
                    below = self._layer_of(frm, layers)
                    given = None if below is None else below + 1
            return [(to, given), (frm, None if given is None else given - 1)]
        if len(idx) != 1:
            raise CannotCheck(f"{sym.name} takes one index, got {len(idx)}")
        if given is None and sym.name in SCORE_NAMES:
            given = self.L
        if given is None:
            fixed = {"x": 0, "target": self.L, "output": self.L, "err": self.L}.get(kind)
            given = fixed if fixed is not None else self._layer_of(idx[0], layers)
        return [(idx[0], given)]

    def _layer_of(self, node, layers):
        return layers.get(node.name) if isinstance(node, Idx) else None

    def layers_ok(self, sides, layers: dict) -> bool:
        for side in sides:
            for n in walk(side):
                if not self._call_layer_ok(n, layers):
                    return False
                if isinstance(n, Sym) and n.index is None and n.layer is not None \
                        and not self._whole_layer_ok(n, layers):
                    return False
                if not isinstance(n, Sym) or n.index is None:
                    continue
                kind = kind_of(n, self.profile)
                if kind in ("grad", "step"):
                    n = Sym({**GRADIENT_NAMES, **STEP_NAMES}[n.name], n.layer, n.index)
                    kind = kind_of(n, self.profile)
                if kind not in UNIT_KINDS:
                    continue
                try:
                    pairs = self.unit_layers(n, kind, layers)
                except KeyError:
                    return False
                for node, layer in pairs:
                    if layer is None:
                        raise CannotCheck(f"cannot tell the layer of {n.name} with concrete indices; "
                                          f"give it, e.g. {n.name}^{{(1)}}")
                    if not 0 <= layer <= self.L:
                        return False
                    if isinstance(node, Idx) and layers.get(node.name) != layer:
                        return False
                lowest = {"weight": 1, "bias": 1, "z": 1, "delta": 1}.get(kind, 0)
                top = pairs[0][1]
                if top < lowest:
                    return False
                if kind == "bias" and not self.truth.net.layers[top - 1].bias:
                    return False
        return True

    def _call_layer_ok(self, node: Node, layers: dict) -> bool:
        """``g_{2}'(in_j)``: the layer written on a function is the layer of its argument's unit j."""
        if not isinstance(node, Call) or node.layer is None or len(node.args) != 1:
            return True
        arg = node.args[0]
        if not isinstance(arg, Sym) or arg.layer is not None or not arg.index or len(arg.index) != 1 \
                or not isinstance(arg.index[0], Idx) or kind_of(arg, self.profile) not in ("z", "a"):
            return True
        try:
            return layers.get(arg.index[0].name) == self.int_value(node.layer, layers)
        except (KeyError, CannotCheck):
            return True

    def _whole_layer_ok(self, sym: Sym, layers: dict) -> bool:
        """A whole layer ``W^{l}``, ``\\delta^{l}``: its layer letter stands for a layer that has it."""
        kind = kind_of(sym, self.profile)
        if kind in ("grad", "step"):
            kind = kind_of(Sym({**GRADIENT_NAMES, **STEP_NAMES}[sym.name]), self.profile)
        if kind not in UNIT_KINDS:
            return True
        try:
            layer = self.int_value(sym.layer, layers)
        except KeyError:
            return False
        lowest = 1 if kind in ("weight", "bias", "z", "delta") else 0
        if not lowest <= layer <= self.L:
            return not _letters(sym.layer) and self._no_such_layer(sym, layer)
        return not (kind == "bias" and not self.truth.net.layers[layer - 1].bias)

    def _no_such_layer(self, sym: Sym, layer: int) -> bool:
        raise CannotCheck(f"the {self.truth.net.architecture} network has no layer {layer} for "
                          f"{sym.name}^{{({layer})}} (layers 1 to {self.L}; 0 is the input)")

    def bindings(self, sides, notes=()) -> list[Binding]:
        """Every valid (layer, unit) assignment of the claim's letters; remarks such as
        ``\\text{(output layer)}``, ``(first layer)`` or ``(hidden layer)`` restrict the layers."""
        free, summed, layer_vars = _index_letters(sides, self.profile)
        remark = " ".join(notes).lower()
        allowed = range(self.L + 1)
        if re.search(r"output (layer|neuron|unit|node)", remark):
            allowed = [self.L]
        elif re.search(r"input (layer|unit)", remark):
            allowed = [0]
        elif "first layer" in remark:
            allowed = [1]
        elif re.search(r"hidden|inner", remark):
            allowed = range(1, self.L)
        letters = sorted(free | summed | layer_vars)
        if len(letters) > 6:
            raise CannotCheck("more than 6 index letters; split the claim")
        out: list[Binding] = []
        for combo in itertools.product(range(self.L + 1), repeat=len(letters)):
            layers = dict(zip(letters, combo))
            if any(layers[v] not in allowed for v in free):
                continue
            if not self.layers_ok(sides, layers):
                continue
            ranges = [range(1, self.sizes[layers[v]] + 1) for v in sorted(free)]
            for units in itertools.product(*ranges):
                out.append(Binding(tuple(zip(sorted(free), units)), tuple(sorted(layers.items()))))
                if len(out) > MAX_BINDINGS:
                    return out
        if not out:
            raise NoBinding(f"no layer of this {self.truth.net.architecture} network fits the indices of "
                              "this claim (a transposed index, or one letter used for units of two layers?)")
        return out


# ----------------------------------------------------------------------------- evaluation

def _is_width(node: Node) -> bool:
    """``n_{0}``, ``n_{l}``: a layer's width, as the generated documents write it."""
    return isinstance(node, Sym) and node.name == "n" and node.layer is None and not node.hat \
        and node.index is not None and len(node.index) == 1 and isinstance(node.index[0], (Num, Idx))


def _arr(v) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    return a


def _is_scalar(a: np.ndarray) -> bool:
    return a.shape == (1, 1)


def _shape(a) -> str:
    return f"{a.shape[0]}x{a.shape[1]}"


def multiply(a: np.ndarray, b: np.ndarray, elementwise: bool = False) -> np.ndarray:
    """Scalar scaling, else the matrix product when the inner sizes fit, else element-wise."""
    if _is_scalar(a) or _is_scalar(b):
        return a * b
    if not elementwise and a.shape[1] == b.shape[0]:
        return a @ b
    if a.shape == b.shape:
        return a * b
    raise ShapeMismatch(f"cannot multiply a {_shape(a)} by a {_shape(b)} matrix")


class Evaluator:
    """Evaluates claim trees at one point under one binding."""

    def __init__(self, truth: Truth, profile: Profile, signs: dict, point: Point, binding: Binding,
                 overrides: dict | None = None, notes: set | None = None):
        self.truth, self.profile, self.signs = truth, profile, signs
        self.notes = notes
        self.point, self.binding = point, binding
        self.units = dict(binding.units)
        self.layers = dict(binding.layers)
        self.overrides = overrides or {}
        self.resolver = Resolver(truth, profile)

    def sub(self, units=None, overrides=None) -> Evaluator:
        ev = Evaluator(self.truth, self.profile, self.signs, self.point, self.binding,
                       overrides if overrides is not None else self.overrides, self.notes)
        ev.units = units if units is not None else self.units
        ev.layers = self.layers
        return ev

    # -- symbols to keys
    def key(self, sym: Sym) -> tuple:
        """The quantity a symbol names: ('W', l, j, k), ('a', l, j), ('Wm', l), ('loss',), ..."""
        if sym.example is not None:
            return ("example", self.key(replace(sym, example=None)), sym.example.name)
        kind = kind_of(sym, self.profile)
        if kind in ("loss", "lr", "euler", "batch", "ones"):
            return (kind,)
        if kind in ("grad", "step"):
            names = GRADIENT_NAMES if kind == "grad" else STEP_NAMES
            base = Sym(names[sym.name], sym.layer, sym.index, False, sym.layer_parens)
            return (kind, self.key(base))
        if kind == "free" or (kind in ("z", "a", "weight", "bias", "delta") and sym.layer is None
                              and sym.index is None):
            return ("free", sym.name + ("^" if sym.hat else ""))
        if sym.name in SCORE_NAMES and kind in ("z", "output") and sym.index and sym.layer is None:
            sym = Sym(sym.name, Num(Fraction(self.truth.L)), sym.index)
        if sym.index is None:
            l = self.resolver.int_value(sym.layer, self.layers) if sym.layer is not None else None
            if kind in ("x", "target", "output", "err"):
                l = {"x": 0}.get(kind, self.truth.L) if l is None else l
            return self._single_unit((kind + "_all", l, sym.name))
        pairs = self.resolver.unit_layers(sym, kind, self.layers)
        units = [self.resolver.int_value(node, self.layers, self.units) for node, _ in pairs]
        layer = pairs[0][1]
        for (node, lay), u in zip(pairs, units):
            if not 1 <= u <= self.truth.sizes[lay]:
                raise CannotCheck(f"no unit {u} in layer {lay} of the {self.truth.net.architecture} network")
        if kind == "weight":
            return ("W", layer, units[0], units[1])
        if kind == "bias":
            return ("b", layer, units[0])
        if kind in ("a", "output") or (kind == "x"):
            return ("a", layer, units[0])
        if kind == "target":
            return ("t", units[0])
        if kind == "err":
            return ("err", units[0])
        if kind == "delta":
            return ("delta", layer, units[0], sym.name)
        return (kind, layer, units[0])

    def _single_unit(self, key: tuple) -> tuple:
        """A whole-layer key of a one-unit layer, as the unit's own key (y for a_1^{(L)})."""
        kind, l, name = key
        if name in ("Z", "A", "X", "Y") and self.truth.batch_mode or self.truth.batch_mode == "rows":
            return key
        if l is None or not 0 <= l <= self.truth.L or self.truth.sizes[l] != 1:
            return key
        base = kind[:-4]
        if base in ("a", "x", "output"):
            return ("a", l, 1)
        if base == "target":
            return ("t", 1)
        if base == "err":
            return ("err", 1)
        if base == "z" and l >= 1:
            return ("z", l, 1)
        if base == "bias" and l >= 1 and self.truth.net.layers[l - 1].bias:
            return ("b", l, 1)
        if base == "delta" and l >= 1:
            return ("delta", l, 1, name)
        return key

    def value_of_key(self, key: tuple) -> np.ndarray:
        if key in self.overrides:
            return _arr(self.overrides[key])
        p, kind = self.point, key[0]
        if kind == "loss":
            return _arr(p.loss)
        if kind == "lr":
            return _arr(p.alpha)
        if kind == "euler":
            return _arr(math.e)
        if kind == "batch":
            return _arr(float(self.truth.BATCH) if self.truth.batch_mode else 1.0)
        if kind == "ones":  # a column of ones: B of them in the row form, else any length (a scalar 1)
            return np.ones((self.truth.BATCH, 1)) if self.truth.batch_mode == "rows" else _arr(1.0)
        if kind == "example":
            return self._example_value(key)
        if self.truth.batch_mode:
            batch = self._batch_value(key)
            if batch is not None:
                return batch
        if kind == "grad":
            return self.network_partial(("loss",), key[1])
        if kind == "step":
            return -p.alpha * self.network_partial(("loss",), key[1])
        if kind == "err":
            return _arr(p.t[key[1] - 1] - p.acts[-1][key[1] - 1])
        if kind == "free":
            return _arr(p.free_value(key[1]))
        if kind == "W":
            return _arr(p.params[f"W{key[1]}"][key[2] - 1, key[3] - 1])
        if kind == "b":
            return _arr(p.params[f"b{key[1]}"][key[2] - 1])
        if kind == "z":
            return _arr(p.zs[key[1]][key[2] - 1])
        if kind == "a":
            return _arr(p.acts[key[1]][key[2] - 1])
        if kind == "t":
            return _arr(p.t[key[1] - 1])
        if kind == "delta":
            return _arr(self.signs.get(key[3], 1) * p.deltas[key[1]][key[2] - 1])
        l = key[1]
        if l is None:
            raise CannotCheck(f"{key[2]} needs a layer, e.g. {key[2]}^{{(1)}}")
        if not 0 <= l <= self.truth.L:
            raise CannotCheck(f"the network has no layer {l}")
        base = kind[:-4]
        if base == "weight":
            return _arr(p.params[f"W{l}"])
        if base == "bias":
            if f"b{l}" not in p.params:
                raise CannotCheck(f"layer {l} has no bias")
            return _arr(p.params[f"b{l}"])
        if base == "z":
            return _arr(p.zs[l])
        if base in ("a", "x", "output"):
            return _arr(p.acts[l])
        if base == "target":
            return _arr(p.t)
        if base == "err":
            return _arr(p.t - p.acts[-1])
        if base == "delta":
            return _arr(self.signs.get(key[2], 1) * p.deltas[l])
        raise CannotCheck(f"{key} has no value")

    def _row_value(self, b: dict, base: str, l: int | None, name: str) -> np.ndarray | None:
        """The row form: one row per sample of the batch (the transpose of Ng's columns)."""
        if base == "target":
            return b["Y"].T
        if base not in ("z", "a", "x", "output", "delta"):
            return None
        if l is None or not 0 <= l <= self.truth.L:
            raise CannotCheck(f"the network has no layer {l}")
        if base == "delta":
            return self.signs.get(name, 1) * b["dZ"][l].T
        return b["Z"][l].T if base == "z" else b["A"][l].T

    def _example_value(self, key: tuple) -> np.ndarray:
        """``x^{(i)}``, ``dz^{[1](i)}``: one example's column of the batch."""
        if not self.truth.batch_mode:
            raise CannotCheck("an example superscript (i) needs a sum over the m examples")
        b, base, letter = self.truth.batch(self.point), key[1], key[2]
        u = self.units.get(letter)
        if u is None or not 1 <= u <= self.truth.BATCH:
            raise CannotCheck(f"example {letter} is not summed over the m examples")
        grad = base[0] == "grad"
        if grad:
            base = base[1]
        kind = base[0].removesuffix("_all")
        table = {("a", False): "A", ("x", False): "A", ("output", False): "A", ("z", False): "Z",
                 ("z", True): "dZ", ("a", True): "dA"}
        if kind in ("t", "target"):
            col = b["Y"][:, u - 1]
        elif (kind, grad) in table:
            layer = base[1] if base[1] is not None else (0 if kind == "x" else self.truth.L)
            col = b[table[(kind, grad)]][layer][:, u - 1]
        else:
            raise CannotCheck("only x, y, z, a and their gradients can carry an example superscript")
        if len(base) >= 3 and isinstance(base[-1], int) and not base[0].endswith("_all"):
            return _arr(col[base[-1] - 1])
        return _arr(col)

    def _batch_value(self, key: tuple) -> np.ndarray | None:
        """Ng's batch quantities: Z, A, X, Y (one column per example), dZ, dA (per example),
        dW, db (the batch mean of the gradients) and J (the mean loss)."""
        b = self.truth.batch(self.point)
        kind = key[0]
        if kind == "loss":
            return _arr(b["J"])
        if self.truth.batch_mode == "rows" and kind.endswith("_all") and len(key) == 3:
            return self._row_value(b, kind[:-4], key[1], key[2])
        if kind.endswith("_all") and len(key) == 3 and key[2] in ("Z", "A", "X", "Y"):
            l = key[1]
            if key[2] == "Y":
                return b["Y"]
            if l is None or not 0 <= l <= self.truth.L:
                raise CannotCheck(f"the network has no layer {l}")
            return b["Z"][l] if key[2] == "Z" else b["A"][l]
        if kind == "grad" and key[1][0] in ("W", "b"):
            base = key[1]
            g = b["grads"][f"{base[0]}{base[1]}"]
            return _arr(g[base[2] - 1, base[3] - 1] if base[0] == "W" else g[base[2] - 1])
        if kind == "grad" and key[1][0].endswith("_all"):
            base = key[1]
            l = base[1]
            if base[0] == "weight_all":
                return _arr(b["grads"][f"W{l}"])
            if base[0] == "bias_all":
                return _arr(b["grads"][f"b{l}"])
            if base[0] == "z_all" and base[2] == "Z":
                return b["dZ"][l]
            if base[0] == "a_all" and base[2] == "A":
                return b["dA"][l]
        return None

    # -- evaluation
    def eval(self, node: Node) -> np.ndarray:
        method = getattr(self, "_eval_" + type(node).__name__)
        return method(node)

    def _eval_Num(self, node):
        return _arr(float(node.value))

    def _eval_Idx(self, node):
        if node.name in self.units:
            return _arr(self.units[node.name])
        return _arr(self.point.free_value(node.name))

    def _eval_Sym(self, node):
        if _is_width(node):
            return _arr(float(self.resolver.width(node, self.layers)))
        if node.name == "kron" and node.index and len(node.index) == 2:
            a, b = (self.resolver.int_value(i, self.layers, self.units) for i in node.index)
            return _arr(1.0 if a == b else 0.0)
        return self.value_of_key(self.key(node))

    def _eval_Paren(self, node):
        return self.eval(node.arg)

    _eval_Brackets = _eval_Paren

    def _eval_Neg(self, node):
        return -self.eval(node.arg)

    def _eval_Transpose(self, node):
        return self.eval(node.arg).T

    def _eval_Pow(self, node):
        base, exp = self.eval(node.base), self.eval(node.exp)
        if not _is_scalar(exp):
            raise ShapeMismatch("an exponent must be a number")
        if not abs(exp[0, 0]) <= 64:
            raise CannotCheck(f"exponent {exp[0, 0]:.3g} is outside [-64, 64]; no backpropagation formula needs it")
        with np.errstate(all="ignore"):
            return np.power(base, exp[0, 0])

    def _eval_Bin(self, node):
        a, b = self.eval(node.left), self.eval(node.right)
        with np.errstate(all="ignore"):
            if node.op in "+-":
                column = a.shape[0] == b.shape[0] and 1 in (a.shape[1], b.shape[1])  # Z = W A + b
                if a.shape != b.shape and not (_is_scalar(a) or _is_scalar(b) or column and self.truth.batch_mode):
                    raise ShapeMismatch(f"cannot add a {_shape(a)} and a {_shape(b)} matrix")
                return a + b if node.op == "+" else a - b
            if node.op == "/":
                if not _is_scalar(b) and a.shape != b.shape:
                    raise ShapeMismatch(f"cannot divide a {_shape(a)} by a {_shape(b)} matrix")
                return a / b
            if node.op != "odot" and not (_is_scalar(a) or _is_scalar(b)) and a.shape[1] != b.shape[0] \
                    and a.shape == b.shape:
                written = {"cdot": "\\cdot", "times": "\\times", "*": "*"}.get(node.spelled, "a product written side by side")
                self.note(f"read {written} as elementwise (only that fits the shapes); write \\odot")
            return multiply(a, b, elementwise=node.op == "odot")

    def _eval_SumOver(self, node):
        if isinstance(node.upper, (Idx, Sym)) and node.upper.name == "m":  # a sum over the examples
            total = None
            for u in range(1, (self.truth.BATCH if self.truth.batch_mode else 1) + 1):
                v = self.sub(units={**self.units, node.var: u}).eval(node.body)
                total = v if total is None else total + v
            return total
        layer = self.layers.get(node.var)
        if layer is None:
            raise CannotCheck(f"cannot tell which layer the sum index {node.var} runs over")
        size = self.truth.sizes[layer]
        lo = 1 if node.lower is None else self.resolver.int_value(node.lower, self.layers, self.units)
        if node.upper is None or (isinstance(node.upper, Idx) and node.upper.name not in self.units
                                  and node.upper.name not in self.layers):
            hi = size
        else:
            hi = self.resolver.int_value(node.upper, self.layers, self.units)
        if lo < 1 or hi > size:
            raise CannotCheck(f"the sum over {node.var} runs from {lo} to {hi}, outside the {size} units "
                              f"of layer {layer}")
        total = None
        for u in range(lo, hi + 1):
            units = dict(self.units)
            units[node.var] = u
            v = self.sub(units=units).eval(node.body)
            total = v if total is None else total + v
        return total if total is not None else _arr(0.0)

    def activation_layer(self, arg: Node) -> int | None:
        """The layer whose activation a call applies: that of a z (or, for the slip sigma'(a),
        an a) given as the argument, else of the weights and biases inside it, else one above
        the activations inside it; None for a free variable (sigma(z) with no layer)."""
        found: dict[str, int] = {}
        for n in walk(arg):
            if not isinstance(n, Sym):
                continue
            kind = kind_of(n, self.profile)
            if kind not in ("z", "a", "output", "x", "weight", "bias"):
                continue
            try:
                key = self.key(n)
                layer = key[1] if len(key) > 1 else None
            except (CannotCheck, KeyError):  # a summed index: the layer its letter runs over
                try:
                    key, layer = (kind,), self.resolver.unit_layers(n, kind, self.layers)[0][1]
                except (CannotCheck, KeyError):
                    continue
                key = ({"weight": "W", "bias": "b"}.get(kind, kind),)
            if key[0] == "free" or not isinstance(layer, int):
                continue
            if layer is None:
                continue
            slot = {"z": "z", "z_all": "z", "W": "wb", "b": "wb", "weight_all": "wb", "bias_all": "wb"}.get(key[0], "a")
            found.setdefault(slot, layer)
        if isinstance(arg, Sym) and "a" in found and found["a"] >= 1:
            return found["a"]
        for slot, shift in (("z", 0), ("wb", 0), ("a", 1)):
            if slot in found and 1 <= found[slot] + shift <= self.truth.L:
                return found[slot] + shift
        return None

    def function_of(self, node: Call) -> ops.Activation:
        """The activation a call names.  sigmoid, tanh, ReLU, softmax mean themselves; sigma
        means the sigmoid, except in a profile that writes sigma for any activation (seed),
        where it is the layer's own activation; f, g, h, phi are the layer's activation.  With
        no layer to go by, a generic name is the network's activation when all layers share
        one (sigma: the sigmoid)."""
        name = node.func
        if name in NAMED_ACTIVATIONS:
            return ops.activation(_ACTIVATION_OF.get(name, name))
        layer = self.activation_layer(node.args[0])
        if layer is None and node.layer is not None:
            layer = self.resolver.int_value(node.layer, self.layers)
            if not 1 <= layer <= self.truth.L:
                raise CannotCheck(f"the network has no layer {layer}")
        generic = name != "sigma" or plain_name(self.profile.activation) == "sigma"
        if layer is not None and name == "h" and self.profile.name == "bishop" and layer == self.truth.L > 1 \
                and node.layer is None:
            layer = self.truth.L - 1  # Bishop's h is the hidden units' activation (outputs have their own)
            self.note("read h as the hidden units' activation, as Bishop does")
        if layer is not None:
            act = self.truth.activation(layer)
            if name == "sigma" and act.name != "sigmoid":
                if not generic:
                    return ops.activation("sigmoid")
                self.note(f"read \\sigma as layer {layer}'s activation ({act.name}), as the "
                          f"{self.profile.name} profile does")
            return act
        if name == "sigma":
            return ops.activation("sigmoid")
        if getattr(self.truth, "forced", None) is not None:
            return self.truth.forced
        names = {layer.activation.describe() for layer in self.truth.net.layers}
        if len(names) == 1:
            return self.truth.activation(1)
        raise CannotCheck("the network's layers use different activations; write the argument with "
                          "its layer, e.g. \\sigma'(z^{(1)}_j)")

    def note(self, text: str) -> None:
        if self.notes is not None:
            self.notes.add(text)

    def _eval_Call(self, node):
        name = node.func
        if name in LOSS_NAMES:
            return self._loss_call(node)
        if name == "max" and len(node.args) == 2:
            return np.maximum(*(self.eval(a) for a in node.args))
        if len(node.args) != 1:
            raise CannotCheck(f"{name} takes one argument")
        arg = node.args[0]
        if name == "diag":
            return np.diag(np.ravel(self.eval(arg)))
        if name == "step":
            return (self.eval(arg) > 0).astype(float)
        if name in ("normsq", "rowsum"):
            v = self.eval(arg)
            return _arr(np.sum(v * v)) if name == "normsq" else v.sum(axis=1, keepdims=True)
        if name in ("exp", "log"):
            if node.primes:
                raise CannotCheck(f"write the derivative of {name} out")
            v = self.eval(arg)
            with np.errstate(all="ignore"):
                return np.exp(v) if name == "exp" else np.log(v)
        if name not in GENERIC_ACTIVATIONS and name not in NAMED_ACTIVATIONS:
            raise CannotCheck(f"unknown function {name}")
        act = self.function_of(node)
        if node.primes == 0 and isinstance(arg, Sym) and kind_of(arg, self.profile) == "z" \
                and not (self.truth.batch_mode and arg.name == "Z"):
            key = self.key(arg)
            layer_act = self.truth.activation(key[1]) if key[0] in ("z", "z_all") and 1 <= key[1] <= self.truth.L \
                else None
            same = layer_act is not None and layer_act.describe() == act.describe()
            if key[0] == "z" and key not in self.overrides and same:
                return self.value_of_key(("a", key[1], key[2]))
            if key[0] == "z_all" and same:
                return self.value_of_key(("a_all", key[1], "a"))
        v = self.eval(arg)
        if act.vector:
            if node.primes:
                self.truth.elementwise(act, node.primes)
            e = np.exp(v - v.max())
            return e / e.sum()
        with np.errstate(all="ignore"):
            return _arr(self.truth.elementwise(act, node.primes)(v))

    def _loss_call(self, node):
        if len(node.args) != 2:
            raise CannotCheck("the loss takes two arguments, L(t, y)")
        kinds = [kind_of(a, self.profile) if isinstance(a, Sym) else "" for a in node.args]
        first, second = (self.eval(a) for a in node.args)
        target, out = (first, second) if kinds[0] == "target" or kinds[1] == "output" else (second, first)
        return _arr(self.truth.loss_value(out, target))

    def _eval_Deriv(self, node):
        wrt_sym = node.wrt
        if isinstance(wrt_sym, Sym) and wrt_sym.layer is None and wrt_sym.index is None \
                and kind_of(wrt_sym, self.profile) in ("a", "z") and isinstance(node.num, Sym) \
                and kind_of(node.num, self.profile) == "loss":
            self.note(f"read {wrt_sym.name} without a layer as the output layer's")
            node = Deriv(node.num, Sym(wrt_sym.name, Idx("L"), None, wrt_sym.hat, False), node.body, node.spelled)
        if not isinstance(node.wrt, Sym):
            raise CannotCheck("differentiate with respect to one quantity, e.g. \\partial w_{ij}")
        wrt = self.key(node.wrt)
        if node.body is not None or not isinstance(node.num, Sym):
            return self._partial_of_expression(node.body if node.body is not None else node.num, wrt)
        if node.num.name in GENERIC_ACTIVATIONS and node.num.index is None:
            return self._eval_Call(Call(node.num.name, (node.wrt,), 1))
        num = self.key(node.num)
        return self.network_partial(num, wrt)

    def _partial_of_expression(self, expr: Node, wrt: tuple) -> np.ndarray:
        if wrt[0].endswith("_all"):
            raise CannotCheck("differentiate an expression with respect to one scalar quantity")
        v = float(self.value_of_key(wrt)[0, 0])
        h = FD_STEP * (1 + abs(v))
        up = self.sub(overrides={**self.overrides, wrt: v + h}).eval(expr)
        down = self.sub(overrides={**self.overrides, wrt: v - h}).eval(expr)
        return (up - down) / (2 * h)

    def network_partial(self, num: tuple, wrt: tuple) -> np.ndarray:
        """d num / d wrt through the network (every other input held fixed)."""
        p = self.point
        if num[0] == "loss" and self.truth.batch_mode == "rows" and wrt[0] in ("W", "b", "weight_all", "bias_all"):
            return self._batch_value(("grad", wrt))
        if num[0] == "loss":
            if wrt[0] in ("W", "b"):
                name = f"{wrt[0]}{wrt[1]}"
                return _arr(p.grads[name][wrt[2] - 1, wrt[3] - 1] if wrt[0] == "W" else p.grads[name][wrt[2] - 1])
            if wrt[0] == "z":
                return _arr(p.deltas[wrt[1]][wrt[2] - 1])
            if wrt[0] == "weight_all":
                return _arr(p.grads[f"W{wrt[1]}"])
            if wrt[0] == "bias_all":
                return _arr(p.grads[f"b{wrt[1]}"])
            if wrt[0] == "z_all":
                return _arr(p.deltas[wrt[1]])
            if wrt[0] in ("a_all", "output_all", "x_all"):
                return _arr([self.network_partial(num, ("a", wrt[1], j))[0, 0]
                             for j in range(1, self.truth.sizes[wrt[1]] + 1)])
        if wrt[0] == "free" or num[0] == "free":
            raise CannotCheck("a derivative of or by a symbol that is not a quantity of the network "
                              "(give it a layer or an index, e.g. z^{(1)}_j)")
        if wrt[0].endswith("_all") or num[0].endswith("_all"):
            raise CannotCheck("a derivative of a vector by a vector or a matrix (such as dz/dW) has no single "
                              "convention; write it with indices, e.g. \\frac{\\partial z^{(2)}_j}"
                              "{\\partial W^{(2)}_{jk}}")
        if wrt[0] not in ("W", "b", "z", "a", "t"):
            raise CannotCheck(f"cannot differentiate with respect to {wrt[0]}")
        if num[0] in ("W", "b") and wrt[0] in ("W", "b", "z", "a", "t"):
            return _arr(1.0 if num == wrt else 0.0)  # a parameter depends on itself only
        if num[0] not in ("loss", "z", "a"):
            raise CannotCheck(f"cannot differentiate {num[0]} through the network")
        v = float(self.value_of_key(wrt)[0, 0])
        h = FD_STEP * (1 + abs(v))

        def read(state):
            if num[0] == "loss":
                return state["E"]
            return state[num[0]][num[1]][num[2] - 1]

        up = read(self.truth.forward(p, wrt, v + h))
        down = read(self.truth.forward(p, wrt, v - h))
        return _arr((up - down) / (2 * h))


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """``|a - b| <= 1e-6 + 1e-5 * max(|a|, |b|)`` everywhere; NaN never passes."""
    if a.shape != b.shape:
        return False
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return False
    return bool(np.all(np.abs(a - b) <= 1e-6 + 1e-5 * np.maximum(np.abs(a), np.abs(b))))
