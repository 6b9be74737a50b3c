"""Batch normalization in the document: from the paper's per-path equations to the compact form.

Ioffe and Szegedy (2015, section 3) print dE/dx_i as the sum of three paths
(through x-hat_i, the batch variance and the batch mean).  The document shows
those equations, then the algebra that turns them into the compact form
``gamma_j / (B sigmahat_j) (B g_ij - sum_b g_bj - xhat_ij sum_b g_bj xhat_bj)``.

Each printed row of that algebra is a :class:`Step`: its LaTeX and, beside it,
the same right-hand side as SymPy on a concrete batch (:class:`Batch`), so a
test can check that every row equals the quantity on its left-hand side
(``tests/test_documents_graph.py`` does, at B = 3 and 4).  LaTeX templates
use ``<x>``, ``<g>``, ``<E>``, ``<B>`` for the layer's input, upstream
gradient, loss and batch-size symbols; ``\\gamma_j`` gets the layer mark when
the document fills them in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class Batch:
    """One unit of a concrete batch: inputs ``x``, upstream ``g``, scale, epsilon and the statistics."""

    x: tuple[sp.Expr, ...]
    g: tuple[sp.Expr, ...]
    gamma: sp.Expr
    eps: sp.Expr

    @property
    def B(self) -> int:
        return len(self.x)

    @property
    def mu(self) -> sp.Expr:
        return sp.Add(*self.x) / self.B

    @property
    def var(self) -> sp.Expr:
        return sp.Add(*((xb - self.mu) ** 2 for xb in self.x)) / self.B

    @property
    def sig(self) -> sp.Expr:
        return sp.sqrt(self.var + self.eps)

    def xhat(self, b: int) -> sp.Expr:
        return (self.x[b] - self.mu) / self.sig

    def dxhat(self, b: int) -> sp.Expr:
        return self.g[b] * self.gamma

    def sum(self, f: Callable[[int], sp.Expr]) -> sp.Expr:
        return sp.Add(*(f(b) for b in range(self.B)))

    # the quantities of the paper, as the steps write them
    def dvar(self) -> sp.Expr:
        return _DVAR[0].value(self, 0)

    def dmu(self) -> sp.Expr:
        return _DMU[0].value(self, 0)


@dataclass(frozen=True)
class Step:
    """One printed row: ``lhs`` (empty: continues the row above), ``rhs``, its label and its SymPy value.

    ``quantity`` names what the row equals: ``"zero"``, ``"dvar"`` (dE/dsigma^2_B),
    ``"dmu"`` (dE/dmu_B) or ``"dx"`` (dE/dx_i); ``value(batch, i)`` is the right-hand side
    for sample ``i`` (0-based).
    """

    quantity: str
    lhs: str
    rhs: str
    label: str
    value: Callable[[Batch, int], sp.Expr]


DXHAT = r"\frac{\partial <E>}{\partial \hat{x}_{ij}}"
DVAR = r"\frac{\partial <E>}{\partial \sigma^2_{B,j}}"
DMU = r"\frac{\partial <E>}{\partial \mu_{B,j}}"
DX = r"\frac{\partial <E>}{\partial <x>_{ij}}"
SUM_I = r"\sum_{i=1}^{<B>}"
SUM_B = r"\sum_{b=1}^{<B>}"
K = r"\frac{\gamma_j}{<B> \hat{\sigma}_j}"

_ZERO = (
    Step("zero", rf"{SUM_I} \left(<x>_{{ij}} - \mu_{{B,j}}\right)", rf"{SUM_I} <x>_{{ij}} - <B> \, \mu_{{B,j}}",
         "the sum of a difference; $\\mu_{B,j}$ does not depend on $i$",
         lambda s, i: s.sum(lambda b: s.x[b]) - s.B * s.mu),
    Step("zero", "", "0", "definition of $\\mu_{B,j}$", lambda s, i: sp.Integer(0)),
)

_DMU = (
    Step("dmu", DMU,
         rf"-\frac{{1}}{{\hat{{\sigma}}_j}} {SUM_I} {DXHAT} - \frac{{2}}{{<B>}} \, {DVAR} {SUM_I} \left(<x>_{{ij}} - \mu_{{B,j}}\right)",
         "the paper's equation, constants taken out",
         lambda s, i: -s.sum(s.dxhat) / s.sig
         + s.dvar() * sp.Integer(-2) / s.B * s.sum(lambda b: s.x[b] - s.mu)),
    Step("dmu", "", rf"-\frac{{1}}{{\hat{{\sigma}}_j}} {SUM_I} {DXHAT}",
         "the $\\sigma^2_{B,j}$ term vanishes (sum above)",
         lambda s, i: -s.sum(s.dxhat) / s.sig),
    Step("dmu", "", rf"-\frac{{\gamma_j}}{{\hat{{\sigma}}_j}} {SUM_B} <g>_{{bj}}",
         "$\\partial <E>/\\partial \\hat{x}_{bj} = <g>_{bj} \\gamma_j$",
         lambda s, i: -s.gamma / s.sig * s.sum(lambda b: s.g[b])),
)

_DVAR = (
    Step("dvar", DVAR,
         rf"-\frac{{1}}{{2 \hat{{\sigma}}_j^{{3}}}} {SUM_I} <g>_{{ij}} \gamma_j \left(<x>_{{ij}} - \mu_{{B,j}}\right)",
         "the paper's equation; $\\left(\\sigma^2_{B,j} + \\epsilon\\right)^{-3/2} = \\hat{\\sigma}_j^{-3}$",
         lambda s, i: -s.sum(lambda b: s.g[b] * s.gamma * (s.x[b] - s.mu)) / (2 * s.sig ** 3)),
    Step("dvar", "", rf"-\frac{{\gamma_j}}{{2 \hat{{\sigma}}_j^{{2}}}} {SUM_B} <g>_{{bj}} \hat{{x}}_{{bj}}",
         "$<x>_{bj} - \\mu_{B,j} = \\hat{\\sigma}_j \\hat{x}_{bj}$",
         lambda s, i: -s.gamma / (2 * s.sig ** 2) * s.sum(lambda b: s.g[b] * s.xhat(b))),
)

_DX = (
    Step("dx", DX,
         rf"\frac{{<g>_{{ij}} \gamma_j}}{{\hat{{\sigma}}_j}} + {DVAR} \frac{{2\left(<x>_{{ij}} - \mu_{{B,j}}\right)}}{{<B>}} + \frac{{1}}{{<B>}} {DMU}",
         "the paper's, its first path filled in",
         lambda s, i: s.dxhat(i) / s.sig + s.dvar() * 2 * (s.x[i] - s.mu) / s.B + s.dmu() / s.B),
    Step("dx", "",
         rf"\frac{{\gamma_j <g>_{{ij}}}}{{\hat{{\sigma}}_j}} - \frac{{\gamma_j}}{{2 \hat{{\sigma}}_j^{{2}}}} \left({SUM_B} <g>_{{bj}} \hat{{x}}_{{bj}}\right) \frac{{2 \hat{{\sigma}}_j \hat{{x}}_{{ij}}}}{{<B>}} \\ &\qquad - \frac{{1}}{{<B>}} \frac{{\gamma_j}}{{\hat{{\sigma}}_j}} {SUM_B} <g>_{{bj}}",
         "substitute both results; $<x>_{ij} - \\mu_{B,j} = \\hat{\\sigma}_j \\hat{x}_{ij}$",
         lambda s, i: s.gamma * s.g[i] / s.sig
         - s.gamma / (2 * s.sig ** 2) * s.sum(lambda b: s.g[b] * s.xhat(b)) * 2 * s.sig * s.xhat(i) / s.B
         - s.gamma / (s.B * s.sig) * s.sum(lambda b: s.g[b])),
    Step("dx", "",
         rf"{K} \, <B> \, <g>_{{ij}} - {K} \, \hat{{x}}_{{ij}} {SUM_B} <g>_{{bj}} \hat{{x}}_{{bj}} \\ &\qquad - {K} {SUM_B} <g>_{{bj}}",
         "cancel $2 \\hat{\\sigma}_j$; all over $<B> \\hat{\\sigma}_j$",
         lambda s, i: s.gamma / (s.B * s.sig) * s.B * s.g[i]
         - s.gamma / (s.B * s.sig) * s.xhat(i) * s.sum(lambda b: s.g[b] * s.xhat(b))
         - s.gamma / (s.B * s.sig) * s.sum(lambda b: s.g[b])),
    Step("dx", "",
         rf"{K} \left(<B> \, <g>_{{ij}} - {SUM_B} <g>_{{bj}} - \hat{{x}}_{{ij}} {SUM_B} <g>_{{bj}} \hat{{x}}_{{bj}}\right)",
         "common factor out: the compact form",
         lambda s, i: s.gamma / (s.B * s.sig) * (s.B * s.g[i] - s.sum(lambda b: s.g[b])
                                                  - s.xhat(i) * s.sum(lambda b: s.g[b] * s.xhat(b)))),
)

PARTS: tuple[tuple[str, tuple[Step, ...]], ...] = (
    ("The sum of the deviations from the mean is zero", _ZERO),
    ("The mean path: the variance term drops out", _DMU),
    ("The variance path, in normalized values", _DVAR),
    ("Substitute and collect", _DX),
)
"""The algebra, in reading order: (heading, rows)."""

STEPS: tuple[Step, ...] = tuple(s for _, rows in PARTS for s in rows)


def fill(text: str, x: str, g: str, E: str, B: str) -> str:
    """A step's LaTeX with the layer's symbols in place of ``<x>``, ``<g>``, ``<E>``, ``<B>``."""
    for key, value in (("<x>", x), ("<g>", g), ("<E>", E), ("<B>", B)):
        text = text.replace(key, value)
    return text
