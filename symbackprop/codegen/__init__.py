"""Code generation: the NumPy target (:mod:`.numpy_code`), the Array API target (:mod:`.array_api`) and
the training code of graphs of layers (:mod:`.graph_code`)."""

from .numpy_code import code_names, code_outputs, code_precheck

__all__ = ["code_names", "code_outputs", "code_precheck"]
