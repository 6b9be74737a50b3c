"""Errors that reach the user as one clear line (exit code 2 from the CLI)."""


class SymbackpropError(Exception):
    """Base class for every user-facing error of symbackprop."""


class SpecError(SymbackpropError):
    """A malformed architecture spec: names the field, what is wrong and the fix."""

    def __init__(self, field: str, problem: str, fix: str):
        self.field, self.problem, self.fix = field, problem, fix
        super().__init__(f"{field}: {problem}; {fix}")


class ExpressionError(SymbackpropError):
    """A custom formula that cannot be read safely."""


class OutputError(SymbackpropError):
    """Writing outputs would overwrite a file the tool did not generate."""
