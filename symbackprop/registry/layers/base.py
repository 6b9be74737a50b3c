"""What one layer kind is: the registry entry every kind fills in.

An entry holds, in one place:

* its **forward definition** in index form over a batch, as a SymPy builder
  (:attr:`LayerKind.forward`): ``Y[b, j]`` from the input matrices ``X[b, k]``
  (rows are the B samples of the batch), its parameters and its options.
  SymPy differentiates it; the local derivatives are never pasted in;
* its **compact backward** (:attr:`LayerKind.backward`): the textbook
  simplification of ``dE/dX`` and ``dE/dθ`` from the upstream gradient
  ``G = dE/dY``.  The engine proves it equal to the SymPy derivative;
* its **parameters** with their shapes, initial values and decay flag;
* its **NumPy code**: real functions whose source is copied into generated code
  and which the numeric verification runs;
* its **Array API code** (:attr:`LayerKind.code_xp`): the same layer as
  ``(forward, backward)`` functions that take the namespace ``xp`` and call only
  the standard's functions (no ``out=``, nothing in place), copied into ``model_xp.py``;
* its **LaTeX and document text**, written with the notation's symbols;
* the **symbols a student writes** for it, for the claim checker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

Matrix = sp.Matrix


@dataclass(frozen=True)
class Param:
    """One parameter tensor of a layer, named ``{stem}{l}`` (``W1``, ``gamma2``)."""

    stem: str
    latex: str
    shape: Callable[[int, int], tuple[int, ...]] = field(repr=False)  # (fan_in, units) -> shape
    init: str = "zeros"  # "glorot", "zeros" or "ones"
    decay: bool = False  # included in L2 weight decay (weights, not biases or norm scales)
    title: str = ""


@dataclass(frozen=True)
class Option:
    """A spec key of a layer kind with its check."""

    key: str
    check: Callable[[Any, str], Any] = field(repr=False)  # (value, where) -> validated value
    default: Any = None
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Doc:
    """Document text of a kind; ``{...}`` placeholders are filled per notation profile.

    Placeholders: ``{l}`` (this layer), ``{p}`` (the previous layer), ``{x}``
    (input symbol, e.g. ``a^{(1)}``), ``{y}`` (output symbol), ``{g}`` (upstream
    gradient ``dE/dy``), ``{gx}`` (``dE/dx``), ``{E}`` (loss), ``{B}`` (batch size).
    """

    title: str
    summary: str
    forward: tuple[str, ...]
    local: tuple[str, ...]
    backward: tuple[str, ...]
    params: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (heading, equations) blocks


@dataclass(frozen=True)
class LayerKind:
    """A registry entry: everything symbackprop knows about one kind of layer."""

    name: str
    title: str
    options: tuple[Option, ...]
    params: Callable[[Mapping[str, Any]], tuple[Param, ...]] = field(repr=False)
    width: Callable[[tuple[int, ...], Mapping[str, Any]], int] = field(repr=False)
    forward: Callable[..., Matrix] = field(repr=False)
    backward: Callable[..., tuple[tuple[Matrix, ...], dict[str, Matrix]]] = field(repr=False)
    numpy_forward: Callable = field(repr=False)   # (inputs, params, opts, aux) -> (y, cache)
    numpy_backward: Callable = field(repr=False)  # (g, cache, params, opts) -> (input grads, param grads)
    doc: Doc = field(repr=False)
    inputs: int = 1           # how many earlier layers feed it (residual: 2)
    aux: tuple[str, ...] = ()  # per-step inputs beside X, e.g. the dropout mask
    batch_coupled: bool = False  # one sample's output depends on the whole batch
    claim_symbols: tuple[tuple[str, str], ...] = ()  # (role, LaTeX a student writes)
    code: tuple[Callable, ...] = field(default=(), repr=False)  # NumPy functions copied into model.py
    code_xp: tuple[Callable, ...] = field(default=(), repr=False)  # Array API (forward, backward) for model_xp.py

    @property
    def keys(self) -> tuple[str, ...]:
        return ("type", *(o.key for o in self.options))


def elementwise(M: Matrix, f: Callable[[sp.Expr], sp.Expr]) -> Matrix:
    """``f`` applied to every entry of ``M``."""
    return M.applyfunc(f)
