"""LaTeX printing of derivation expressions in the reader's notation.

:class:`NotationPrinter` subclasses SymPy's ``LatexPrinter``: canonical graph
symbols (``W1_2_3``, ``z2_1``, ``delta1_2``, ``t_1``), the general form's
``IndexedBase`` objects (``W2[k, j]``) and matrix symbols (``W2``, ``a1``) are
printed with the symbols of a notation :class:`~symbackprop.render.notation.Profile`.
:func:`equation_lines` breaks long right-hand sides at top-level terms.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.latex import LatexPrinter

from .notation import Profile

_CANONICAL = re.compile(r"^(W|b|z|a|delta|Delta)(\d+)_(\d+)(?:_(\d+))?$")
_STEM = re.compile(r"^(W|b|z|a|delta|Delta|n)(\d+)$")
_IO = re.compile(r"^(x|t)_(\d+)$")

FUNCTION_PRIME = "'"


class ActivationFn(sp.Function):
    """The activation function of a layer as a name: ``ActivationFn(l, z)`` prints as sigma(z)."""

    nargs = 2

    @property
    def arg(self):
        return self.args[1]


class ActivationPrime(sp.Function):
    """``f'`` of layer ``l`` at its argument, kept unevaluated: prints as sigma'(z)."""

    nargs = 2


class Ones(sp.Symbol):
    """The all-ones vector (prints as a bold 1)."""


def _kind(f) -> str:
    """The canonical stem of a symbol or indexed object: W, b, z, a, delta, x, t, ..."""
    name = str(f.base.label) if isinstance(f, sp.Indexed) else getattr(f, "name", "")
    m = re.match(r"^[A-Za-z]+", name)
    return m.group(0) if m else ""


def _indexed_in(expr) -> set:
    return set(expr.atoms(sp.Indexed))


def _join(parts: list[str], comma: bool) -> str:
    if comma or any(len(p) > 1 for p in parts):
        return ",".join(parts)
    return "".join(parts)


class NotationPrinter(LatexPrinter):
    """SymPy's LaTeX printer speaking a notation profile.

    ``functions`` maps a layer number to the LaTeX name of its activation.
    ``layer_marks`` forces the ``^{(l)}`` layer superscript on concrete symbols
    (needed in profiles without it, where unit numbers alone are ambiguous).
    """

    printmethod = "_symbackprop_latex"

    def __init__(self, profile: Profile, functions: dict[int, str] | None = None,
                 layer_marks: bool = True, settings: dict | None = None):
        base = {"order": "none", "mul_symbol": None, "fold_short_frac": False}
        base.update(settings or {})
        super().__init__(base)
        self.profile = profile
        self.functions = functions or {}
        self.layer_marks = layer_marks

    # ------------------------------------------------------------------ names

    def stem(self, kind: str) -> str:
        """LaTeX stem of a quantity kind (W, b, z, a, delta, Delta, x, t, E)."""
        p = self.profile
        return {"W": p.weight, "b": p.bias, "z": p.preactivation, "a": p.activation_value,
                "delta": p.gradient_delta, "Delta": p.delta, "x": p.input, "t": p.target,
                "E": p.loss}[kind]

    def layer(self, l) -> str:
        return f"^{{({self._print(l) if not isinstance(l, (int, str)) else l})}}"

    def named(self, kind: str, l, indices: list[str]) -> str:
        """``kind`` of layer ``l`` (None: no layer mark) with printed indices."""
        if kind == "W" and self.profile.weight_order == "from_to":
            indices = list(reversed(indices))
        sub = _join(indices, self.profile.index_comma and kind == "W")
        mark = self.layer(l) if (l is not None and (self.profile.layer_superscript or self.layer_marks)) else ""
        if kind == "a" and l == 0:
            return f"{self.stem('x')}_{{{sub}}}"
        return f"{self.stem(kind)}{mark}_{{{sub}}}"

    def function_name(self, l: int) -> str:
        return self.functions.get(int(l), self.profile.activation)

    # ------------------------------------------------------------------ reading order

    def factor_rank(self, f, inner: set) -> float:
        """Where a factor goes in a printed product: numbers, rates, f', the output error
        (a - t), f' written with outputs, weights, then error terms and activations (activations
        first in profiles that update with +), sums last.  ``inner`` holds the atoms that occur
        inside the product's sums, so ``a (1 - a)`` stays together."""
        if f.is_Number:
            return 0
        if isinstance(f, sp.Symbol) and f.name in ("alpha", "eta", "lr"):
            return 1
        if isinstance(f, (ActivationPrime, ActivationFn)):
            return 2
        if isinstance(f, sp.Derivative) or (isinstance(f, sp.MatrixSymbol) and f.name.startswith(("dEd", "gradE"))):
            return 1.5
        if isinstance(f, sp.MatMul):
            return 1.8
        if isinstance(f, sp.MatrixSymbol) and f.name.startswith("fprime"):
            return 2
        if isinstance(f, (sp.Add, sp.Pow, sp.MatAdd, sp.HadamardPower)):
            return 1.9 if any(_kind(s) == "t" for s in f.free_symbols | _indexed_in(f)) else 2.6
        if isinstance(f, (sp.Sum, sp.MatMul)):
            return 7
        if f in inner:
            return 2.5
        kind = _kind(f)
        error_first = self.profile.descent_sign != "plus"
        if kind == "W":
            return 4
        if kind in ("delta", "Delta"):
            return 5 if error_first else 6
        if kind in ("a", "x"):
            return 6 if error_first else 5
        return 3.5

    def _print_Mul(self, expr):
        if isinstance(expr, sp.Mul) and expr.has(sp.Sum):  # 1/n sum_k ...: the factor in front
            inverse = [f for f in expr.args if f.is_Pow and f.exp == -1 and f.base.is_Symbol]
            if len(inverse) == 1:
                rest = sp.Mul(*[f for f in expr.args if f is not inverse[0]])
                return rf"\frac{{1}}{{{self._print(inverse[0].base)}}} {self._print(rest)}"
        if isinstance(expr, sp.Mul) and expr.is_commutative:
            coeff, rest = expr.as_coeff_Mul()
            if coeff.is_Rational and not coeff.is_Integer and rest != 1 and not any(
                    f.is_Pow and f.exp.is_negative for f in sp.Mul.make_args(rest)):
                sign = "- " if coeff < 0 else ""
                frac = rf"\frac{{{abs(coeff.p)}}}{{{coeff.q}}}"
                body = self._print(rest)
                if isinstance(rest, sp.Add):
                    body = rf"\left({body}\right)"
                return f"{sign}{frac} {body}"
        if isinstance(expr, sp.Mul) and expr.is_commutative and len(expr.args) > 1:
            inner = set()
            for f in expr.args:
                if isinstance(f, (sp.Add, sp.Pow)):
                    inner |= f.free_symbols | _indexed_in(f)
            args = sorted(expr.args, key=lambda f: self.factor_rank(f, inner))  # stable
            if list(args) != list(expr.args):
                expr = sp.Mul(*args, evaluate=False)
        return super()._print_Mul(expr)

    def _print_Add(self, expr, order=None):
        terms = list(expr.args)
        positive = sorted((t for t in terms if not t.could_extract_minus_sign()),
                          key=lambda t: 0 if isinstance(t, sp.Sum) else 1 if t.is_Atom or t.is_Indexed else 2)
        if positive and (terms[0].could_extract_minus_sign() or positive[0] is not terms[0]):
            expr = sp.Add(*positive, *[t for t in terms if t.could_extract_minus_sign()], evaluate=False)
        return super()._print_Add(expr, order="none").replace("+ - ", "- ")  # an unevaluated -x*y term

    # ------------------------------------------------------------------ dispatch

    def _print_Symbol(self, expr, style="plain"):
        name = expr.name
        m = _CANONICAL.match(name)
        if m:
            kind, l, j, k = m.groups()
            return self.named(kind, int(l), [j] if k is None else [j, k])
        m = _IO.match(name)
        if m:
            return f"{self.stem(m.group(1))}_{{{m.group(2)}}}"
        if name == "E":
            return self.profile.loss
        greek = {"alpha": self.profile.learning_rate, "mu": r"\mu", "beta1": r"\beta_{1}", "beta2": r"\beta_{2}",
                 "epsilon": r"\epsilon", "tau": r"\tau"}
        if name in greek:
            return greek[name]
        m = _STEM.match(name)
        if m:
            kind, l = m.group(1), int(m.group(2))
            if kind == "n":
                return f"n_{{{l}}}"
            return self.named_vector(kind, l)
        return super()._print_Symbol(expr, style)

    def named_vector(self, kind: str, l: int) -> str:
        """A whole layer's quantity: W^{(l)}, z^{(l)}, x for a^{(0)}."""
        if kind == "a" and l == 0:
            return self.stem("x")
        return f"{self.stem(kind)}{self.layer(l)}"

    def _print_MatrixSymbol(self, expr):
        name = expr.name
        if name == "1":
            return r"\mathbf{1}"
        if expr.shape[0] == sp.Symbol("B", integer=True, positive=True) or name == "X":
            return self.batch_name(name)
        m = re.match(r"^(v|m|mhat|vhat)_([Wb])(\d+)$", name)
        if m:  # optimizer state of one parameter
            state = {"v": "v", "m": "m", "mhat": r"\hat{m}", "vhat": r"\hat{v}"}[m.group(1)]
            return f"{state}_{{{self.named_vector(m.group(2), int(m.group(3)))}}}"
        if name.startswith("fprime"):
            l = int(name[len("fprime"):])
            return rf"{self.function_name(l)}'\bigl({self.named_vector('z', l)}\bigr)"
        if name == "gradE":
            return self.partial_of(self._print(sp.MatrixSymbol(f"a{expr.shape[0].name[1:]}", 1, 1)))
        if re.match(r"^d[Wb]\d+$", name):
            return self.partial_of(self.named_vector(name[1], int(name[2:])))
        if name.startswith("dEd"):
            return self.partial_of(self._print(sp.MatrixSymbol(name[3:], 1, 1)))
        if name == "J":
            return r"J"
        if name in ("x", "t"):
            return self.stem(name)
        m = _STEM.match(name)
        if m:
            return self.named_vector(m.group(1), int(m.group(2)))
        return super()._print_MatrixSymbol(expr)

    def partial_of(self, wrt: str) -> str:
        return rf"\frac{{\partial {self.profile.loss}}}{{\partial {wrt}}}"

    def batch_name(self, name: str) -> str:
        """Batch matrices (rows are samples): the per-sample symbol in bold."""
        if name == "X":
            stem = self.stem("x")
            return rf"\mathbf{{{stem.upper() if len(stem) == 1 else stem}}}"
        m = re.match(r"^(Z|A|Delta|Fprime)(\d+)$", name)
        if not m:
            return name
        kind, l = m.group(1), int(m.group(2))
        if kind == "Fprime":
            return rf"{self.function_name(l)}'\bigl({self.bold(self.stem('z'))}^{{({l})}}\bigr)"
        stem = self.stem({"Z": "z", "A": "a", "Delta": "delta"}[kind])
        return rf"{self.bold(stem)}^{{({l})}}"

    @staticmethod
    def bold(stem: str) -> str:
        return rf"\boldsymbol{{{stem}}}" if stem.startswith("\\") else rf"\mathbf{{{stem}}}"

    def _print_OneMatrix(self, expr):
        return r"\mathbf{1}"

    def _print_Ones(self, expr):
        return r"\mathbf{1}"

    def _print_Indexed(self, expr):
        label = str(expr.base.label)
        indices = [self._print(i) for i in expr.indices]
        if label in ("x", "t"):
            return f"{self.stem(label)}_{{{_join(indices, False)}}}"
        m = _STEM.match(label)
        if m:
            return self.named(m.group(1), int(m.group(2)), indices)
        if label in ("W", "b", "z", "a", "delta", "Delta"):  # a layer-free general symbol
            return self.named(label, None, indices)
        return super()._print_Indexed(expr)

    def _print_Pow(self, expr):
        base = expr.base
        if isinstance(base, (sp.Indexed, sp.Symbol)) and expr.exp.is_Integer and expr.exp > 1:
            printed = self._print(base)
            if "^" in printed or "_" in printed:
                return rf"\left({printed}\right)^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _print_ActivationFn(self, expr, exp=None):
        l, arg = expr.args
        power = f"^{{{exp}}}" if exp else ""
        return rf"{self.function_name(l)}{power}({self._print(arg)})"

    def _print_ActivationPrime(self, expr):
        l, arg = expr.args
        return rf"{self.function_name(l)}'({self._print(arg)})"

    def _print_Derivative(self, expr):
        num = self._print(expr.expr)
        den = " ".join(rf"\partial {self._print(v)}" for v, n in expr.variable_count for _ in range(n))
        if not isinstance(expr.expr, (sp.Symbol, sp.Indexed)):
            return rf"\frac{{\partial}}{{{den}}}\left({num}\right)"
        return rf"\frac{{\partial {num}}}{{{den}}}"

    def _print_HadamardProduct(self, expr):
        divisors = [a for a in expr.args if isinstance(a, sp.HadamardPower) and a.exp == -1]
        if len(divisors) == 1 and len(expr.args) == 2:
            num = next(a for a in expr.args if a is not divisors[0])
            den = divisors[0].base
            wrap = lambda e: rf"\bigl({self._print(e)}\bigr)" if isinstance(e, sp.MatAdd) else self._print(e)
            return rf"{wrap(num)} \oslash {wrap(den)}"
        inner = set()
        for f in expr.args:
            if isinstance(f, (sp.MatAdd, sp.HadamardPower)):
                inner |= f.free_symbols
        args = sorted(expr.args, key=lambda f: self.factor_rank(f, inner))
        return r" \odot ".join(rf"\left({self._print(a)}\right)" if isinstance(a, sp.MatAdd) else self._print(a)
                               for a in args)

    def _print_HadamardPower(self, expr):
        if expr.exp == sp.Rational(1, 2):
            return rf"\sqrt{{{self._print(expr.base)}}}"
        return rf"\left({self._print(expr.base)}\right)^{{\circ {self._print(expr.exp)}}}"

    def _print_MatMul(self, expr):
        scalars = [a for a in expr.args if not getattr(a, "is_Matrix", False) and not isinstance(a, sp.MatrixExpr)]
        mats = [a for a in expr.args if a not in scalars]
        head = ""
        if scalars:
            c = sp.Mul(*scalars)
            if isinstance(c, sp.Add):
                head = rf"\left({self._print(c)}\right) "
            elif c == -1:
                head = "- "
            elif c == 1:
                head = ""
            elif c.as_coeff_Mul()[0] < 0:
                head = "- " + self._print(-c) + " "
            else:
                head = self._print(c) + " "
        body = " ".join(rf"\left({self._print(m)}\right)" if isinstance(m, (sp.MatAdd, sp.HadamardProduct))
                        and (len(mats) > 1 or scalars) else self._print(m) for m in mats)
        return head + body

    def _print_MatAdd(self, expr):
        def negative(t) -> bool:
            if not isinstance(t, sp.MatMul):
                return False
            c = sp.Mul(*[a for a in t.args if not isinstance(a, sp.MatrixExpr)])
            return not isinstance(c, sp.Add) and c.as_coeff_Mul()[0] < 0

        def ones_first(t) -> bool:  # 1 b^T goes after X W^T, epsilon 1 after sqrt(v)
            return isinstance(t, sp.MatMul) and any(getattr(a, "name", "") == "1" or isinstance(a, sp.OneMatrix)
                                                    for a in t.args)

        terms = list(expr.args)
        positive = sorted((t for t in terms if not negative(t)), key=ones_first)
        negatives = [t for t in terms if negative(t)]
        ordered = positive + negatives
        out = self._print(ordered[0])
        for t in ordered[1:]:
            out += (" - " + self._print(-t)) if negative(t) else (" + " + self._print(t))
        return out

    def _print_Transpose(self, expr):
        return self.transposed(self._print(expr.arg), isinstance(expr.arg, sp.MatrixSymbol)
                               and expr.arg.name.startswith("W"))

    @staticmethod
    def transposed(inner: str, matrix: bool = False) -> str:
        """``(W^{(2)})^T`` for a matrix, ``a^{(1)T}`` for a vector with a layer mark, ``x^T``."""
        if matrix:
            return rf"\bigl({inner}\bigr)^{{T}}"
        if inner.endswith(")}") and "^{(" in inner:
            return inner[:-1] + "T}"
        return rf"{inner}^{{T}}"

    def _print_Sum(self, expr):
        # \sum_{k=1}^{n_2} with the summand in parentheses only when it is a sum
        (var, lo, hi), = expr.limits
        except_at = _except_factor(expr.function, var)
        if except_at is not None:  # sum over k != j, written (1 - KroneckerDelta(k, j)) by engine.steps
            factor, other = except_at
            rest = sp.Mul(*[f for f in sp.Mul.make_args(expr.function) if f != factor], evaluate=False)
            body = self._print(rest)
            if isinstance(rest, sp.Add):
                body = rf"\left({body}\right)"
            return rf"\sum_{{{self._print(var)} \neq {self._print(other)}}} {body}"
        if expr.function.could_extract_minus_sign():
            return "- " + self._print(sp.Sum(-expr.function, *expr.limits))
        body = self._print(expr.function)
        if isinstance(expr.function, sp.Add):
            body = rf"\left({body}\right)"
        return rf"\sum_{{{self._print(var)}={self._print(lo)}}}^{{{self._print(hi)}}} {body}"


def _except_factor(f: sp.Expr, var: sp.Symbol):
    """``(factor, j)`` when ``f`` has a factor ``1 - KroneckerDelta(var, j)``, else None."""
    for factor in sp.Mul.make_args(f):
        if isinstance(factor, sp.Add) and len(factor.args) == 2 and 1 in factor.args:
            other = next(a for a in factor.args if a != 1)
            if isinstance(other, sp.Mul) and other.args[0] == -1 and isinstance(other.args[1], sp.KroneckerDelta):
                i, j = other.args[1].args
                if var in (i, j):
                    return factor, (j if i == var else i)
    return None


def latex(expr: sp.Expr, printer: NotationPrinter) -> str:
    return printer.doprint(expr)


# ------------------------------------------------------------------ line breaking

MAX_LINE = 52
"""Rough width budget of one display line, in characters of LaTeX source without markup."""


def _group(tex: str, start: int) -> tuple[str, int]:
    """The balanced ``{...}`` group at ``start`` (its content) and the index after it."""
    depth = 0
    for i in range(start, len(tex)):
        depth += {"{": 1, "}": -1}.get(tex[i], 0)
        if depth == 0:
            return tex[start + 1:i], i + 1
    return tex[start + 1:], len(tex)


def _visible_length(tex: str) -> float:
    """A rough estimate of the printed width of a LaTeX fragment, in characters."""
    i = tex.find(r"\frac{")
    if i >= 0:
        num, j = _group(tex, i + 5)
        den, k = _group(tex, j)
        return _visible_length(tex[:i]) + max(_visible_length(num), _visible_length(den)) + _visible_length(tex[k:])
    i = tex.find("^{")
    if i < 0:
        i = tex.find("_{")
    if i >= 0:  # scripts print small
        script, j = _group(tex, i + 1)
        return _visible_length(tex[:i]) + 0.6 * _visible_length(script) + _visible_length(tex[j:])
    t = re.sub(r"\\(left|right|bigl|bigr|Bigl|Bigr|mathrm|operatorname|text|mathbf|boldsymbol)\b", "", tex)
    t = re.sub(r"\\[a-zA-Z]+", "x", t)
    t = re.sub(r"[{}^_ ]", "", t)
    return len(t)


def _terms(expr: sp.Expr, printer: NotationPrinter) -> list[str] | None:
    """Top-level terms of a sum (each with its sign), or None when it is not a sum."""
    if not isinstance(expr, sp.Add):
        return None
    out = []
    for i, term in enumerate(expr.args):
        tex = printer._print(term)
        if i == 0:
            out.append(tex)
        elif tex.startswith("-"):
            out.append("- " + tex[1:].lstrip())
        else:
            out.append("+ " + tex)
    return out


def rhs_lines(expr: sp.Expr, printer: NotationPrinter, width: int = MAX_LINE) -> list[str]:
    """The printed ``expr`` cut at top-level sum terms into lines of about ``width``."""
    whole = printer.doprint(expr)
    if _visible_length(whole) <= width:
        return [whole]
    prefix, suffix, inner = "", "", expr
    if isinstance(expr, sp.Mul):
        sums = [f for f in expr.args if isinstance(f, sp.Add)]
        if len(sums) == 1:
            others = [f for f in expr.args if f is not sums[0]]
            prefix = printer.doprint(sp.Mul(*others, evaluate=False)) + r" \bigl(" if others else r"\bigl("
            suffix, inner = r"\bigr)", sums[0]
    terms = _terms(inner, printer)
    if terms is None:
        return [whole]
    lines, current = [], prefix
    for term in terms:
        if current.strip() and _visible_length(current + term) > width:
            lines.append(current)
            current = ""
        current = f"{current} {term}".strip()
    lines.append(current + suffix)
    return lines


def aligned(lhs: str, lines: list[str], relation: str = "=") -> list[str]:
    """Rows for an ``aligned``/``align*`` block: ``lhs &= line1`` then ``&\\quad line2``."""
    rows = [f"{lhs} &{relation} {lines[0]}"]
    rows.extend(rf"&\quad {line}" for line in lines[1:])
    return rows


# ------------------------------------------------------------------ text

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                "%": r"\%", "_": r"\_", "^": r"\^{}", "~": r"\~{}", "<": r"\textless{}", ">": r"\textgreater{}",
                "|": r"\textbar{}", '"': "''"}


def escape_tex(text: str) -> str:
    """Prose (names, titles from a spec) as LaTeX text: every special character neutralised.

    Backslashes become ``\\textbackslash{}``, so no ``\\input``, ``\\include`` or ``\\write18``
    can come in from a spec; characters outside printable ASCII become ``?``.
    """
    out = []
    for ch in text:
        if ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ch == "\n":
            out.append(" ")
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.append("?")
    return "".join(out).replace("--", "-{}-").replace("--", "-{}-")  # no en/em dashes from option names
