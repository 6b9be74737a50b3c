"""Read a formula in one variable into SymPy without ever evaluating user text.

The text is parsed by Python's ``ast`` (parsing runs no code) and every node is
checked against a whitelist before a SymPy tree is built from it by hand.
"""

from __future__ import annotations

import ast

import sympy as sp

from ..errors import ExpressionError

MAX_LENGTH = 500
MAX_DEPTH = 40
MAX_EXPONENT = 64

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _sigmoid(u):
    return 1 / (1 + sp.exp(-u))


FUNCTIONS = {
    "exp": sp.exp,
    "log": sp.log,
    "tanh": sp.tanh,
    "sigmoid": _sigmoid,
    "sqrt": sp.sqrt,
}
ALLOWED_HELP = "use x, numbers, + - * / **, and exp, log, tanh, sigmoid, sqrt"


def parse_formula(text: str, variable: str = "x", symbol: sp.Symbol | None = None) -> sp.Expr:
    """Parse ``text`` (a formula in ``variable``) into a SymPy expression."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected a formula as text, got {type(text).__name__}; {ALLOWED_HELP}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"formula is {len(text)} characters long (at most {MAX_LENGTH}); shorten it")
    if not text.strip():
        raise ExpressionError(f"formula is empty; {ALLOWED_HELP}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError) as exc:
        msg = getattr(exc, "msg", None) or type(exc).__name__
        raise ExpressionError(f"cannot parse formula {text!r} ({msg}); {ALLOWED_HELP}") from None
    var = symbol if symbol is not None else sp.Symbol(variable, real=True)
    return _Builder(text, variable, var).build(tree.body, 0)


class _Builder:
    def __init__(self, text, variable, symbol):
        self.text, self.variable, self.symbol = text, variable, symbol

    def fail(self, what: str):
        raise ExpressionError(f"formula {self.text!r}: {what}; {ALLOWED_HELP}")

    def build(self, node: ast.AST, depth: int) -> sp.Expr:
        if depth > MAX_DEPTH:
            self.fail(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                self.fail(f"constant {node.value!r} is not a number")
            if isinstance(node.value, int):
                if abs(node.value) > 10**12:
                    self.fail(f"integer {node.value} is too large")
                return sp.Integer(node.value)
            return sp.Float(node.value)
        if isinstance(node, ast.Name):
            if node.id == self.variable:
                return self.symbol
            if node.id == "pi":
                return sp.pi
            self.fail(f"unknown name {node.id!r} (the variable is {self.variable!r})")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.build(node.operand, depth + 1)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            left = self.build(node.left, depth + 1)
            right = self.build(node.right, depth + 1)
            if isinstance(node.op, ast.Pow):
                if right.is_number and (not right.is_real or abs(float(right)) > MAX_EXPONENT):
                    self.fail(f"exponent {right} is outside [-{MAX_EXPONENT}, {MAX_EXPONENT}]")
                if left.is_number and right.is_number:
                    return sp.Pow(left, right)
                return left**right
            op = _BINOPS.get(type(node.op))
            if op is None:
                self.fail(f"operator {type(node.op).__name__} is not allowed")
            if isinstance(node.op, ast.Div) and right == 0:
                self.fail("division by zero")
            return op(left, right)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = getattr(node.func, "id", None) or type(node.func).__name__
                self.fail(f"function {name!r} is not allowed")
            if node.keywords or len(node.args) != 1:
                self.fail(f"{node.func.id}() takes exactly one argument")
            return FUNCTIONS[node.func.id](self.build(node.args[0], depth + 1))
        self.fail(f"{type(node).__name__} is not allowed")
