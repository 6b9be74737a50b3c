"""The ``example:`` block of a layer-graph spec: a batch, every parameter by name, dropout masks.

``x`` and ``t`` are one sample (a list of numbers) or a batch (a list of rows, one sample a
row); batch normalization needs at least two rows.  ``weights`` gives every parameter by
its canonical name (``W1``, ``b1``, ``gamma2``, ``beta2``, ...; ``W{l}`` is units x fan-in,
row j = unit j), or ``seed`` draws them as the generated ``model.py``'s ``init_params(seed)``
does.  ``masks`` gives each dropout layer's 0/1 mask by layer number, one row per sample
(``masks: {2: [[1, 0, 1, 1], ...]}``); without it the masks are drawn from ``seed`` as
``model.py``'s ``draw_masks(np.random.default_rng(seed), B)`` draws them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SpecError

if TYPE_CHECKING:
    from .graph import GraphNetwork

MAX_EXAMPLE_BATCH = 16
KEYS = ("x", "t", "weights", "seed", "masks")

Rows = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class GraphExample:
    """A layer graph's worked example: ``x``, ``t`` as rows (one per sample), the parameters or a seed,
    and the dropout masks given in the spec (``(layer, rows)`` pairs; empty: drawn from the seed)."""

    x: Rows
    t: Rows
    weights: tuple[tuple[str, tuple], ...] | None = None
    seed: int | None = None
    masks: tuple[tuple[int, Rows], ...] = ()
    batched: bool = True  # written as a batch (a list of rows) rather than one sample

    @property
    def batch(self) -> int:
        return len(self.x)


def _rows(value: Any, n: int, where: str, what: str, unit: str) -> tuple[Rows, bool]:
    """One sample (a list of ``n`` numbers) or a batch (a list of such lists): ``(rows, batched)``."""
    from .schema import _kind, _vector

    if isinstance(value, list) and value and any(isinstance(v, list) for v in value):
        if not all(isinstance(v, list) for v in value):
            raise SpecError(where, "mixes numbers and lists",
                            f"write one sample as [{', '.join(['0.5'] * n)}] or a batch as a list of such rows")
        if len(value) > MAX_EXAMPLE_BATCH:
            raise SpecError(where, f"has {len(value)} rows (at most {MAX_EXAMPLE_BATCH} in a worked example)",
                            "use a smaller batch")
        return tuple(_vector(row, n, f"{where}[{i}]", what) for i, row in enumerate(value)), True
    if isinstance(value, list) and not value:
        raise SpecError(where, "is an empty list", f"write one {unit} of {n} numbers or a list of such rows")
    if not isinstance(value, list):
        raise SpecError(where, f"must be a list of {n} numbers or a list of such rows, got {_kind(value)}",
                        f"write [{', '.join(['0.5'] * n)}], or one such row per sample")
    return (_vector(value, n, where, what),), False


def _tensor(value: Any, shape: tuple[int, ...], where: str, layer: int):
    """A vector of ``shape[0]`` numbers or a ``rows x cols`` matrix (of layer ``layer``) as nested tuples."""
    from .schema import _matrix, _vector

    if len(shape) == 1:
        return _vector(value, shape[0], where, f"the number of units of layer {layer}")
    return _matrix(value, shape[0], shape[1], where, layer)


def _weights(value: Any, net: GraphNetwork) -> tuple[tuple[str, tuple], ...]:
    from .schema import _kind

    shapes = {name: shape for name, _node, _p, shape in net.parameter_shapes()}
    layers = {name: node.index for name, node, _p, _shape in net.parameter_shapes()}
    listing = ", ".join(shapes)
    if not isinstance(value, Mapping):
        raise SpecError("example.weights", f"must be a mapping, got {_kind(value)}", f"give every parameter: {listing}")
    for key in value:
        if key not in shapes:
            raise SpecError(f"example.weights.{key}", f"this network has no parameter {key}",
                            f"give exactly {listing} (the names derive --json lists)")
    missing = [name for name in shapes if name not in value]
    if missing:
        raise SpecError("example.weights", f"is missing {', '.join(missing)}", f"give exactly {listing}")
    return tuple((name, _tensor(value[name], shape, f"example.weights.{name}", layers[name]))
                 for name, shape in shapes.items())


def _mask(value: Any, units: int, batch: int, batched: bool, where: str) -> Rows:
    rows, _ = _rows(value, units, where, "the width of the layer", "row")
    if len(rows) != batch:
        raise SpecError(where, f"has {len(rows)} row{'s' if len(rows) != 1 else ''}, but the example has "
                        f"{batch} sample{'s' if batch != 1 else ''}", "give one 0/1 row per sample")
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v not in (0.0, 1.0):
                at = f"{where}[{i}][{j}]" if batched or len(rows) > 1 else f"{where}[{j}]"
                raise SpecError(at, f"must be 0 or 1, got {v:g}", "write 1 to keep a unit and 0 to drop it")
    return rows


def _masks(value: Any, net: GraphNetwork, batch: int, batched: bool) -> tuple[tuple[int, Rows], ...]:
    from .schema import _kind

    dropout = {n.index: n for n in net.nodes if n.kind.name == "dropout"}
    if not dropout:
        raise SpecError("example.masks", "this network has no dropout layer", "remove masks")
    listing = ", ".join(map(str, dropout))
    if not isinstance(value, Mapping):
        raise SpecError("example.masks", f"must be a mapping from layer number to mask, got {_kind(value)}",
                        f"write masks: {{{next(iter(dropout))}: [[1, 0, ...], ...]}}")
    out = {}
    for key, rows in value.items():
        index = int(key) if isinstance(key, str) and key.isdigit() else key
        if isinstance(index, bool) or not isinstance(index, int) or index not in dropout:
            raise SpecError(f"example.masks.{key}", f"layer {key} is not a dropout layer",
                            f"give the masks of the dropout layer{'s' if len(dropout) > 1 else ''} {listing}")
        out[index] = _mask(rows, dropout[index].units, batch, batched, f"example.masks.{key}")
    missing = [str(i) for i in dropout if i not in out]
    if missing:
        raise SpecError("example.masks", f"is missing the mask of dropout layer {', '.join(missing)}",
                        "give every dropout layer's mask, or leave masks out to draw them from seed")
    return tuple(sorted(out.items()))


def example_from(value: Any, net: GraphNetwork) -> GraphExample:
    """Validate a graph spec's ``example:`` block against ``net`` (shapes, names, masks)."""
    from .schema import _no_unknown, _targets

    _no_unknown(value, "example", KEYS)
    for key in ("x", "t"):
        if key not in value:
            raise SpecError(f"example.{key}", "is missing",
                            f"add '{key}: [...]' with the {'inputs' if key == 'x' else 'targets'}, one row per sample")
    x, batched = _rows(value["x"], net.inputs, "example.x", "the number of inputs", "sample")
    t, _ = _rows(value["t"], net.output.units, "example.t", "the number of outputs", "sample")
    if len(t) != len(x):
        raise SpecError("example.t", f"has {len(t)} target row{'s' if len(t) != 1 else ''}, but example.x has "
                        f"{len(x)} sample{'s' if len(x) != 1 else ''}", "give one target row per input row")
    for i, row in enumerate(t):
        _targets(row, net.loss, f"example.t[{i}]" if batched else "example.t")
    coupled = [n.index for n in net.nodes if n.kind.batch_coupled]
    if coupled and len(x) < 2:
        raise SpecError("example.x", f"is one sample, but batch normalization (layer {coupled[0]}) needs a batch "
                        "of at least 2 (the variance of one sample is 0)",
                        "write x and t as lists of rows, one per sample, such as x: [[...], [...], [...]]")
    if ("weights" in value) == ("seed" in value):
        raise SpecError("example", "needs either 'weights' or 'seed' (exactly one)",
                        "add 'seed: 0' to draw the starting parameters as model.py's init_params does, "
                        "or list every one under 'weights: {W1: [[...]], b1: [...], ...}'")
    seed = weights = None
    if "seed" in value:
        seed = value["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise SpecError("example.seed", f"must be a whole number from 0 to 2**32 - 1, got {seed!r}",
                            "write seed: 0")
    else:
        weights = _weights(value["weights"], net)
    masks = _masks(value["masks"], net, len(x), batched) if "masks" in value else ()
    dropout = [str(n.index) for n in net.nodes if n.kind.name == "dropout"]
    if dropout and not masks and seed is None:
        raise SpecError("example.masks", f"is missing: layer {', '.join(dropout)} is dropout and needs a 0/1 mask",
                        f"add masks: {{{dropout[0]}: [[1, 0, ...], ...]}} (one row per sample), "
                        "or use seed: N to draw the parameters and the masks")
    return GraphExample(x, t, weights=weights, seed=seed, masks=masks, batched=batched)
