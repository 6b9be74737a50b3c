"""symbackprop: derive, document, generate and check backpropagation with SymPy."""

from .derive import Derivation, Step, derive
from .errors import SpecError, SymbackpropError
from .spec import Layer, Network, Optimizer, load

__all__ = ["Derivation", "Layer", "Network", "Optimizer", "SpecError", "Step", "SymbackpropError",
           "derive", "load"]
__version__ = "0.1.0"
