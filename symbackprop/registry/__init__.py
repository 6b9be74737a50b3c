"""The registry: activations and losses (:mod:`.ops`), their overflow-free forms (:mod:`.stable`) and the
whitelisted reader of custom formulas (:mod:`.safeexpr`).  It imports nothing else of the package but
:mod:`symbackprop.errors`."""
