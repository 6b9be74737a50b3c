"""Derivation documents, one module per section.

:mod:`.model` (the blocks), :mod:`.context` (derivation, profile, printers), the sections
:mod:`.diagram`, :mod:`.forward` (forward pass and loss), :mod:`.equations` (the backpropagation
equations in index and matrix form), :mod:`.updates`, :mod:`.symbols` (notation table),
:mod:`.derivations` (+ :mod:`.general_steps`), :mod:`.worked`, :mod:`.appendix`; :mod:`.build`
assembles them and :mod:`.render` prints the model as LaTeX or Markdown.
"""
