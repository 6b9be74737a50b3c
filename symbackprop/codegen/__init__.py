"""Code generation: the NumPy target (:mod:`.numpy_code`) and the Array API target (:mod:`.array_api`)."""

from .numpy_code import code_names, code_outputs

__all__ = ["code_names", "code_outputs"]
