"""The claim grammar (lark, LALR) and the tree it builds.

Superscripts on quantities (``W^{(2)}``, ``W^{[2]}``, ``w^l``) are layers, ``^T``/``^\\top``
transposes, other superscripts powers; a bare number after a subscript is a power
(``z_j^2``), a letter after a subscript a layer (``w_{jk}^L``); ``\\sigma``, ``\\varphi``, ``g``, ``f``
followed by an argument are calls; ``\\sum`` and ``\\frac{\\partial}{\\partial x}``
apply to the rest of the product; ``\\frac{\\delta A}{\\delta B}`` and
``\\frac{dA}{dB}`` are derivatives.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from functools import lru_cache

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, VisitError
from lark.lexer import Lexer

from .lexer import GRAD_WORDS, ClaimSyntaxError, annotations, normalize, tokenize
from .nodes import Bin, Brackets, Call, Claim, Deriv, Idx, Neg, Node, Num, Paren, Pow, SumOver, Sym, Transpose

GRAMMAR = r"""
start: expr (REL expr)+
?expr: term
     | expr PLUS term   -> add
     | expr MINUS term  -> sub
?term: MINUS term       -> neg
     | PLUS term        -> pos
     | product
product: item (op? item)*
op: MULOP | HADAMARD | SLASH
item: primary script*
script: SUB arg         -> sub_script
      | SUP arg         -> sup_script
      | PRIME           -> prime
?arg: brace | LETTER | NUMBER
?primary: LETTER | NUMBER | SUM | PARTIAL | NABLA | hat | group | frac | brace
hat: HAT (brace | LETTER)
group: LPAR exprlist RPAR | LBRACK exprlist RBRACK
brace: LBRACE exprlist RBRACE
exprlist: expr (COMMA expr)*
        | expr REL expr -> bound
frac: FRAC fracarg fracarg
?fracarg: brace | NUMBER | LETTER
%declare REL PLUS MINUS MULOP HADAMARD SLASH SUB SUP PRIME LETTER NUMBER SUM PARTIAL HAT NABLA
%declare LPAR RPAR LBRACK RBRACK LBRACE RBRACE COMMA FRAC
"""

MAX_EXPONENT = 64
_EXTRA_QUANTITIES: frozenset = frozenset()  # the profile's quantity letters that are usually functions (h)
QUANTITIES = {"kron", "onehot", "W", "w", "b", "z", "a", "o", "x", "y", "t", "delta", "Delta", "net", "in", "out", "Err",
              "Z", "A", "X", "Y", "B", "dW", "dw", "db", "dZ", "dz", "dA", "da"}
FUNCTIONS = {"sigma", "varphi", "g", "f", "h", "exp", "log", "tanh", "relu", "softmax", "sigmoid", "id", "normsq", "rowsum", "step", "diag", "max"}
STEP_OF = {"W": "DeltaW", "w": "Deltaw", "b": "Deltab", "theta": "Deltatheta"}
_LAYER_FUNCTIONS = {"varphi", "h", "g"}  # written with the layer as a subscript: \varphi_1, h_2
LOSS_FUNCTIONS = {"L", "E", "C", "J", "ell", "Loss", "Cost"}


class _TokenStream(Lexer):
    def __init__(self, lexer_conf):
        pass

    def lex(self, tokens):
        for tok in tokens:
            yield Token(tok.type, tok.value)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer=_TokenStream, maybe_placeholders=False)


def parse_claim(text: str, words: frozenset = frozenset(), quantities: frozenset = frozenset()) -> Claim:
    """Parse one claim (``lhs = rhs [= ...]`` or ``lhs <- rhs``) into a :class:`Claim`;
    ``words``: multi-letter names of the notation (a spec's ``loss: Loss``)."""
    global _EXTRA_QUANTITIES
    _EXTRA_QUANTITIES = frozenset(quantities)
    body, notes = annotations(normalize(text))
    tokens = tokenize(body, words)
    if not tokens:
        raise ClaimSyntaxError(f"claim {text!r} holds no formula")
    try:
        tree = _parser().parse(tokens)
        sides, rels = _Build().transform(tree)
    except ClaimSyntaxError:
        raise
    except VisitError as exc:
        if isinstance(exc.orig_exc, ClaimSyntaxError):
            raise exc.orig_exc from None
        raise ClaimSyntaxError(f"cannot read claim {text.strip()!r}") from None
    except LarkError as exc:
        where = getattr(exc, "token", None)
        hint = f" near {where.value!r}" if where is not None and getattr(where, "value", None) else ""
        if "REL" not in {t.type for t in tokens}:
            raise ClaimSyntaxError(f"cannot read claim {text.strip()!r}: it has no '=' or '\\leftarrow'; "
                                   "write it as 'left side = right side'") from None
        raise ClaimSyntaxError(f"cannot read claim {text.strip()!r}{hint}; check braces and operators") from None
    except RecursionError:
        raise ClaimSyntaxError("claim is nested too deeply; simplify it") from None
    return Claim(text.strip(), tuple(sides), tuple(rels), tuple(notes))


# ----------------------------------------------------------------------------- tree building

class _Marker:
    """A piece that only makes sense inside a product (function name, \\sum, d/dx)."""

    def __init__(self, kind, **kw):
        self.kind = kind
        self.__dict__.update(kw)


def _letters_of(node) -> list[Node]:
    """``jk`` -> [j, k]; ``12`` stays one number (split later for weights)."""
    if isinstance(node, Bin) and node.op == "*" and node.spelled == "":
        return _letters_of(node.left) + _letters_of(node.right)
    return [node]


def _as_index(node) -> Node:
    if isinstance(node, Sym) and node.layer is None and node.index is None and (len(node.name) == 1
                                                                                 or node.name == "ell"):
        return Idx(node.name)
    if isinstance(node, Bin):
        return Bin(node.op, _as_index(node.left), _as_index(node.right), node.spelled)
    return node


def _as_layer(node) -> Node:
    return _as_index(node.arg if isinstance(node, Paren) else node)


def _is_T(node) -> bool:
    return isinstance(node, Sym) and node.name == "T" and node.layer is None and node.index is None


class _Build(Transformer):
    def start(self, items):
        sides = [items[i] for i in range(0, len(items), 2)]
        rels = [items[i].value for i in range(1, len(items), 2)]
        return [_finish(s) for s in sides], rels

    def add(self, items):
        return Bin("+", _finish(items[0]), _finish(items[2]))

    def sub(self, items):
        return Bin("-", _finish(items[0]), _finish(items[2]))

    def neg(self, items):
        return Neg(_finish(items[1]))

    def pos(self, items):
        return _finish(items[1])

    def op(self, items):
        return {"MULOP": "*", "HADAMARD": "odot", "SLASH": "/"}[items[0].type], items[0].value

    def product(self, items):
        seq, pending = [], ("*", "")
        for it in items:
            if isinstance(it, tuple) and len(it) == 2 and isinstance(it[0], str) and it[0] in ("*", "odot", "/"):
                pending = it
            else:
                seq.append((pending, it))
                pending = ("*", "")
        return _fold(_slash_derivatives(seq))

    # -- atoms
    def LETTER(self, tok):
        return Sym(tok.value)

    def NUMBER(self, tok):
        return Num(Fraction(tok.value))

    def SUM(self, tok):
        return _Marker("sum", var=None, lower=None, upper=None)

    def PARTIAL(self, tok):
        return _Marker("partial")

    def NABLA(self, tok):
        return _Marker("nabla", wrt=None)

    def hat(self, items):
        inner = items[1]
        if isinstance(inner, Sym):
            return Sym(inner.name, inner.layer, inner.index, True, inner.layer_parens)
        raise ClaimSyntaxError("\\hat must be applied to a single letter such as \\hat{y}")

    def group(self, items):
        content = items[1]
        if isinstance(content, tuple) and content[0] == "bound":  # 1(y_i = k): not an expression
            raise ClaimSyntaxError("a relation inside parentheses; write an indicator as \\mathbb{1}(y_i = k)")
        if isinstance(content, list) and len(content) > 1:
            return ("tuple", content)
        if isinstance(_single(content), _PartialProduct):
            _finish(_single(content))  # raises: a bare \partial in parentheses
        if items[0].type == "LBRACK":
            return _Marker("bracket", node=_single(content))  # Delta[j] (pseudo-code), else brackets
        return Paren(_single(content))

    def brace(self, items):
        content = items[1]
        return ("btuple", content) if isinstance(content, list) and len(content) > 1 else _single(content)

    def exprlist(self, items):
        return [i if (isinstance(i, _Marker) and i.kind == "partial" or isinstance(i, _PartialProduct))
                and len(items) == 1 else _finish(i)
                for i in items if not isinstance(i, Token)]

    def bound(self, items):
        return ("bound", _finish(items[0]), _finish(items[2]))

    def frac(self, items):
        num, den = _finish_maybe(items[1]), _finish_maybe(items[2])
        dn, rest_n = _diff_part(num)
        dd, rest_d = _diff_part(den)
        if dn and dd and rest_d is not None:
            if rest_n is None:
                return _Marker("derivop", wrt=rest_d, spelled=dn)
            return Deriv(rest_n, rest_d.arg if isinstance(rest_d, Paren) else rest_d, spelled=dn)
        if isinstance(num, _Marker) or isinstance(den, _Marker):
            raise ClaimSyntaxError("a fraction with \\partial must read \\frac{\\partial E}{\\partial w}")
        return Bin("/", _finish(num), _finish(den), "frac")

    # -- scripts
    def sub_script(self, items):
        return ("sub", _script_value(items[1]))

    def sup_script(self, items):
        return ("sup", _script_value(items[1]))

    def prime(self, items):
        return ("prime", None)

    def item(self, items):
        head, scripts = items[0], items[1:]
        if isinstance(head, _Marker) and head.kind == "sum":
            for kind, value in scripts:
                if kind == "sub":
                    if isinstance(value, tuple) and value[0] == "bound":
                        head.var, head.lower = _index_name(value[1]), _as_index(value[2])
                    else:
                        head.var = _index_name(value)
                elif kind == "sup":
                    head.upper = _as_index(value)
            if head.var is None:
                raise ClaimSyntaxError("\\sum needs its index, e.g. \\sum_k or \\sum_{k=1}^{n}")
            return head
        if isinstance(head, _Marker) and head.kind == "nabla":
            for kind, value in scripts:
                if kind != "sub" or head.wrt is not None or isinstance(value, tuple):
                    raise ClaimSyntaxError("\\nabla takes one subscript, e.g. \\nabla_{W^{(2)}} E")
                head.wrt = value
            if head.wrt is None:
                raise ClaimSyntaxError("write what the gradient is taken with respect to, e.g. \\nabla_a C")
            return head
        if isinstance(head, Sym) and not head.hat and head.name in (FUNCTIONS - _EXTRA_QUANTITIES) | LOSS_FUNCTIONS \
                and head.index is None:
            primes = sum(1 for kind, _ in scripts if kind == "prime")
            if head.name in FUNCTIONS or primes:
                others = [s for s in scripts if s[0] != "prime"]
                layer = power = None
                if head.name in FUNCTIONS and len(others) == 1 and others[0][0] == "sup" and not _is_T(others[0][1]) \
                        and not isinstance(others[0][1], tuple):
                    if isinstance(others[0][1], Num):  # \tanh^2(z): the square of the value
                        power = others[0][1]
                    else:  # g^{[1]}, f^{(l)}: the layer's function
                        layer = _as_layer(others[0][1])
                    others = []
                if not others:
                    return _Marker("fn", name=head.name, primes=primes, layer=layer, power=power)
        if isinstance(head, Sym) and not head.hat and head.name in _LAYER_FUNCTIONS - _EXTRA_QUANTITIES \
                and head.index is None and head.layer is None and any(k == "prime" for k, _ in scripts) \
                and [k for k, _ in scripts if k != "prime"] == ["sub"] and scripts[0][0] == "sub" \
                and isinstance(scripts[0][1], Num) and scripts[0][1].value.denominator == 1:
            primes = sum(1 for kind, _ in scripts if kind == "prime")  # \varphi_{1}', g_{2}': layer 1's, 2's
            return _Marker("fn", name=head.name, primes=primes, layer=scripts[0][1], power=None)
        if isinstance(head, _Marker) and head.kind == "bracket" and not scripts:
            return head
        node, had_sub = head, False
        for kind, value in scripts:
            if isinstance(node, _Marker):
                node = Paren(node.node)
            if kind == "sup" and had_sub and isinstance(value, Num) and isinstance(node, Sym):
                node = Pow(node, value)  # z_j^2: a power (a layer is written before the subscript)
                continue
            had_sub = had_sub or kind == "sub"
            node = _apply_script(node, kind, value)
        return node


def _single(content):
    return content[0] if isinstance(content, list) else content


def _finish_maybe(x):
    return x if isinstance(x, (_Marker, _PartialProduct)) else _finish(x)


def _finish(x) -> Node:
    if isinstance(x, _Marker):
        if x.kind == "fn":
            return Sym(x.name)
        if x.kind == "bracket":
            return Brackets(_finish(x.node))
        raise ClaimSyntaxError("\\sum or \\partial is missing what it applies to")
    if isinstance(x, tuple):
        raise ClaimSyntaxError("a list in parentheses is only allowed as function arguments, e.g. L(t, y)")
    if isinstance(x, _PartialProduct):
        raise ClaimSyntaxError("write a derivative as \\frac{\\partial E}{\\partial w} or \\partial E/\\partial w")
    return x


def _script_value(v):
    if isinstance(v, tuple) and v[0] in ("tuple", "btuple"):
        return ("tuple", v[1])
    return v


def _index_name(node) -> str:
    if isinstance(node, Sym) and node.layer is None and node.index is None and (len(node.name) == 1
                                                                                 or node.name == "ell"):
        return node.name
    raise ClaimSyntaxError("a sum index must be one letter, e.g. \\sum_k")


def _apply_script(node, kind, value):
    if kind == "prime":
        raise ClaimSyntaxError("a prime (') must follow a function name such as \\sigma' or g'")
    if kind == "sub":
        if not isinstance(node, Sym) or node.index is not None:
            raise ClaimSyntaxError("a subscript must follow a quantity name, e.g. w_{jk}")
        parts = list(value[1]) if isinstance(value, tuple) else _letters_of(value)
        if node.name == "delta" and node.layer is None and len(parts) == 2:  # Kronecker delta_{ij}
            return Sym("kron", None, tuple(_as_index(p) for p in parts))
        return Sym(node.name, node.layer, tuple(_as_index(p) for p in parts), node.hat, node.layer_parens)
    # superscript
    if isinstance(value, tuple):
        raise ClaimSyntaxError("a superscript cannot be a list")
    if _is_T(value):
        return Transpose(node)
    if isinstance(value, Transpose):  # a^{(1)^T}, a^{[1]^T}: a layer, then a transpose
        return Transpose(_apply_script(node, kind, value.arg))
    if isinstance(value, Pow) and _is_T(value.exp):
        return Transpose(_apply_script(node, kind, value.base))
    if isinstance(node, Sym) and node.name in QUANTITIES | _EXTRA_QUANTITIES and node.layer is None:
        parts = _letters_of(value)
        body = parts[:-1] if len(parts) > 1 and _is_T(parts[-1]) else parts
        example = _example_of(body[-1])
        if example is not None and (len(body) == 2 or node.name in ("x", "y", "t", "X", "Y") or node.hat):
            # x^{(i)}, \hat y^{(i)}, dz^{[1](i)T}: the i-th example (of the layer before it)
            inner = node if len(body) == 1 else _apply_script(node, kind, body[0])
            if isinstance(inner, Sym):
                out = replace(inner, example=example)
                return Transpose(out) if body is not parts else out
        transpose = len(parts) > 1 and _is_T(parts[-1])
        layer = _join(parts[:-1]) if transpose else value
        out = Sym(node.name, _as_layer(layer), node.index, node.hat,
                  "[]" if isinstance(layer, Brackets) else isinstance(layer, Paren))
        return Transpose(out) if transpose else out
    if isinstance(value, Num) and abs(value.value) > MAX_EXPONENT or isinstance(value, Neg) and isinstance(
            value.arg, Num) and abs(value.arg.value) > MAX_EXPONENT:
        raise ClaimSyntaxError(f"exponent is outside [-{MAX_EXPONENT}, {MAX_EXPONENT}]; no claim needs it")
    return Pow(node, value)


def _example_of(node):
    """The letter of an example superscript ``(i)``, or None."""
    if isinstance(node, Paren) and not isinstance(node, Brackets):
        inner = node.arg
        if isinstance(inner, Sym) and inner.layer is None and inner.index is None and len(inner.name) == 1 \
                and inner.name in "ijnm" and inner.name != "l":
            return Idx(inner.name)
    return None


def _join(parts):
    out = parts[0]
    for p in parts[1:]:
        out = Bin("*", out, p)
    return out


def _diff_part(x):
    """(``"partial"``/``"d"``/``"delta"`` or None, the rest) of a derivative's numerator or denominator."""
    if isinstance(x, _Marker) and x.kind == "partial":
        return "partial", None
    if isinstance(x, _PartialProduct):
        return "partial", x.rest
    if isinstance(x, Sym) and x.name in ("d", "delta") and x.layer is None and x.index is None and not x.hat:
        return x.name, None
    if isinstance(x, Sym) and x.name in GRAD_WORDS:  # \frac{dy}{dz}: the lexer kept dz whole
        return "d", Sym(x.name[1:], x.layer, x.index, x.hat, x.layer_parens)
    if isinstance(x, Bin) and x.op == "*" and x.spelled == "":
        first, rest = _split_first(x)
        if isinstance(first, Sym) and first.name in ("d", "delta") and first.layer is None and first.index is None:
            return first.name, rest
        if isinstance(first, Sym) and first.name in GRAD_WORDS and rest is not None:
            return "d", Bin("*", Sym(first.name[1:], first.layer, first.index, first.hat, first.layer_parens), rest)
    return None, None


def _split_first(x):
    if isinstance(x, Bin) and x.op == "*" and x.spelled == "":
        first, rest = _split_first(x.left)
        return first, (x.right if rest is None else Bin("*", rest, x.right))
    return x, None


class _PartialProduct:
    def __init__(self, rest):
        self.rest = rest


def _is_partial(it) -> bool:
    return isinstance(it, _Marker) and it.kind == "partial"


def _slash_derivatives(seq):
    """``\\partial L / \\partial W^{(1)}`` (and ``∂L/∂W``): one derivative."""
    out, i = [], 0
    while i < len(seq):
        op, it = seq[i]
        if _is_partial(it) and i + 4 <= len(seq) and seq[i + 2][0][0] == "/" and _is_partial(seq[i + 2][1]) \
                and not isinstance(seq[i + 1][1], _Marker) and not isinstance(seq[i + 3][1], _Marker):
            out.append((op, Deriv(_finish(seq[i + 1][1]), _finish(seq[i + 3][1]))))
            i += 4
            continue
        out.append((op, it))
        i += 1
    return out


def _fold(seq):
    """Fold ``[(op, item), ...]``: calls first, then \\sum / d/dx over the rest, then products."""
    # a leading \partial inside a fraction: keep what follows for the fraction
    if seq and isinstance(seq[0][1], _Marker) and seq[0][1].kind == "partial":
        rest = _fold(seq[1:]) if len(seq) > 1 else None
        return _PartialProduct(rest) if rest is not None else seq[0][1]
    merged: list = []
    i = 0
    while i < len(seq):
        op, it = seq[i]
        if isinstance(it, _Marker) and it.kind == "fn" and i + 1 < len(seq) and seq[i + 1][0][0] == "*" \
                and seq[i + 1][0][1] == "" and not isinstance(seq[i + 1][1], _Marker):
            arg = seq[i + 1][1]
            outer = None
            if isinstance(arg, Pow) and isinstance(arg.base, Paren):  # h(a)^2: the square of h(a)
                arg, outer = arg.base, arg.exp
            args = tuple(arg[1]) if isinstance(arg, tuple) and arg[0] == "tuple" else (
                arg.arg if isinstance(arg, Paren) else _finish(arg),)
            call = Call(it.name, args, it.primes, getattr(it, "layer", None))
            call = call if getattr(it, "power", None) is None else Pow(call, it.power)
            merged.append((op, call if outer is None else Pow(call, outer)))
            i += 2
            continue
        if isinstance(it, Sym) and it.name in _LAYER_FUNCTIONS and it.layer is None and not it.hat \
                and it.name not in _EXTRA_QUANTITIES and it.index and len(it.index) == 1 \
                and isinstance(it.index[0], Num) and it.index[0].value.denominator == 1 \
                and i + 1 < len(seq) and seq[i + 1][0] == ("*", "") and isinstance(seq[i + 1][1], Paren):
            args = (seq[i + 1][1].arg,)  # \varphi_{1}(net), h_{2}(a): layer 1's or 2's activation
            merged.append((op, Call(it.name, args, 0, it.index[0])))
            i += 2
            continue
        if isinstance(it, Pow) and isinstance(it.exp, Num) and isinstance(it.base, Sym) \
                and it.base.name in _LAYER_FUNCTIONS and it.base.name not in _EXTRA_QUANTITIES \
                and it.base.layer is None and not it.base.hat and it.base.index and len(it.base.index) == 1 \
                and isinstance(it.base.index[0], Num) and i + 1 < len(seq) and seq[i + 1][0] == ("*", "") \
                and isinstance(seq[i + 1][1], Paren):  # \varphi_{2}^{2}(net): the square of the value
            merged.append((op, Pow(Call(it.base.name, (seq[i + 1][1].arg,), 0, it.base.index[0]), it.exp)))
            i += 2
            continue
        if isinstance(it, Sym) and it.name == "Delta" and it.layer is None and it.index is None \
                and i + 1 < len(seq) and seq[i + 1][0] == ("*", "") and isinstance(seq[i + 1][1], Sym) \
                and seq[i + 1][1].name in STEP_OF:
            nxt = seq[i + 1][1]  # \Delta w_{ij}: the update amount of one parameter
            merged.append((op, Sym(STEP_OF[nxt.name], nxt.layer, nxt.index, nxt.hat, nxt.layer_parens)))
            i += 2
            continue
        if isinstance(it, _Marker) and it.kind == "nabla":
            nxt = seq[i + 1][1] if i + 1 < len(seq) and seq[i + 1][0][0] == "*" else None
            if isinstance(nxt, _Marker) and nxt.kind == "fn" and nxt.name in LOSS_FUNCTIONS and not nxt.primes:
                nxt = Sym(nxt.name)
            if isinstance(nxt, Sym) and nxt.name in LOSS_FUNCTIONS and nxt.index is None and nxt.layer is None:
                merged.append((op, Deriv(nxt, _finish(it.wrt), spelled="nabla")))
                i += 2
                if i < len(seq) and isinstance(seq[i][1], tuple) and seq[i][1][0] == "tuple":
                    i += 1  # \nabla_{\hat y} L(\hat y, y): the loss written with its arguments
            else:
                merged.append((op, Deriv(Sym("E"), _finish(it.wrt), spelled="nabla")))
                i += 1
            continue
        if isinstance(it, tuple) and it[0] == "tuple" and merged and isinstance(merged[-1][1], Sym) \
                and merged[-1][1].name in LOSS_FUNCTIONS and merged[-1][1].index is None:
            merged[-1] = (merged[-1][0], Call(merged[-1][1].name, tuple(it[1])))  # L(t, y)
            i += 1
            continue
        if isinstance(it, _Marker) and it.kind == "bracket":
            prev = merged[-1][1] if merged and op == ("*", "") else None
            if isinstance(prev, Sym) and prev.index is None and prev.name in QUANTITIES | _EXTRA_QUANTITIES:
                parts = it.node if isinstance(it.node, tuple) else _letters_of(it.node)
                merged[-1] = (merged[-1][0], Sym(prev.name, prev.layer, tuple(_as_index(p) for p in parts),
                                                 prev.hat, prev.layer_parens))
            else:
                merged.append((op, Brackets(_finish(it.node))))
            i += 1
            continue
        if isinstance(it, Paren) and op == ("*", "") and merged and isinstance(merged[-1][1], Sym) \
                and merged[-1][1].name in LOSS_FUNCTIONS and merged[-1][1].index is None \
                and not isinstance(merged[-1][1], _Marker):
            i += 1  # C(W), E(w): the loss as a function of the parameters is the loss
            continue
        if isinstance(it, tuple) and it[0] == "btuple" and merged and isinstance(merged[-1][1], Sym) \
                and merged[-1][1].name in QUANTITIES and merged[-1][1].index is None:
            prev = merged[-1][1]  # w{i,j}: a forgotten underscore
            merged[-1] = (merged[-1][0], Sym(prev.name, prev.layer, tuple(_as_index(p) for p in it[1]),
                                             prev.hat, prev.layer_parens))
            i += 1
            continue
        merged.append((op, it))
        i += 1
    for pos, (op, it) in enumerate(merged):
        if isinstance(it, _Marker) and it.kind in ("sum", "derivop"):
            if pos + 1 >= len(merged):
                raise ClaimSyntaxError("\\sum or \\frac{\\partial}{\\partial x} needs something after it")
            body = _fold(merged[pos + 1:])
            wrapped = (SumOver(it.var, it.lower, it.upper, body) if it.kind == "sum"
                       else Deriv(None, it.wrt, body, it.spelled))
            return _product(merged[:pos] + [(op, wrapped)])
    return _product(merged)


def _product(seq) -> Node:
    """Products left to right; juxtaposition, \\cdot and matrix products bind tighter than \\odot."""
    groups: list[list] = [[]]
    for (op, spelled), it in seq:
        if op == "odot" and groups[-1]:
            groups.append([])
        groups[-1].append(((op, spelled), it))
    acc = None
    for group in groups:
        part = None
        for (op, spelled), it in group:
            node = _finish(it)
            part = node if part is None else Bin(op, part, node, spelled)
        acc = part if acc is None else Bin("odot", acc, part, "odot")
    return acc
