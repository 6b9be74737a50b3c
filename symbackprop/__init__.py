"""symbackprop: derive, document, generate and check backpropagation with SymPy."""

from .claims import Verdict, check
from .derive import Derivation, Step, derive
from .errors import SpecError, SymbackpropError
from .spec import Layer, Network, Optimizer, load

__all__ = ["Derivation", "Layer", "Network", "Optimizer", "SpecError", "Step", "SymbackpropError",
           "Verdict", "check", "derive", "load"]
__version__ = "0.1.0"
