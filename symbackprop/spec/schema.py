"""Load and validate architecture specs into a :class:`Network`.

A spec is a YAML, TOML or JSON file, a Python dict, or a :class:`Network`.
Nothing symbolic happens here; every error names the field and the fix.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExpressionError, SpecError
from ..registry import ops
from . import graph as spec_graph

MAX_UNITS = 100_000
MAX_LAYERS = 32
MAX_PARAMETERS = 5_000_000
OPTIMIZERS = ("sgd", "momentum", "adam")
NOTATION_PROFILES = ("seed", "wikipedia", "aima", "bishop")
NOTATION_KEYS = ("profile", "loss", "weight", "bias", "preactivation", "activation_value",
                 "activation", "delta", "input", "target", "learning_rate")

SEED_SPEC: dict[str, Any] = {
    "name": "seed-one-hidden",
    "inputs": 2,
    "layers": [{"units": 3, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
    "loss": "half_sse",
    "optimizer": {"name": "sgd", "learning_rate": 0.5},
}
"""The seeds' one-hidden-layer network, used when no spec is given."""


@dataclass(frozen=True)
class Layer:
    """One dense layer: ``units`` neurons with one activation and optional bias."""

    units: int
    activation: ops.Activation
    bias: bool = True


@dataclass(frozen=True)
class Optimizer:
    """Update rule and its hyper-parameters."""

    name: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8


@dataclass(frozen=True)
class Example:
    """One sample and the starting weights for a worked example (the spec's ``example:`` block).

    ``weights`` maps every parameter name (``W1``, ``b1``, ...) to its values as nested tuples,
    ``W{l}`` units x fan-in (row j = unit j); or ``seed`` draws them as the generated
    ``model.py``'s ``init_params(seed)`` does.  Exactly one of the two is set.
    """

    x: tuple[float, ...]
    t: tuple[float, ...]
    weights: tuple[tuple[str, tuple], ...] | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Network:
    """A validated feed-forward network description."""

    name: str
    inputs: int
    layers: tuple[Layer, ...]
    loss: ops.Loss
    optimizer: Optimizer = field(default_factory=Optimizer)
    notation: tuple[tuple[str, str], ...] = ()
    example: Example | None = None

    @property
    def sizes(self) -> list[int]:
        """Units per layer, the inputs first: ``[n0, n1, ..., nL]``."""
        return [self.inputs, *(layer.units for layer in self.layers)]

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def parameter_count(self) -> int:
        sizes = self.sizes
        return sum(sizes[l] * sizes[l - 1] + (sizes[l] if self.layers[l - 1].bias else 0)
                   for l in range(1, len(sizes)))

    @property
    def architecture(self) -> str:
        """``2-3-1`` style summary."""
        return "-".join(str(n) for n in self.sizes)

    def __post_init__(self):
        _check_network(self)


# ----------------------------------------------------------------------------- loading


def load(spec: Any) -> Network:
    """Turn a path, a dict or a Network into a validated :class:`Network`."""
    if isinstance(spec, (Network, spec_graph.GraphNetwork)):
        return spec
    if isinstance(spec, (str, Path)):
        return from_dict(read_file(Path(spec)))
    if isinstance(spec, Mapping):
        return from_dict(spec)
    raise SpecError("spec", f"cannot read a spec from {type(spec).__name__}",
                    "pass a path to a .yaml/.toml/.json file, a dict or a Network")


def read_file(path: Path) -> dict:
    """Read a spec file by its extension into a plain dict."""
    where = str(path)
    if not path.is_file():
        raise SpecError(where, "no such file", "check the path to the spec")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(where, f"cannot read the file ({exc.__class__.__name__})",
                        "save the spec as UTF-8 text") from None
    import yaml

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    parsers = {".yaml": yaml.safe_load, ".yml": yaml.safe_load, ".toml": tomllib.loads, ".json": json.loads}
    if suffix not in parsers:
        raise SpecError(where, f"unknown spec format {suffix or '(no extension)'!r}",
                        "name the file .yaml, .yml, .toml or .json")
    try:
        data = parsers[suffix](text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(where, f"invalid {suffix[1:].upper()} ({first})", "fix the syntax") from None
    if not isinstance(data, dict):
        raise SpecError(where, "the spec must be a mapping with inputs, layers and loss",
                        "see examples/seed_2_3_1.yaml")
    return data


def from_dict(data: Mapping) -> Network:
    """Validate a plain mapping into a :class:`Network` (a dense stack) or a ``GraphNetwork``."""
    _no_unknown(data, "spec", ("name", "inputs", "layers", "loss", "optimizer", "notation",
                               "description", "regularization", "batch_size", "example"))
    name = data.get("name", "network")
    if not isinstance(name, str) or not name.strip() or len(name) > 80:
        raise SpecError("name", "must be a non-empty text of at most 80 characters",
                        "give the network a short name such as 'xor'")
    if "inputs" not in data:
        raise SpecError("inputs", "is missing", "add 'inputs: N' with the number of input features")
    inputs = _positive_int(data["inputs"], "inputs")
    layers_data = data.get("layers")
    if layers_data is None:
        raise SpecError("layers", "is missing", "add a list such as [{units: 1, activation: sigmoid}]")
    if not isinstance(layers_data, list) or not layers_data:
        raise SpecError("layers", "must be a non-empty list of layers",
                        "write layers: [{units: 3, activation: sigmoid}, ...]")
    if len(layers_data) > MAX_LAYERS:
        raise SpecError("layers", f"has {len(layers_data)} layers (at most {MAX_LAYERS})",
                        "use fewer layers")
    loss = _loss(data.get("loss"))
    optimizer = _optimizer(data.get("optimizer", {"name": "sgd"}))
    notation = _notation(data.get("notation", {}))
    if spec_graph.wants_graph(data):
        nodes = spec_graph.nodes_from(layers_data, inputs, _layer)
        net = spec_graph.GraphNetwork(
            name.strip(), inputs, nodes, loss, optimizer, notation,
            l2=spec_graph.regularization_from(data.get("regularization", {"l2": 0.0})),
            batch_size=spec_graph.batch_size_from(data.get("batch_size", 32)))
        spec_graph.check_graph(net)
        if "example" in data:
            from dataclasses import replace

            from .graph_example import example_from

            net = replace(net, example=example_from(data["example"], net))
        return net
    layers = tuple(_layer({k: v for k, v in item.items() if k != "type"} if isinstance(item, Mapping) else item,
                          f"layers[{i}]") for i, item in enumerate(layers_data))
    example = _example(data["example"], inputs, layers, loss) if "example" in data else None
    return Network(name.strip(), inputs, layers, loss, optimizer, notation, example)


def _no_unknown(data: Mapping, where: str, allowed: tuple[str, ...]) -> None:
    if not isinstance(data, Mapping):
        raise SpecError(where, f"must be a mapping, got {_kind(data)}", f"use keys {', '.join(allowed)}")
    for key in data:
        if key not in allowed:
            raise SpecError(f"{where}.{key}" if where != "spec" else str(key),
                            "is not a known key", f"use one of {', '.join(allowed)}")


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "text",
            list: "a list", dict: "a mapping", type(None): "nothing"}.get(type(value), type(value).__name__)


def _positive_int(value: Any, where: str, limit: int = MAX_UNITS) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(where, f"must be a whole number, got {_kind(value)} {value!r}",
                        "write a positive integer such as 3")
    if value < 1:
        raise SpecError(where, f"must be at least 1, got {value}", "write a positive integer such as 3")
    if value > limit:
        raise SpecError(where, f"is {value}, more than the limit of {limit}", "use a smaller size")
    return value


LAYER_KEYS = ("units", "activation", "bias")
"""The keys of a dense layer (``type: dense`` is implied)."""


def _layer(item: Any, where: str) -> Layer:
    if isinstance(item, int) and not isinstance(item, bool):
        raise SpecError(where, "is a bare number", "write {units: N, activation: NAME}")
    if isinstance(item, Mapping):
        for key in item:
            if key not in LAYER_KEYS:
                raise SpecError(f"{where}.{key}", f"is not a key of a dense layer ({', '.join(LAYER_KEYS)})",
                                f"remove '{key}', or set 'type:' to one of the layer kinds in the README's "
                                "'Layer kinds' (batchnorm, layernorm, dropout, residual)")
    _no_unknown(item, where, LAYER_KEYS)
    if "units" not in item:
        raise SpecError(f"{where}.units", "is missing", "add 'units: N'")
    units = _positive_int(item["units"], f"{where}.units")
    bias = item.get("bias", True)
    if not isinstance(bias, bool):
        raise SpecError(f"{where}.bias", f"must be true or false, got {bias!r}", "write bias: false or omit it")
    return Layer(units, _activation(item.get("activation"), f"{where}.activation"), bias)


def _activation(value: Any, where: str) -> ops.Activation:
    names = ", ".join(ops.ACTIVATION_NAMES)
    if value is None:
        raise SpecError(where, "is missing", f"add 'activation:' with one of {names}")
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        raise SpecError(where, f"must be a name or a mapping, got {_kind(value)}",
                        f"use one of {names} or {{expr: 'x*sigmoid(x)'}}")
    if "expr" in value:
        if set(value) != {"expr"}:
            raise SpecError(where, "a custom activation takes only 'expr'", "write {expr: 'x*sigmoid(x)'}")
        try:
            return ops.custom_activation(value["expr"])
        except ExpressionError as exc:
            raise SpecError(f"{where}.expr", str(exc).split(";")[0],
                            "use x, numbers, + - * / **, exp, log, tanh, sigmoid, sqrt") from None
    name = value.get("name")
    if not isinstance(name, str):
        raise SpecError(f"{where}.name", "is missing or not text", f"use one of {names}")
    params = {k: v for k, v in value.items() if k != "name"}
    try:
        return ops.activation(name, **params)
    except KeyError:
        hint = _close_name(name, ops.ACTIVATION_NAMES)
        raise SpecError(where, f"unknown activation {name!r}",
                        f"{hint}use one of {names}, or {{expr: 'x*sigmoid(x)'}} for a custom one") from None
    except TypeError as exc:
        raise SpecError(where, str(exc), f"see the parameters of {name} in the README") from None


def _close_name(name: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _loss(value: Any) -> ops.Loss:
    names = ", ".join(ops.LOSS_NAMES)
    if value is None:
        raise SpecError("loss", "is missing", f"add 'loss:' with one of {names}")
    if not isinstance(value, str):
        raise SpecError("loss", f"must be a name, got {_kind(value)}", f"use one of {names}")
    if value not in ops.LOSSES:
        raise SpecError("loss", f"unknown loss {value!r}", f"{_close_name(value, ops.LOSS_NAMES)}use one of {names}")
    return ops.LOSSES[value]


def _number(value: Any, where: str, low: float, high: float, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(where, f"must be a number, got {_kind(value)} {value!r}", fix)
    if not (low < value < high):
        raise SpecError(where, f"is {value}, outside ({low}, {high})", fix)
    return float(value)


def _optimizer(value: Any) -> Optimizer:
    if isinstance(value, str):
        value = {"name": value}
    _no_unknown(value, "optimizer", ("name", "learning_rate", "momentum", "beta1", "beta2", "epsilon"))
    name = value.get("name", "sgd")
    if name not in OPTIMIZERS:
        raise SpecError("optimizer.name", f"unknown optimizer {name!r}", f"use one of {', '.join(OPTIMIZERS)}")
    kw: dict[str, float] = {}
    if "learning_rate" in value:
        kw["learning_rate"] = _number(value["learning_rate"], "optimizer.learning_rate", 0, 1e3,
                                      "use a positive step size such as 0.1")
    for key in ("momentum", "beta1", "beta2"):
        if key in value:
            kw[key] = _number(value[key], f"optimizer.{key}", 0, 1, "use a value in (0, 1) such as 0.9")
    if "epsilon" in value:
        kw["epsilon"] = _number(value["epsilon"], "optimizer.epsilon", 0, 1, "use a small value such as 1e-8")
    return Optimizer(name, **kw)


def _vector(value: Any, n: int, where: str, what: str) -> tuple[float, ...]:
    fix = f"write {n} number{'s' if n != 1 else ''} in a list, such as [{', '.join(['0.5'] * n)}]"
    if not isinstance(value, list):
        raise SpecError(where, f"must be a list of {n} numbers ({what}), got {_kind(value)}", fix)
    if len(value) != n:
        raise SpecError(where, f"has {len(value)} numbers, but {what} is {n}", fix)
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SpecError(f"{where}[{i}]", f"must be a finite number, got {_kind(v)} {v!r}", fix)
    return tuple(float(v) for v in value)


def _example(value: Any, inputs: int, layers: tuple[Layer, ...], loss: ops.Loss) -> Example:
    """The ``example:`` block: one sample (x, t) and the starting weights (or a seed)."""
    _no_unknown(value, "example", ("x", "t", "weights", "seed"))
    for key in ("x", "t"):
        if key not in value:
            raise SpecError(f"example.{key}", "is missing",
                            f"add '{key}: [...]' with the sample's {'inputs' if key == 'x' else 'targets'}")
    x = _vector(value["x"], inputs, "example.x", "the number of inputs")
    t = _targets(_vector(value["t"], layers[-1].units, "example.t", "the number of outputs"), loss, "example.t")
    if ("weights" in value) == ("seed" in value):
        raise SpecError("example", "needs either 'weights' or 'seed' (exactly one)",
                        "add 'seed: 0' to draw the starting weights as model.py's init_params does, "
                        "or list them under 'weights: {W1: [[...]], b1: [...], ...}'")
    if "seed" in value:
        seed = value["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise SpecError("example.seed", f"must be a whole number from 0 to 2**32 - 1, got {seed!r}",
                            "write seed: 0")
        return Example(x, t, seed=seed)
    return Example(x, t, weights=_example_weights(value["weights"], inputs, layers))


def _targets(t: tuple[float, ...], loss: ops.Loss, where: str) -> tuple[float, ...]:
    """``t`` if the loss accepts it as one sample's targets (in [0, 1]; summing to one)."""
    if loss.target_kind in ("unit", "simplex") and not all(0.0 <= v <= 1.0 for v in t):
        raise SpecError(where, f"{loss.name} needs targets in [0, 1]", "use targets between 0 and 1")
    if loss.targets_sum_to_one and abs(sum(t) - 1.0) > 1e-9:
        raise SpecError(where, f"{loss.name} needs targets that sum to one, these sum to {sum(t):g}",
                        "use a one-hot target such as [0, 1, 0]")
    return t


def _example_weights(value: Any, inputs: int, layers: tuple[Layer, ...]) -> tuple[tuple[str, tuple], ...]:
    sizes = [inputs, *(layer.units for layer in layers)]
    names = [f"{kind}{l}" for l in range(1, len(sizes)) for kind in ("W", "b")
             if kind == "W" or layers[l - 1].bias]
    listing = ", ".join(names)
    if not isinstance(value, Mapping):
        raise SpecError("example.weights", f"must be a mapping, got {_kind(value)}",
                        f"give every parameter: {listing}")
    for key in value:
        if key not in names:
            why = "a layer without bias has no" if (isinstance(key, str) and key.startswith("b")
                                                    and key[1:].isdigit() and 1 <= int(key[1:]) < len(sizes)) \
                else "this network has no"
            raise SpecError(f"example.weights.{key}", f"{why} parameter {key}", f"give exactly {listing}")
    missing = [name for name in names if name not in value]
    if missing:
        raise SpecError("example.weights", f"is missing {', '.join(missing)}", f"give exactly {listing}")
    out = []
    for name in names:
        l = int(name[1:])
        units, fan_in = sizes[l], sizes[l - 1]
        where = f"example.weights.{name}"
        if name.startswith("b"):
            out.append((name, _vector(value[name], units, where, f"the number of units of layer {l}")))
            continue
        out.append((name, _matrix(value[name], units, fan_in, where, l)))
    return tuple(out)


def _matrix(rows: Any, units: int, fan_in: int, where: str, layer: int) -> tuple[tuple[float, ...], ...]:
    """A ``units x fan_in`` weight matrix of layer ``layer`` (row j = unit j) as nested tuples."""
    fix = f"write {units} row{'s' if units != 1 else ''} of {fan_in} numbers (units x fan-in: row j = unit j)"
    if not isinstance(rows, list) or len(rows) != units:
        got = f"{len(rows)} rows" if isinstance(rows, list) else _kind(rows)
        if isinstance(rows, list) and len(rows) == fan_in and all(
                isinstance(row, list) and len(row) == units for row in rows):
            got = f"{fan_in} x {units}, the transpose"
        raise SpecError(where, f"must be {units} x {fan_in}, got {got}", fix)
    return tuple(_vector(row, fan_in, f"{where}[{j}]", f"the fan-in of layer {layer}") for j, row in enumerate(rows))


_SAFE_TEX = re.compile(r"^(?:[A-Za-z][A-Za-z0-9']{0,11}|\\(?:[a-zA-Z]+)(?:\{[A-Za-z]\})?)$")
_TEX_COMMANDS = {
    "alpha", "beta", "gamma", "delta", "Delta", "epsilon", "varepsilon", "eta", "theta", "lambda",
    "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "varphi", "chi", "psi", "omega",
    "Gamma", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega", "ell",
    "mathcal", "mathbf", "mathrm", "mathit", "boldsymbol",
}


def _notation(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str):
        value = {"profile": value}
    _no_unknown(value, "notation", NOTATION_KEYS)
    items = []
    for key, text in value.items():
        if key == "profile":
            if text not in NOTATION_PROFILES:
                raise SpecError("notation.profile", f"unknown profile {text!r}",
                                f"use one of {', '.join(NOTATION_PROFILES)}")
        else:
            command = re.match(r"^\\([a-zA-Z]+)", text) if isinstance(text, str) else None
            if not isinstance(text, str) or not _SAFE_TEX.match(text) or (
                    command and command.group(1) not in _TEX_COMMANDS):
                raise SpecError(f"notation.{key}", f"{text!r} is not an allowed symbol",
                                "use letters such as C, or a Greek letter such as \\ell or \\mathcal{L}")
        items.append((key, text))
    return tuple(items)


def _check_network(net: Network) -> None:
    """Cross-field rules (softmax placement, loss vs output range, size)."""
    last = len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        if layer.activation.vector and i != last:
            raise SpecError(f"layers[{i}].activation", "softmax is allowed only in the output layer",
                            "use sigmoid, tanh or relu here and softmax in the last layer")
    out = net.layers[-1].activation
    if not ops.loss_accepts(net.loss, out):
        need = ops.RANGE_WORDS[net.loss.requires]
        suggestion = "softmax" if net.loss.requires == "simplex" else "sigmoid"
        raise SpecError("loss", f"{net.loss.name} needs outputs {need}, but the output layer is {out.name}",
                        f"set the last layer's activation to {suggestion} or choose a squared-error loss")
    if net.parameter_count > MAX_PARAMETERS:
        raise SpecError("layers", f"the network has {net.parameter_count:,} parameters (at most {MAX_PARAMETERS:,})",
                        "use fewer or narrower layers")
