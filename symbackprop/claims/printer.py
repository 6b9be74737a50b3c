"""Print claim trees back as LaTeX (for the suggested fix, in the user's own notation)."""

from __future__ import annotations

import re
from dataclasses import replace

from .nodes import Bin, Call, Claim, Deriv, Idx, Neg, Node, Num, Paren, Sym, walk

NAMES = {"alpha": r"\alpha", "eta": r"\eta", "sigma": r"\sigma", "varphi": r"\varphi", "delta": r"\delta",
         "Delta": r"\Delta", "exp": r"\exp", "log": r"\log", "tanh": r"\tanh", "net": r"\mathrm{net}",
         "in": r"\mathrm{in}", "out": r"\mathrm{out}", "relu": r"\operatorname{ReLU}",
         "softmax": r"\operatorname{softmax}", "sigmoid": r"\operatorname{sigmoid}", "DeltaW": r"\Delta W", "Deltaw": r"\Delta w",
         "Deltab": r"\Delta b", "Deltatheta": r"\Delta\theta", "ell": r"\ell", "one": r"\mathbb{1}", "normsq": r"\mathrm{normsq}", "kron": r"\delta", "onehot": "y", "step": r"\mathbb{1}", "diag": r"\operatorname{diag}", "max": r"\max", "rowsum": r"\mathrm{rowsum}",
         "theta": r"\theta", "lambda": r"\lambda", "epsilon": r"\epsilon", "mu": r"\mu", "beta": r"\beta",
         "gamma": r"\gamma"}
RELATIONS = {"=": "=", "<-": r"\leftarrow"}
_LETTER = re.compile(r"[A-Za-z0-9]|\\[A-Za-z]+")
"""One index as a person writes it without a comma: a letter, a digit or a command (\\ell)."""
MUL = {"cdot": r" \cdot ", "times": r" \times ", "*": " ", "": " "}


def offset_form(node: Node) -> Node:
    """A layer or index with its integer offsets added up, as a person writes it: ``l+1-1`` -> ``l``,
    ``l-1+1`` -> ``l``, ``l+-1`` -> ``l-1``, ``2+1`` -> ``3``; anything else unchanged."""
    terms: list[tuple[int, Node]] = []

    def collect(n: Node, sign: int) -> bool:
        while isinstance(n, Paren):
            n = n.arg
        if isinstance(n, Bin) and n.op in "+-":
            return collect(n.left, sign) and collect(n.right, sign if n.op == "+" else -sign)
        if isinstance(n, Neg):
            return collect(n.arg, -sign)
        if isinstance(n, Num) and n.value.denominator != 1:
            return False
        terms.append((sign, n))
        return True

    if not collect(node, 1):
        return node
    offset = sum(sign * n.value for sign, n in terms if isinstance(n, Num))
    letters = [(sign, n) for sign, n in terms if not isinstance(n, Num)]
    if not letters:
        return Num(offset)
    if len(letters) != 1 or letters[0][0] != 1 or not isinstance(letters[0][1], (Idx, Sym)):
        return node
    base = letters[0][1]
    if offset == 0:
        return base
    return Bin("+" if offset > 0 else "-", base, Num(abs(offset)))


class ClaimPrinter:
    """``_print_<Node>`` dispatch, as SymPy's printers do."""

    def doprint(self, node: Node) -> str:
        return getattr(self, "_print_" + type(node).__name__)(node)

    def claim(self, claim: Claim) -> str:
        parts = [self.doprint(claim.sides[0])]
        for rel, side in zip(claim.relations, claim.sides[1:]):
            while isinstance(side, Paren):  # a whole side in parentheses: \delta = \hat{y} - y, not (\hat{y} - y)
                side = side.arg
            parts += [RELATIONS[rel], self.doprint(side)]
        letters = {n.name for side in claim.sides for n in walk(side) if isinstance(n, Idx)}
        parts += [_remark(note, letters) for note in claim.notes]  # "if j is an inner neuron"
        return " ".join(parts)

    def _print_Num(self, node):
        v = node.value
        return str(v.numerator) if v.denominator == 1 else rf"\frac{{{v.numerator}}}{{{v.denominator}}}"

    def _print_Idx(self, node):
        return NAMES.get(node.name, node.name)

    def _print_Sym(self, node):
        out = NAMES.get(node.name, node.name)
        if node.hat:
            out = rf"\hat{{{out}}}"
        if node.layer is not None:
            layer = self.doprint(offset_form(node.layer)).replace(" ", "")
            out += f"^{{[{layer}]}}" if node.layer_parens == "[]" else f"^{{({layer})}}" if node.layer_parens else (f"^{layer}" if len(layer) == 1 else f"^{{{layer}}}")
        if node.example is not None:
            out = out[:-1] + f"({node.example.name})}}" if out.endswith("}") and node.layer is not None \
                else out + f"^{{({node.example.name})}}"
        if node.index is not None:
            parts = [self.doprint(offset_form(i)) for i in node.index]
            sep = "," if any(not _LETTER.fullmatch(p) for p in parts) or node.name == "w" and len(
                node.index) == 2 and self._comma else ""
            sub = parts[0]
            for part in parts[1:]:  # j\ell, \ell j (a space ends the command)
                sub += sep + (" " if not sep and re.search(r"\\[A-Za-z]+$", sub) and part[0].isalpha() else "") + part
            out += f"_{sub}" if _LETTER.fullmatch(sub) else "_{" + sub + "}"
        return out

    _comma = False
    _sqrt = False

    def _print_Call(self, node):
        if node.func == "normsq":
            return rf"\|{self.doprint(node.args[0])}\|^2"
        if node.func == "step":
            return rf"\mathbb{{1}}[{self.doprint(node.args[0])} > 0]"
        if node.func == "rowsum":
            return f"np.sum({self.doprint(node.args[0])}, axis=1, keepdims=True)"
        name = NAMES.get(node.func, node.func) + "'" * node.primes
        if node.layer is not None:  # Ng's g^{[1]\prime}(z^{[1]}): the layer as written, the prime after it
            arg = node.args[0] if node.args else None
            style = arg.layer_parens if isinstance(arg, Sym) else True
            layer = self.doprint(offset_form(node.layer)).replace(" ", "")
            layer = f"[{layer}]" if style == "[]" else f"({layer})" if style else layer
            name = NAMES.get(node.func, node.func) + "^{" + layer + r"\prime" * node.primes + "}"
        return f"{name}({', '.join(self.doprint(a) for a in node.args)})"

    def _print_Bin(self, node):
        if node.op == "/" and node.spelled == "frac":
            return rf"\frac{{{self.doprint(node.left)}}}{{{self.doprint(node.right)}}}"
        if node.op == "*" and isinstance(node.left, Num) and node.left.value == 1:
            return self.doprint(node.right)
        left, right = self.doprint(node.left), self.doprint(node.right)
        if node.op in "+-":
            op, r = node.op, node.right
            while isinstance(r, Paren) and isinstance(r.arg, Neg):
                r = r.arg
            if isinstance(r, Neg):  # a + -b is written a - b, a - -b is a + b
                op, r = "-" if op == "+" else "+", r.arg
                right = self.doprint(r)
            if op == "-" and (isinstance(r, Bin) and r.op in "+-"):
                right = f"({right})"
            return f"{left} {op} {right}"
        if isinstance(node.left, Bin) and (node.left.op in "+-" or node.left.op == "odot" and node.op != "odot"):
            left = f"({left})"
        if isinstance(node.right, Bin) and (node.right.op in "+-" or node.right.op == "odot") \
                or isinstance(node.right, Neg):
            right = f"({right})"
        if node.op == "odot":
            return rf"{left} \odot {right}"
        if node.op == "/":
            return f"{left} / {right}"
        return left + MUL.get(node.spelled, " ") + right

    def _print_Neg(self, node):
        arg = node.arg
        while isinstance(arg, Paren) and isinstance(arg.arg, (Neg, Sym, Num, Call)):
            arg = arg.arg
        if isinstance(arg, Neg):
            return self.doprint(arg.arg)
        inner = self.doprint(arg)
        if isinstance(arg, Bin) and arg.op in "+-" or isinstance(arg, Paren) and isinstance(arg.arg, Bin) \
                and arg.arg.op in "+-":
            return f"-({inner.removeprefix('(').removesuffix(')') if isinstance(arg, Paren) else inner})"
        return f"-{inner}"

    def _print_Pow(self, node):
        base, bare = self.doprint(node.base), node.base
        while isinstance(bare, Paren):
            bare = bare.arg
        exp = self.doprint(node.exp)
        if not any(isinstance(n, (Sym, Idx, Call)) for n in walk(node.exp)):
            exp = exp.replace(" ", "")  # ^{-3/2}, not ^{-3 / 2}
        if self._sqrt and exp == "1/2":  # the layer claims read \sqrt{a} as (a)^{1/2}
            return rf"\sqrt{{{self.doprint(bare)}}}"
        if not isinstance(node.base, (Sym, Num, Paren, Idx)) or isinstance(bare, Deriv) or isinstance(bare, Sym) and (
                bare.layer is not None or bare.example is not None):  # (a^{[1]})^2, not a^{[1]}^{2}
            base = f"({self.doprint(bare)})" if isinstance(bare, (Sym, Deriv)) else f"({base})"
        return f"{base}^{{{exp}}}"

    def _print_Transpose(self, node):
        arg = node.arg
        while isinstance(arg, Paren) and isinstance(arg.arg, (Sym, Paren)):
            arg = arg.arg
        if isinstance(arg, Sym) and arg.index is None and arg.layer is not None and arg.layer_parens:
            brackets = "[{}]" if arg.layer_parens == "[]" else "({})"
            layer = self.doprint(offset_form(arg.layer)).replace(" ", "")
            return self.doprint(replace(arg, layer=None)) + "^{" + brackets.format(layer) + "T}"
        if isinstance(arg, Sym) and arg.layer is not None:
            return f"({self.doprint(arg)})^T"
        inner = self.doprint(arg)
        if not isinstance(arg, Sym) or arg.hat:
            inner = f"({inner})" if not inner.startswith("(") else inner
        return inner + "^T"

    def _print_Paren(self, node):
        inner = node.arg
        while isinstance(inner, Paren):
            inner = inner.arg
        if isinstance(inner, (Sym, Num, Idx, Call, Paren)) or isinstance(inner, Deriv) and inner.body is None:
            return self.doprint(inner)  # (\frac{\partial L}{\partial a}) \odot ...: no parentheses needed
        return f"({self.doprint(inner)})"

    def _print_Brackets(self, node):
        return self._print_Paren(node)

    def _print_Deriv(self, node):
        wrt = self.doprint(node.wrt)
        if node.spelled == "nabla" and node.num is not None:
            return rf"\nabla_{{{wrt}}} {self.doprint(node.num)}"
        d = {"d": "d", "delta": r"\delta "}.get(node.spelled, r"\partial ")
        if node.num is None:
            return rf"\frac{{{d.strip()}}}{{{d}{wrt}}} {self.doprint(node.body)}"
        return rf"\frac{{{d}{self.doprint(node.num)}}}{{{d}{wrt}}}"

    def _print_SumOver(self, node):
        var = NAMES.get(node.var, node.var)
        limits = f"_{var}" if node.lower is None else f"_{{{var}={self.doprint(node.lower)}}}"
        if node.upper is not None:
            limits += f"^{{{self.doprint(node.upper)}}}"
        return rf"\sum{limits} {self.doprint(node.body)}"


def _remark(note: str, letters: set[str]) -> str:
    """A claim's remark as written: ``\\text{ if } j \\text{ is an inner neuron}`` (index letters in math)."""
    out, words = [], []
    for word in re.sub(r"^\\q?quad\s*", "", note).split():  # \quad before the remark is spacing
        if word.removeprefix("\\") in letters or word.startswith("\\"):  # j, \ell: math, not text
            if words:
                out.append(rf"\text{{ {' '.join(words)} }}")
                words = []
            out.append(NAMES.get(word, word))
        else:
            words.append(word)
    if words:
        out.append(rf"\text{{ {' '.join(words)}}}")
    return " ".join(out)


def print_claim(claim: Claim, comma_weights: bool = False, sqrt: bool = False) -> str:
    """The claim as LaTeX; ``sqrt``: a power 1/2 as \\sqrt{...} (the layer claims read it back)."""
    printer = ClaimPrinter()
    printer._comma = comma_weights
    printer._sqrt = sqrt
    return printer.claim(claim)
