"""symbackprop: derive, document, generate and check backpropagation with SymPy."""

from .engine.derive import Derivation, Step, derive
from .errors import SpecError, SymbackpropError
from .render import notebook as _notebook  # noqa: F401  (attaches Derivation's Jupyter display)
from .spec import Layer, Network, Optimizer, load

__all__ = ["Derivation", "Layer", "Network", "Optimizer", "SpecError", "Step", "SymbackpropError",
           "Verdict", "check", "derive", "load"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``check`` and ``Verdict`` load the claim checker (its grammar) on first use only."""
    if name in ("check", "Verdict"):
        from . import claims

        return getattr(claims, name)
    raise AttributeError(f"module 'symbackprop' has no attribute {name!r}")
