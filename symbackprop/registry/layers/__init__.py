"""The layer-kind registry: one entry per kind, looked up by the spec's ``type``."""

from __future__ import annotations

from . import batchnorm, dense, dropout, layernorm, residual
from .base import Doc, LayerKind, Option, Param

KINDS: dict[str, LayerKind] = {m.KIND.name: m.KIND for m in (dense, batchnorm, layernorm, dropout, residual)}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)

__all__ = ["KINDS", "KIND_NAMES", "Doc", "LayerKind", "Option", "Param"]
