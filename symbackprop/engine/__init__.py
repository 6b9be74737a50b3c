"""The engine: the forward graph (:mod:`.graph`), the index form (:mod:`.general`), the derivation
(:mod:`.derive`), the matrix forms (:mod:`.matrix`, :mod:`.matrixform`), the numeric network
(:mod:`.numeric`), verification (:mod:`.verify`) and the finite-difference checker (:mod:`.gradcheck`).

The engine imports only :mod:`symbackprop.spec` and :mod:`symbackprop.registry`, never a renderer,
the code generators, the claim checker or the CLI (``tests/test_layout.py`` checks this)."""
