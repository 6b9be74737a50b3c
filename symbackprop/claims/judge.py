"""One claim in, one verdict out: the contract between reading notes and judging claims.

The notes reader (file -> formulas -> claim texts) calls only these two functions:

* :func:`new_context` once per section of notes (a notation profile per section);
* :func:`judge` once per claim text, in the notes' order.  It never raises for any
  text: a claim it cannot read is ``cannot-check`` with the reason, a formula that
  is not a claim about the network is ``skipped`` with the reason in ``note``.
"""

from __future__ import annotations

from ..derive import Derivation
from ..notation import profile as make_profile
from .checker import POINTS, Context, Verdict, check_claim
from .evaluate import Truth
from .lexer import ClaimSyntaxError
from .parse import parse_claim


def new_context(derivation: Derivation, notation: str | None = None) -> Context:
    """The judging state for one run of claims in one notation profile."""
    prof = make_profile(notation, derivation.network.notation)
    ctx = Context(Truth(derivation, points=POINTS), prof)
    ctx.signs = {"delta": 1, "Delta": -1 if prof.descent_sign == "plus" else 1}
    return ctx


def judge(text: str, ctx: Context) -> Verdict:
    """The verdict on one claim text (a single relation, or a chain ``a = b = c``)."""
    try:
        claim = parse_claim(text)
    except ClaimSyntaxError as exc:
        return Verdict(text, "cannot-check", reason=str(exc))
    return check_claim(claim, ctx)
