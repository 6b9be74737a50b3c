"""Check hand derivations: parse claims (never evaluated as code) and judge them against a Derivation."""

from .checker import METHOD, Verdict, check
from .lexer import ClaimSyntaxError

__all__ = ["METHOD", "ClaimSyntaxError", "Verdict", "check"]
