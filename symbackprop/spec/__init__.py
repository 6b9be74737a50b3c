"""The network spec: read a YAML/JSON/TOML file or a mapping into a validated ``Network``
(a dense stack) or ``GraphNetwork`` (a graph of layer kinds, :mod:`symbackprop.spec.graph`).

The schema lives in :mod:`symbackprop.spec.schema`; it imports only the registry
(:mod:`symbackprop.registry`) and the error types.
"""

from .graph import GraphNetwork, Node
from .schema import (
    LAYER_KEYS,
    MAX_LAYERS,
    MAX_PARAMETERS,
    MAX_UNITS,
    NOTATION_KEYS,
    NOTATION_PROFILES,
    OPTIMIZERS,
    SEED_SPEC,
    Example,
    Layer,
    Network,
    Optimizer,
    from_dict,
    load,
    read_file,
)

__all__ = [
    "LAYER_KEYS",
    "MAX_LAYERS",
    "MAX_PARAMETERS",
    "MAX_UNITS",
    "NOTATION_KEYS",
    "NOTATION_PROFILES",
    "OPTIMIZERS",
    "SEED_SPEC",
    "Example",
    "GraphNetwork",
    "Layer",
    "Network",
    "Node",
    "Optimizer",
    "from_dict",
    "load",
    "read_file",
]
