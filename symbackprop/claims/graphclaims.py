"""Claims about a whole graph of layers, in the notation the graph documents print, judged numerically.

The graph documents (:mod:`symbackprop.render.documents_graph`) name every quantity with its layer:
``a^{(l)}_{ij}``, ``z^{(l)}_{ij}``, ``\\delta^{(l)}_{ij}``, ``g^{(l)}_{ij}`` (``g^{(l \\leftarrow c)}_{ij}``: the
part arriving through layer c), ``W^{(l)}_{jk}``, ``b^{(l)}_j``, ``\\gamma^{(l)}_j``, ``\\beta^{(l)}_j``, the
input ``x_{ik}`` and target ``y_{ij}``, and the statistics of the normalization layer at hand
(``\\mu_{B,j}``, ``\\sigma^2_{B,j}`` of a batch norm, ``\\mu_i``, ``\\sigma^2_i`` of a layer norm,
``\\hat{x}_{ij}``, ``\\hat{\\sigma}_j``, ``h_{ij} = \\partial L/\\partial \\hat{x}_{ij}``), the dropout mask
``m_{ij}``, ``B``, ``n_l``, ``\\epsilon``, ``p``, ``\\lambda``, ``\\alpha``; the letters follow the notation
profile (seed, wikipedia, aima, bishop).

Truth (:class:`GraphScene`): the spec's network at batch sizes 3 and 4, random parameters, inputs,
targets, a random epsilon, weight decay and learning rate, and the engine's fixed dropout masks.  Layer
values come from a staged forward written here (checked against :class:`~symbackprop.engine.layergraph.
LayerDerivation`'s forward and loss); parameter gradients are the engine's (checked by central finite
differences of the staged loss); every other derivative (``\\partial L/\\partial \\sigma^2_{B,j}``,
``\\partial \\hat{x}_{ij}/\\partial \\sigma^2_{B,j}``, ``g^{(l)}``, ``\\delta^{(l)}``) is a central finite
difference of the staged forward, the later stages recomputed (the paper's graph: ``\\mu_B`` before
``\\sigma_B^2`` before ``\\hat{x}``).  A claim is never run: its tree is evaluated by :class:`GraphEvaluator`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from .evaluate import close
from .nodes import Bin, Call, Claim, Deriv, Idx, Neg, Node, Num, Paren, Pow, SumOver, Sym, Transpose, scalar_bin

SIZES = (3, 4)
POINTS = 2
STEP = 1e-6
LOSSES = {"L", "E", "C", "J", "Loss", "Cost"}
METHOD = ("numeric: both sides evaluated on the spec's network at random points (parameters, inputs, targets, "
          f"epsilon, weight decay, learning rate; the engine's fixed dropout masks) for batch sizes {SIZES} and "
          "every index value; layer values from a staged forward checked against the engine's, parameter "
          "gradients from the engine (checked by finite differences), other derivatives by central finite "
          "differences; pass rule |lhs - rhs| <= 1e-06 + 1e-05*max(|lhs|, |rhs|)")


class GraphCannotRead(Exception):
    """A symbol or form this reading does not know."""


class GraphSceneError(RuntimeError):
    """The staged forward disagrees with the engine (a bug, never the user's)."""


def _act(name: str, z: np.ndarray, prime: int = 0) -> np.ndarray:
    """An activation or its derivative, element-wise (softmax row-wise, values only)."""
    if name == "relu":
        return np.maximum(z, 0.0) if not prime else (z > 0).astype(float)
    if name == "tanh":
        return np.tanh(z) if not prime else 1 - np.tanh(z) ** 2
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s if not prime else s * (1 - s)
    if name in ("identity", "linear"):
        return z if not prime else np.ones_like(z)
    if name == "softmax" and not prime:
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise GraphCannotRead(f"the activation {name} is not read here")


@dataclass
class GraphScene:
    """The spec's network at one batch size and one random point, with a staged forward."""

    net: Any
    B: int
    seed: int

    def __post_init__(self):
        from ..engine.layergraph import LayerDerivation

        rng = np.random.default_rng([self.seed, self.B, 11])
        self.eps = float(rng.uniform(0.05, 0.5))
        self.lam = float(rng.uniform(0.05, 0.5)) if self.net.l2 else 0.0
        self.lr = float(rng.uniform(0.01, 0.5))
        nodes = tuple(replace(n, options=tuple((k, self.eps if k == "epsilon" else v) for k, v in n.options))
                      for n in self.net.nodes)
        self.truth_net = replace(self.net, nodes=nodes, l2=self.lam)
        self.engine = LayerDerivation(self.truth_net)
        self.params = self.engine.init_params(self.seed + 3, spread=True)
        self.X = rng.normal(0.2, 1.0, (self.B, self.net.inputs))
        m = self.net.output.units
        loss = self.net.loss
        if getattr(loss, "targets_sum_to_one", False) or loss.name == "categorical_cross_entropy":
            self.T = np.eye(m)[rng.integers(0, m, self.B)]
        elif "binary" in loss.name:
            self.T = rng.integers(0, 2, (self.B, m)).astype(float)
        else:
            self.T = rng.normal(0, 1, (self.B, m))
        self.aux = self.engine.masks(self.B, self.seed)
        self._cache: dict = {}
        self.base = self.run({})
        self._check()

    # ------------------------------------------------------------------ the staged forward
    @cached_property
    def stages(self) -> list[tuple[tuple, Any]]:
        """(key, fn(env)) in evaluation order; keys: ("a", l), ("z", l), ("mu", l), ("var", l), ("xhat", l)."""
        out: list[tuple[tuple, Any]] = []
        for node in self.net.nodes:
            l, kind, o = node.index, node.kind.name, node.opts

            def read(env, src, c=l):
                return env[("via", src, c)] if ("via", src, c) in env else env[("a", src)]

            src = node.inputs[0] if node.inputs else 0
            if kind == "dense":
                name = o["activation"].name
                bias = o.get("bias", True)
                out.append((("z", l), lambda e, l=l, s=src, bias=bias, read=read:
                            read(e, s) @ e[("P", f"W{l}")].T + (e[("P", f"b{l}")] if bias else 0.0)))
                out.append((("a", l), lambda e, l=l, name=name: _act(name, e[("z", l)])))
            elif kind in ("batchnorm", "layernorm"):
                ax = 0 if kind == "batchnorm" else 1
                out.append((("mu", l), lambda e, s=src, ax=ax, read=read: read(e, s).mean(axis=ax)))
                out.append((("var", l), lambda e, l=l, s=src, ax=ax, read=read:
                            ((read(e, s) - self._bc(e[("mu", l)], ax)) ** 2).mean(axis=ax)))
                out.append((("xhat", l), lambda e, l=l, s=src, ax=ax, read=read:
                            (read(e, s) - self._bc(e[("mu", l)], ax)) / np.sqrt(self._bc(e[("var", l)], ax) + self.eps)))
                out.append((("a", l), lambda e, l=l: e[("P", f"gamma{l}")] * e[("xhat", l)] + e[("P", f"beta{l}")]))
            elif kind == "dropout":
                out.append((("a", l), lambda e, l=l, s=src, p=o["rate"], read=read:
                            self.aux[l]["mask"] / (1 - p) * read(e, s)))
            elif kind == "residual":
                out.append((("a", l), lambda e, ins=node.inputs, read=read: sum(read(e, s) for s in ins)))
            else:
                raise GraphCannotRead(f"the layer kind {kind} is not read here")
        per_sample = self.engine._loss[0]
        out.append((("ell",), lambda e: per_sample(e[("a", self.net.depth)], self.T)))
        out.append((("L",), lambda e: np.array(np.mean(e[("ell",)]) + self.engine.decay_value(
            {k[1]: v for k, v in e.items() if k[0] == "P"}))))
        return out

    @staticmethod
    def _bc(v, ax):
        return v[None, :] if ax == 0 else v[:, None]

    def run(self, over: dict, start: int = 0, env: dict | None = None) -> dict:
        """Every staged value; ``over`` replaces entries (perturbed copies) before the stages from ``start``."""
        if env is None:
            env = {("P", k): v for k, v in self.params.items()}
            env[("a", 0)] = self.X
        else:
            env = dict(env)
        env.update(over)
        for key, fn in self.stages[start:]:
            if key in over:
                continue
            env[key] = fn(env)
        return env

    def _check(self) -> None:
        outs, _ = self.engine.forward(self.params, self.X, self.aux)
        if not np.allclose(outs[-1], self.base[("a", self.net.depth)], rtol=1e-10, atol=1e-12):
            raise GraphSceneError("the staged forward disagrees with the engine's")
        if not np.isclose(self.engine.loss_value(self.params, self.X, self.T, self.aux), float(self.base[("L",)]),
                          rtol=1e-10, atol=1e-12):
            raise GraphSceneError("the staged loss disagrees with the engine's")
        grads = self.engine.gradients(self.params, self.X, self.T, self.aux)
        for name, g in grads.items():
            for ix in list(np.ndindex(*g.shape))[:6]:
                fd = self.fd(("P", name), ix, ("L",), ())
                if not abs(fd - g[ix]) <= 1e-6 + 1e-4 * abs(g[ix]):
                    raise GraphSceneError(f"the engine's gradient of {name}{ix} disagrees with finite differences")
        self.grads = grads

    # ------------------------------------------------------------------ values and derivatives
    def start_of(self, key: tuple) -> int:
        """The first stage to recompute after ``key`` changes."""
        if key[0] in ("P",) or key == ("a", 0):
            return 0
        if key[0] == "via":
            return next(k for k, (s, _) in enumerate(self.stages) if s[0] != "P" and s[1:2] == (key[2],))
        return next(k for k, (s, _) in enumerate(self.stages) if s == key) + 1

    def value(self, key: tuple, ix: tuple) -> float:
        if key[0] == "via":
            key = ("a", key[1])
        arr = self.base[key]
        return float(arr[ix]) if ix else float(arr)

    def fd(self, wrt: tuple, wix: tuple, num: tuple, nix: tuple) -> float:
        """d num[nix] / d wrt[wix], the stages after ``wrt`` recomputed (central differences)."""
        ck = (wrt, wix, num, nix)
        if ck in self._cache:
            return self._cache[ck]
        base = self.base[("a", wrt[1])] if wrt[0] == "via" else self.base[wrt]
        h = STEP * max(1.0, abs(float(base[wix])))
        vals = []
        for s in (h, -h):
            pert = np.array(base, dtype=float, copy=True)
            pert[wix] += s
            env = self.run({wrt: pert}, self.start_of(wrt), self.base)
            arr = env[num]
            vals.append(float(arr[nix]) if nix else float(arr))
        out = (vals[0] - vals[1]) / (2 * h)
        self._cache[ck] = out
        return out

    def grad(self, wrt: tuple, wix: tuple) -> float:
        """dL/d wrt[wix]: the engine's for a parameter, finite differences otherwise."""
        if wrt[0] == "P":
            return float(self.grads[wrt[1]][wix])
        return self.fd(wrt, wix, ("L",), ())


# ----------------------------------------------------------------------------- the notation

@dataclass(frozen=True)
class Letters:
    """The letters of one profile: output, pre-activation, upstream gradient, loss, target, weight order."""

    out: str = "a"
    pre: str = "z"
    g: str = "g"
    delta: str = "delta"
    weight: str = "W"
    from_to: bool = False
    bias: str = "b"
    target: str = "y"
    lr: str = "alpha"
    act: str = "sigma"


def letters(notation: str | None, net: Any = None) -> Letters:
    from ..render.notation import profile

    try:
        p = profile(notation, getattr(net, "notation", ()) if notation is None else ())
    except Exception:  # noqa: BLE001 - an unknown profile: the seed letters
        return Letters()

    def plain(s: str) -> str:
        s = s.replace("\\mathrm{", "").replace("}", "").lstrip("\\")
        return s

    return Letters(out=plain(p.activation_value), pre=plain(p.preactivation),
                   g="u" if p.activation == "g" else "g", delta=plain(p.gradient_delta), weight=p.weight,
                   from_to=p.weight_order == "from_to", bias=p.bias, target=p.target,
                   lr=plain(p.learning_rate), act=plain(p.activation))


@dataclass(frozen=True)
class Reading:
    """Which normalization and dropout layer the unmarked symbols (mu, hat x, m) stand for."""

    norm: int | None
    drop: int | None


def readings(net: Any) -> list[Reading]:
    norms = [n.index for n in net.nodes if n.kind.name in ("batchnorm", "layernorm")] or [None]
    drops = [n.index for n in net.nodes if n.kind.name == "dropout"] or [None]
    return [Reading(a, b) for a in norms for b in drops]


def _layer(node: Sym) -> int | None:
    if node.layer is None:
        return None
    if isinstance(node.layer, Num) and node.layer.value.denominator == 1:
        return int(node.layer.value)
    raise GraphCannotRead("a layer superscript must be a number here, e.g. a^{(2)}")


class GraphEvaluator:
    """The value of a claim tree on one scene, in one reading, for one binding of its letters."""

    def __init__(self, scene: GraphScene, reading: Reading, lt: Letters, env: dict[str, int]):
        self.s, self.r, self.lt, self.env = scene, reading, lt, env

    # -- indices
    def _i(self, node: Node) -> int:
        if isinstance(node, Num) and node.value.denominator == 1:
            return int(node.value)
        if isinstance(node, (Idx, Sym)) and node.name in self.env:
            return self.env[node.name]
        if isinstance(node, (Idx, Sym)) and node.name == "B":
            return self.s.B
        if isinstance(node, Sym) and node.name == "n" and node.index and len(node.index) == 1:
            return self.width(self._i(node.index[0]))
        raise GraphCannotRead(f"cannot tell which value the index {getattr(node, 'name', '?')} takes")

    def width(self, l: int) -> int:
        if l == 0:
            return self.s.net.inputs
        if not 1 <= l <= self.s.net.depth:
            raise GraphCannotRead(f"there is no layer {l}")
        return self.s.net.nodes[l - 1].units

    def _ix(self, idx, shape, swap=False) -> tuple:
        vals = [self._i(i) for i in idx if not (isinstance(i, (Idx, Sym)) and i.name == "B" and len(idx) > 1)]
        if swap:
            vals = vals[::-1]
        if len(vals) != len(shape):
            raise GraphCannotRead(f"{len(shape)} indices expected, {len(vals)} written")
        for v, n in zip(vals, shape):
            if not 1 <= v <= n:
                raise IndexError(f"index {v} outside 1..{n}")
        return tuple(v - 1 for v in vals)

    # -- quantities
    def key(self, node: Node) -> tuple[tuple, tuple[Node, ...], bool]:
        """(staged key, index nodes, weight order swapped) of a symbol."""
        if isinstance(node, Pow) and isinstance(node.exp, Num) and node.exp.value == 2:
            base = node.base.arg if isinstance(node.base, Paren) else node.base
            if isinstance(base, Sym) and base.name == "sigma" and not base.hat and base.layer is None:
                return (("var", self._norm()), base.index or (), False)
        if not isinstance(node, Sym) or node.example is not None:
            raise GraphCannotRead(f"cannot read {type(node).__name__} as a quantity")
        name, l, idx, lt = node.name, _layer(node), node.index or (), self.lt
        if l is not None:
            if name == lt.out:
                return (("a", l), idx, False)
            if name == lt.pre and self._kind(l) == "dense":
                return (("z", l), idx, False)
            if name == lt.g and len(idx) == 3 and isinstance(idx[2], Num):
                return (("via", l, int(idx[2].value)), idx[:2], False)
            if name == lt.g:
                return (("g", l), idx, False)
            if name == lt.delta and self._kind(l) == "dense":
                return (("delta", l), idx, False)
            if name == lt.weight and self._kind(l) == "dense":
                return (("P", f"W{l}"), idx, lt.from_to)
            if name == lt.bias and self._kind(l) == "dense":
                return (("P", f"b{l}"), idx, False)
            if name in ("gamma", "beta") and self._kind(l) in ("batchnorm", "layernorm"):
                return (("P", f"{name}{l}"), idx, False)
            raise GraphCannotRead(f"{name}^{{({l})}} is not a quantity of layer {l}")
        if node.hat:
            if name == "x":
                return (("xhat", self._norm()), idx, False)
            if name == "sigma":
                return (("sigmahat", self._norm()), idx, False)
            raise GraphCannotRead(f"\\hat{{{name}}} is not read here")
        if name == "x" and len(idx) == 2:
            return (("a", 0), idx, False)
        if name == lt.target and len(idx) == 2:
            return (("T",), idx, False)
        if name == "mu":
            return (("mu", self._norm()), idx, False)
        if name == "h" and len(idx) == 2:
            return (("h", self._norm()), idx, False)
        if name in ("m", "r") and len(idx) == 2 and self.r.drop is not None:
            return (("mask", self.r.drop), idx, False)
        if name == "kron" and len(idx) == 2:
            return (("kron",), idx, False)
        if name == "ell" and len(idx) == 1:
            return (("ell",), idx, False)
        raise GraphCannotRead(f"the symbol {name} is not read here")

    def _kind(self, l: int) -> str:
        return self.s.net.nodes[l - 1].kind.name if 1 <= l <= self.s.net.depth else ""

    def _norm(self) -> int:
        if self.r.norm is None:
            raise GraphCannotRead("the spec has no normalization layer")
        return self.r.norm

    def shape(self, key: tuple) -> tuple[int, ...]:
        s = self.s
        if key[0] in ("g", "delta", "via"):
            return s.base[("a", key[1])].shape
        if key[0] == "sigmahat":
            return s.base[("var", key[1])].shape
        if key[0] == "h":
            return s.base[("xhat", key[1])].shape
        if key[0] == "mask":
            return s.aux[key[1]]["mask"].shape
        if key[0] == "T":
            return s.T.shape
        if key[0] == "kron":
            return (10 ** 6, 10 ** 6)  # any two indices: the other symbols bound their range
        return s.base[key].shape

    def element(self, node: Node) -> tuple[tuple, tuple]:
        key, idx, swap = self.key(node)
        return key, self._ix(idx, self.shape(key), swap)

    def quantity(self, node: Node) -> float:
        key, ix = self.element(node)
        s = self.s
        if key[0] == "g":
            return s.grad(("a", key[1]), ix)
        if key[0] == "via":
            return s.grad(key, ix)
        if key[0] == "delta":
            return s.grad(("z", key[1]), ix)
        if key[0] == "h":
            return s.grad(("xhat", key[1]), ix)
        if key[0] == "sigmahat":
            return float(np.sqrt(s.base[("var", key[1])][ix] + s.eps))
        if key[0] == "mask":
            return float(s.aux[key[1]]["mask"][ix])
        if key[0] == "T":
            return float(s.T[ix])
        if key[0] == "kron":
            return float(ix[0] == ix[1])
        return s.value(key, ix)

    def scalar(self, node: Sym) -> float | None:
        """B, n_l, epsilon, p, lambda, the learning rate, the loss, e."""
        name, lt = node.name, self.lt
        if node.layer is not None or node.hat:
            return None
        if not node.index:
            if name == "B":
                return float(self.s.B)
            if name in ("epsilon", "varepsilon"):
                if self.r.norm is None:
                    raise GraphCannotRead("epsilon: the spec has no normalization layer")
                return self.s.eps
            if name == "lambda":
                return self.s.lam
            if name == lt.lr:
                return self.s.lr
            if name == "p" and self.r.drop is not None:
                return float(self.s.net.nodes[self.r.drop - 1].opts["rate"])
            if name in LOSSES:
                return float(self.s.base[("L",)])
            if name == "e":
                return float(np.e)
        if name == "n" and node.index and len(node.index) == 1:
            return float(self.width(self._i(node.index[0])))
        return None

    # -- values
    def eval(self, node: Node) -> float:
        if isinstance(node, Num):
            return float(node.value)
        if isinstance(node, Idx):
            if node.name == "B":
                return float(self.s.B)
            raise GraphCannotRead(f"the index {node.name} is used as a number")
        if isinstance(node, Sym):
            v = self.scalar(node)
            return v if v is not None else self.quantity(node)
        if isinstance(node, Paren):
            return self.eval(node.arg)
        if isinstance(node, Neg):
            return -self.eval(node.arg)
        if isinstance(node, Bin):
            value = scalar_bin(node.op, self.eval(node.left), self.eval(node.right))
            if value is None:
                raise GraphCannotRead(f"the operator {node.op} is not read here")
            return value
        if isinstance(node, Pow):
            try:
                key = self.key(node)
            except GraphCannotRead:
                key = None
            if key is not None and key[0][0] == "var":
                return self.quantity(node)
            if isinstance(node.base, Sym) and node.base.name == "e" and node.base.index is None:
                return float(np.exp(self.eval(node.exp)))
            base, exp = self.eval(node.base), self.eval(node.exp)
            with np.errstate(all="ignore"):
                return float(np.power(base, exp)) if base > 0 or float(exp).is_integer() else float("nan")
        if isinstance(node, SumOver):
            lo = self._i(node.lower) if node.lower is not None else 1
            hi = self._i(node.upper) if node.upper is not None else self.env.get(f"#{node.var}")
            if hi is None:
                raise GraphCannotRead(f"cannot tell the range of the sum over {node.var}")
            return sum(GraphEvaluator(self.s, self.r, self.lt, {**self.env, node.var: v}).eval(node.body)
                       for v in range(lo, hi + 1))
        if isinstance(node, Deriv):
            return self._deriv(node)
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Transpose):
            raise GraphCannotRead("matrix forms are not read yet")
        raise GraphCannotRead(f"cannot read {type(node).__name__} here")

    def _call(self, node: Call) -> float:
        if len(node.args) != 1:
            raise GraphCannotRead("a function of one argument expected")
        if node.func in ("exp", "log") and not node.primes:
            x = self.eval(node.args[0])
            return float(np.exp(x)) if node.func == "exp" else (float(np.log(x)) if x > 0 else float("nan"))
        if node.func == "step" and not node.primes:  # [x > 0]
            return float(self.eval(node.args[0]) > 0)
        arg = node.args[0]
        arg = arg.arg if isinstance(arg, Paren) else arg
        if not isinstance(arg, Sym) or arg.layer is None or node.primes > 1:
            raise GraphCannotRead("an activation is read on a pre-activation with its layer, e.g. f(z^{(1)}_{ij})")
        key, ix = self.element(arg)
        if key[0] != "z":
            raise GraphCannotRead("an activation is read on a pre-activation")
        act = self.s.net.nodes[key[1] - 1].opts["activation"].name
        if act == "softmax":
            raise GraphCannotRead("softmax is read as e^{z}/sum e^{z}")
        named = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}
        if node.func in named and named[node.func] != act and not (node.func == "sigma" and act == "sigmoid"):
            raise GraphCannotRead(f"\\{node.func} is not layer {key[1]}'s activation ({act})")
        return float(_act(act, np.array(self.s.base[key][ix]), node.primes))

    def _deriv(self, node: Deriv) -> float:
        if node.body is not None or node.num is None:
            raise GraphCannotRead("write a derivative as \\frac{\\partial L}{\\partial a^{(l)}_{ij}}")
        wkey, wix = self.element(node.wrt)
        if wkey[0] not in ("a", "z", "P", "mu", "var", "xhat", "via"):
            raise GraphCannotRead("a derivative with respect to a staged quantity or a parameter")
        num = node.num
        if isinstance(num, Sym) and num.name in LOSSES and num.layer is None and not num.index:
            return self.s.grad(wkey, wix)
        nkey, nix = self.element(num)
        if nkey[0] not in ("a", "z", "mu", "var", "xhat"):
            raise GraphCannotRead("a local derivative of a staged quantity")
        if wkey[0] == "a" and nkey[1] != wkey[1] and wkey[1] in self.s.net.nodes[nkey[1] - 1].inputs:
            wkey = ("via", wkey[1], nkey[1])  # the partial of layer nkey's definition: its own reading only
        return self.s.fd(wkey, wix, nkey, nix)


# ----------------------------------------------------------------------------- index ranges

def _ranges(node: Node, ev: GraphEvaluator, out: dict[str, int]) -> None:
    """Each letter's range from the quantities it indexes (the smallest, when several)."""
    if isinstance(node, SumOver):
        _ranges(node.body, ev, out)
        return
    if isinstance(node, (Sym, Pow)):
        try:
            key, idx, swap = ev.key(node)
            shape = ev.shape(key)
        except (GraphCannotRead, KeyError):
            key = None
        if key is not None:
            idx = [i for i in idx if not (isinstance(i, (Idx, Sym)) and i.name == "B" and len(idx) > 1)]
            if swap:
                idx = idx[::-1]
            for i, n in zip(idx, shape):
                if isinstance(i, Idx):
                    out[i.name] = min(out.get(i.name, n), n)
    for c in _kids(node):
        _ranges(c, ev, out)


def _kids(node: Node) -> list[Node]:
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
        return [node.body]
    return []


def _free(node: Node, bound: frozenset = frozenset()) -> list[str]:
    out: list[str] = []
    if isinstance(node, SumOver):
        return _free(node.body, bound | {node.var})
    if isinstance(node, Sym):
        for i in node.index or ():
            if isinstance(i, Idx) and i.name not in bound and i.name != "B":
                out.append(i.name)
        return out
    for c in _kids(node):
        out += [x for x in _free(c, bound) if x not in out]
    return list(dict.fromkeys(out))


@dataclass
class GraphMismatch:
    scene: GraphScene
    reading: Reading
    env: dict
    side: int
    left: float
    right: float


_SCENES: dict[tuple, list[GraphScene]] = {}


def graph_scenes(net: Any) -> list[GraphScene]:
    key = (id(net), net)
    if key not in _SCENES:
        _SCENES[key] = [GraphScene(net, b, seed) for b in SIZES for seed in range(POINTS)]
    return _SCENES[key]


def has_layer_marks(claim: Claim) -> bool:
    """A claim written with layer superscripts, hatted sigmas, h or n_l (the graph documents' notation)."""
    def walk(n):
        yield n
        if isinstance(n, Sym):
            yield from (n.index or ())
        for c in _kids(n):
            yield from walk(c)
    return any(isinstance(n, Sym) and (n.layer is not None or n.hat and n.name == "sigma" or n.name == "h"
                                       or n.name == "n" and n.index)
               or isinstance(n, Call) and n.args and isinstance(n.args[0], Sym) and n.args[0].layer is not None
               for s in claim.sides for n in walk(s))


def compare_graph(claim: Claim, net: Any, notation: str | None) -> tuple[GraphMismatch | None, int]:
    """The first disagreement of the claim's sides in every reading (None when one reading agrees
    everywhere) and the number of comparisons; raises GraphCannotRead when no reading reads it."""
    lt = letters(notation, net)
    scenes = graph_scenes(net)
    first: tuple[GraphMismatch | None, int] | None = None
    reasons = []
    for reading in readings(net):
        try:
            found = _compare_one(claim, scenes, reading, lt)
        except (GraphCannotRead, IndexError, KeyError, ZeroDivisionError) as exc:
            reasons.append(str(exc))
            continue
        if found[0] is None:
            return found
        first = first or found
    if first is None:
        raise GraphCannotRead("; ".join(dict.fromkeys(reasons)) or "not read")
    return first


def _compare_one(claim: Claim, scenes: list[GraphScene], reading: Reading, lt: Letters):
    letters_: list[str] = []
    for side in claim.sides:
        letters_ += [x for x in _free(side) if x not in letters_]
    count = 0
    for scene in scenes:
        probe = GraphEvaluator(scene, reading, lt, {})
        sizes: dict[str, int] = {}
        for side in claim.sides:
            _ranges(side, probe, sizes)
        missing = [x for x in letters_ if x not in sizes]
        if missing:
            raise GraphCannotRead(f"cannot tell the range of the index {missing[0]}")
        bound = {f"#{k}": v for k, v in sizes.items()}
        for values in itertools.product(*(range(1, sizes[x] + 1) for x in letters_)):
            env = {**bound, **dict(zip(letters_, values))}
            ev = GraphEvaluator(scene, reading, lt, env)
            lhs = ev.eval(claim.sides[0])
            for k, side in enumerate(claim.sides[1:], start=1):
                rhs = ev.eval(side)
                count += 1
                if not close(np.array([lhs]), np.array([rhs])):
                    return GraphMismatch(scene, reading, env, k, lhs, rhs), count
    return None, count


def as_update(claim: Claim, lt: Letters) -> Claim | None:
    """``W^{(l)}_{jk} \\leftarrow rhs`` as ``W - \\alpha \\partial L/\\partial W = rhs``; None for a generic theta."""
    lhs = claim.sides[0]
    if not (isinstance(lhs, Sym) and lhs.layer is not None):
        return None
    step = Bin("-", lhs, Bin("*", Sym(lt.lr), Deriv(Sym("L"), lhs)))
    return replace(claim, sides=(step, *claim.sides[1:]), relations=("=",) * len(claim.relations))


# ----------------------------------------------------------------------------- hyper-parameters

def _number(node: Node) -> float | None:
    """A side made of numbers only (``1 \\times 10^{-5}``), or None."""
    if isinstance(node, Num):
        return float(node.value)
    if isinstance(node, Paren):
        return _number(node.arg)
    if isinstance(node, Neg):
        v = _number(node.arg)
        return None if v is None else -v
    if isinstance(node, (Bin, Pow)):
        a, b = (_number(node.left), _number(node.right)) if isinstance(node, Bin) else \
            (_number(node.base), _number(node.exp))
        if a is None or b is None:
            return None
        if isinstance(node, Pow):
            return a ** b if a > 0 or float(b).is_integer() else None
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}.get(node.op)
    return None


def spec_value(lhs: Node, net: Any, lt: Letters) -> tuple[str, float | None] | None:
    """(what, the spec's value) of a hyper-parameter symbol, or None when ``lhs`` is not one."""
    if not isinstance(lhs, Sym) or lhs.layer is not None or lhs.hat:
        return None
    name = lhs.name
    if name == "n" and lhs.index and len(lhs.index) == 1 and isinstance(lhs.index[0], Num):
        l = int(lhs.index[0].value)
        return (f"the width of layer {l}", float(net.inputs if l == 0 else net.nodes[l - 1].units)
                if 0 <= l <= net.depth else None)
    if lhs.index:
        return None
    if name == "B":
        return ("the batch size (batch_size)", float(net.batch_size))
    if name == "lambda":
        return ("the L2 weight decay (regularization.l2)", float(net.l2))
    if name in ("alpha", "eta") or name == lt.lr:
        return ("the learning rate (optimizer.learning_rate)", float(net.optimizer.learning_rate))
    if name == "rho" and getattr(net.optimizer, "name", "") == "momentum":
        return ("the momentum (optimizer.momentum)", float(net.optimizer.momentum))
    if name == "rho" and getattr(net.optimizer, "name", "") == "momentum":
        return ("the momentum (optimizer.momentum)", float(net.optimizer.momentum))
    if name in ("epsilon", "varepsilon"):
        vals = {n.opts["epsilon"] for n in net.nodes if "epsilon" in n.opts}
        return ("epsilon of the normalization layers", float(vals.pop()) if len(vals) == 1 else None)
    if name == "p":
        vals = {n.opts["rate"] for n in net.nodes if n.kind.name == "dropout"}
        return ("the dropout rate", float(vals.pop()) if len(vals) == 1 else None)
    return None


def hyper_parameter(claim: Claim, net: Any, notation: str | None):
    """``B = 8``, ``\\lambda = 0.0001``, ``\\alpha = 0.1``: (verdict, what, spec value, written value) or None."""
    if len(claim.sides) != 2 or claim.relations[0] != "=":
        return None
    written = _number(claim.sides[1])
    if written is None:
        return None
    found = spec_value(claim.sides[0], net, letters(notation, net))
    if found is None or found[1] is None:
        return None
    what, value = found
    ok = abs(written - value) <= 1e-12 + 1e-9 * abs(value)
    return ("correct" if ok else "incorrect"), what, value, written


# ----------------------------------------------------------------------------- matrix forms

class MatrixEvaluator:
    """A matrix-form claim (``\\mathbf{z}^{(l)} = \\mathbf{X} W^{(l)\\top} + \\mathbf{1} b^{(l)\\top}``) as arrays:
    bold letters are B-row matrices, ``W^{(l)}`` has the units of layer l as rows, vectors are columns."""

    def __init__(self, scene: GraphScene, lt: Letters):
        self.s, self.lt = scene, lt

    def _grad(self, key: tuple) -> np.ndarray:
        s = self.s
        if key[0] == "P":
            return np.asarray(s.grads[key[1]], dtype=float)
        arr = s.base[key]
        return np.array([s.fd(key, ix, ("L",), ()) for ix in np.ndindex(*arr.shape)]).reshape(arr.shape)

    def _col(self, v: np.ndarray) -> np.ndarray:
        return v.reshape(-1, 1) if v.ndim == 1 else v

    def key(self, node: Node) -> tuple:
        if not isinstance(node, Sym) or node.index is not None or node.hat:
            raise GraphCannotRead("a matrix form names whole matrices (no indices)")
        name, l, lt = node.name, _layer(node), self.lt
        if l is None:
            if name == "X":
                return ("a", 0)
            raise GraphCannotRead(f"the matrix {name} is not read here")
        kind = self.s.net.nodes[l - 1].kind.name if 1 <= l <= self.s.net.depth else ""
        if name == lt.out:
            return ("a", l)
        if name == lt.pre and kind == "dense":
            return ("z", l)
        if name == lt.g:
            return ("g", l)
        if name == lt.delta and kind == "dense":
            return ("delta", l)
        if name in ("W", "w") and kind == "dense":
            return ("P", f"W{l}")
        if name == lt.bias and kind == "dense":
            return ("P", f"b{l}")
        raise GraphCannotRead(f"the matrix {name}^{{({l})}} is not read here")

    def eval(self, node: Node):
        s = self.s
        if isinstance(node, Num):
            return float(node.value)
        if isinstance(node, Sym) and node.name == "ones" and node.layer is None:
            return np.ones((s.B, 1))
        if isinstance(node, Sym) and node.index is None and node.layer is None and not node.hat:
            if node.name == "lambda":
                return s.lam
            if node.name == self.lt.lr:
                return s.lr
            if node.name == "B":
                return float(s.B)
        if isinstance(node, Sym):
            key = self.key(node)
            if key[0] == "g":
                return self._grad(("a", key[1]))
            if key[0] == "delta":
                return self._grad(("z", key[1]))
            if key[0] == "P":
                return self._col(np.asarray(s.params[key[1]], dtype=float))
            return s.base[key]
        if isinstance(node, Paren):
            return self.eval(node.arg)
        if isinstance(node, Neg):
            return -self.eval(node.arg)
        if isinstance(node, Transpose):
            v = self.eval(node.arg)
            return v.T if isinstance(v, np.ndarray) else v
        if isinstance(node, Bin):
            a, b = self.eval(node.left), self.eval(node.right)
            scalar = not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray)
            if node.op in ("+", "-", "odot") and not scalar and a.shape != b.shape:
                raise GraphCannotRead(f"shapes {a.shape} and {b.shape} do not match")
            if node.op == "+":
                return a + b
            if node.op == "-":
                return a - b
            if node.op == "odot" or node.op == "*" and scalar:
                return a * b
            if node.op == "*":
                if a.shape[1] != b.shape[0]:
                    raise GraphCannotRead(f"a {a.shape} matrix times a {b.shape} matrix")
                return a @ b
            if node.op == "/" and not isinstance(b, np.ndarray):
                return a / b
            raise GraphCannotRead(f"the operator {node.op} is not read in a matrix form")
        if isinstance(node, Call) and len(node.args) == 1 and node.primes <= 1:
            arg = node.args[0].arg if isinstance(node.args[0], Paren) else node.args[0]
            key = self.key(arg)
            if key[0] != "z":
                raise GraphCannotRead("an activation is read on a pre-activation")
            act = s.net.nodes[key[1] - 1].opts["activation"].name
            return _act(act, s.base[key], node.primes)
        if isinstance(node, Deriv) and node.body is None and isinstance(node.num, Sym) \
                and node.num.name in LOSSES and node.num.index is None:
            key = self.key(node.wrt)
            if key[0] in ("g", "delta"):
                raise GraphCannotRead("a derivative with respect to a gradient")
            return self._col(self._grad(key)) if key[0] == "P" else self._grad(key)
        raise GraphCannotRead(f"cannot read {type(node).__name__} in a matrix form")


def is_matrix_form(claim: Claim) -> bool:
    """Whole matrices with a layer mark (``\\mathbf{z}^{(1)}``, ``W^{(1)\\top}``) and no indexed symbol."""
    def walk(n):
        yield n
        for c in _kids(n):
            yield from walk(c)
    syms = [n for s in claim.sides for n in walk(s) if isinstance(n, Sym)]
    return any(n.layer is not None for n in syms) and all(n.index is None for n in syms)


def compare_matrix(claim: Claim, net: Any, notation: str | None) -> tuple[GraphMismatch | None, int]:
    """The first entry where the sides of a matrix form differ (or None), and the number compared."""
    lt = letters(notation, net)
    count = 0
    for scene in graph_scenes(net):
        ev = MatrixEvaluator(scene, lt)
        lhs = np.asarray(ev.eval(claim.sides[0]), dtype=float)
        for k, side in enumerate(claim.sides[1:], start=1):
            rhs = np.asarray(ev.eval(side), dtype=float)
            if lhs.shape != rhs.shape:
                return GraphMismatch(scene, Reading(None, None), {"shape": 0}, k, float("nan"), float("nan")), count
            for ix in np.ndindex(*lhs.shape):
                count += 1
                if not close(np.array([lhs[ix]]), np.array([rhs[ix]])):
                    env = {f"entry {n + 1}": v + 1 for n, v in enumerate(ix)}
                    return GraphMismatch(scene, Reading(None, None), env, k, float(lhs[ix]), float(rhs[ix])), count
    return None, count
