"""Split claim text into claims and tokens, by whitelist; nothing is ever evaluated.

Every LaTeX command must be in :data:`COMMANDS` (``\\input``, ``\\write18`` and
anything else unknown is refused); limits on length, tokens and nesting make
hostile input fail fast with one clear message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import SymbackpropError

MAX_CLAIM_LENGTH = 2000
MAX_TOKENS = 600
MAX_NESTING = 24
MAX_NUMBER_DIGITS = 12


class ClaimSyntaxError(SymbackpropError):
    """A claim that cannot be read (exit code 2)."""


@dataclass(frozen=True)
class Tok:
    type: str
    value: str


# command -> (token type, value); None means "ignore"
COMMANDS: dict[str, tuple[str, str] | None] = {
    "frac": ("FRAC", "frac"), "tfrac": ("FRAC", "frac"), "dfrac": ("FRAC", "frac"),
    "partial": ("PARTIAL", "partial"),
    "sum": ("SUM", "sum"),
    "cdot": ("MULOP", "cdot"), "times": ("MULOP", "times"), "ast": ("MULOP", "cdot"),
    "odot": ("HADAMARD", "odot"), "circ": ("HADAMARD", "odot"),
    "top": ("LETTER", "T"), "intercal": ("LETTER", "T"),
    "leftarrow": ("REL", "<-"), "rightarrow": ("REL", "<-"), "to": ("REL", "<-"), "mapsto": ("REL", "<-"), "gets": ("REL", "<-"), "coloneqq": ("REL", "="),
    "Leftarrow": ("REL", "<-"), "longleftarrow": ("REL", "<-"),
    "equiv": ("REL", "="), "triangleq": ("REL", "="), "doteq": ("REL", "="), "eqqcolon": ("REL", "="),
    "nabla": ("NABLA", "nabla"), "ell": ("LETTER", "ell"), "Sigma": ("SUM", "sum"),
    "hat": ("HAT", "hat"), "widehat": ("HAT", "hat"),
    "prime": ("PRIME", "'"),
    "exp": ("LETTER", "exp"), "log": ("LETTER", "log"), "ln": ("LETTER", "log"), "max": ("LETTER", "max"),
    "tanh": ("LETTER", "tanh"),
    "alpha": ("LETTER", "alpha"), "eta": ("LETTER", "eta"), "sigma": ("LETTER", "sigma"),
    "varphi": ("LETTER", "varphi"), "phi": ("LETTER", "varphi"), "delta": ("LETTER", "delta"),
    "Delta": ("LETTER", "Delta"), "epsilon": ("LETTER", "epsilon"), "lambda": ("LETTER", "lambda"),
    "theta": ("LETTER", "theta"), "mu": ("LETTER", "mu"), "beta": ("LETTER", "beta"),
    **{g: ("LETTER", g) for g in ("gamma", "kappa", "nu", "xi", "pi", "rho", "tau", "chi", "psi", "omega", "zeta",
                                  "iota", "varepsilon", "vartheta", "Gamma", "Lambda", "Phi", "Psi", "Theta",
                                  "Omega", "Pi", "Xi", "Upsilon")},
    "left": None, "right": None, "bigl": None, "bigr": None, "Bigl": None, "Bigr": None,
    "big": None, "Big": None, "quad": None, "qquad": None, "nonumber": None, "notag": None,
    "displaystyle": None, "limits": None, "middle": None, "mathbbone": ("LETTER", "one"), "textstyle": None, "mathstrut": None,
}
WORDS = {"ones", "id", "diag", "max", "normsq", "rowsum", "step", "kron", "onehot", "net", "in", "out", "relu", "ReLU", "softmax", "sigmoid", "tanh", "exp", "log", "Err", "err", "ell",
         "Loss", "loss", "Cost", "cost"}
GRAD_WORDS = {"d" + c for c in "WwbZzAa"}  # Ng's dW, dZ, db, ...: one gradient name, never d times W

# Unicode maths people paste from PDFs and web pages, as the LaTeX they stand for
UNICODE = {"δ": r"\delta ", "Δ": r"\Delta ", "σ": r"\sigma ", "φ": r"\varphi ", "ϕ": r"\varphi ",
           "α": r"\alpha ", "η": r"\eta ", "λ": r"\lambda ", "θ": r"\theta ", "ε": r"\epsilon ",
           "ℓ": r"\ell ", "∂": r"\partial ", "∇": r"\nabla ", "Σ": r"\sum ", "∑": r"\sum ",
           "⊙": r"\odot ", "∘": r"\odot ", "·": r"\cdot ", "⋅": r"\cdot ", "×": r"\times ",
           "←": r"\leftarrow ", "≡": r"\equiv ", "≔": ":=", "≜": r"\triangleq ", "−": "-", "–": "-",
           "′": "'", "″": "''", "ᵀ": "^T", "⊤": "^T", "²": "^2", "³": "^3", "½": r"\frac12 ",
           "ŷ": r"\hat{y}", "∈": r"\in ", "\u00a0": " ", "\u2009": " ", "\u200b": ""}
_UNICODE_RE = re.compile("|".join(map(re.escape, sorted(UNICODE, key=len, reverse=True))))

_TOKEN_RE = re.compile(r"""
    (?P<space>\s+)
  | (?P<cmd>\\[A-Za-z]+)
  | (?P<spacing>\\[,;:!\s])
  | (?P<rel>:=|<-|=)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z]+)
  | (?P<punct>[_^'{}()\[\],+\-*/&|])
""", re.VERBOSE)

_PUNCT = {"_": "SUB", "^": "SUP", "'": "PRIME", "{": "LBRACE", "}": "RBRACE", "(": "LPAR", ")": "RPAR",
          "[": "LBRACK", "]": "RBRACK", ",": "COMMA", "+": "PLUS", "-": "MINUS", "*": "MULOP", "/": "SLASH"}

_NAMED_GROUP = re.compile(r"\\(mathrm|operatorname|mathit|mathbf|boldsymbol|textrm|mathcal|vec|bm|mathbfit|mathsf"
                          r"|textnormal|pmb)\s*\{\s*(\\?[A-Za-z]+)\s*\}")
_BOLD_CMD = re.compile(r"\\(vec|bm|mathbf|boldsymbol)\s*(\\[A-Za-z]+|[A-Za-z])")
_INDICATOR = re.compile(r"\\mathbb\s*\{\s*1\s*\}|\\mathbb\s*1|\U0001d7d9")
_PRIME_LAYER = re.compile(r"\^\s*\{\s*(\[[^{}\[\]]*\]|\([^{}()]*\))\s*(?:\\prime|')\s*\}")
_TEXT = re.compile(r"\\(text|mbox|textit|textbf)\s*\{([^{}]*)\}")
_PRIME_SUP = re.compile(r"\^\s*(\{\s*\\prime\s*\}|\\prime)")
_HADAMARD_POWER = re.compile(r"\^\s*\{\s*\\circ\s*(\d)\s*\}")  # (a)^{\circ 2}: element-wise square
_ONES = re.compile(r"\\(?:mathbf|boldsymbol|bm)\s*\{\s*1\s*\}")  # a column of ones
_DOLLARS = re.compile(r"\$+")
_ENV = re.compile(r"\\(begin|end)\s*\{(align\*?|aligned|equation\*?|gather\*?)\}")


def split_claims(text: str) -> list[str]:
    """One claim per line, or per ``\\\\``-separated line of an align environment."""
    claims: list[str] = []
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.split("%", 1)[0] if not raw.lstrip().startswith("#") else ""
        line = _ENV.sub(" ", line)
        for part in line.split("\\\\"):
            part = " ".join(_DOLLARS.sub(" ", part).replace("&", " ").split())
            if part:
                claims.append(part)
    return claims


_IND = r"(?:\\mathbb\s*\{\s*1\s*\}|\\mathbb\s*1|\U0001d7d9)\s*"
_IND_POSITIVE = re.compile(_IND + r"(?:\[|\(|\\\{)\s*(.+?)\s*(?:>|\\geq?|\\gt)\s*0\s*(?:\]|\)|\\\})")
_IND_EQUAL = re.compile(_IND + r"(?:_\{|\[|\(|\\\{)\s*([a-z])\s*=\s*([a-z])\s*(?:\}|\]|\)|\\\})")
_IND_CLASS = re.compile(_IND + r"(?:_\{|\[|\(|\\\{)\s*y(?:_\{?[a-z]\}?)?\s*=\s*([a-z])\s*(?:\}|\]|\)|\\\})")
_TRAILING = re.compile(r"(?:\s|\\[,;:!]|[,.;])+$")  # a sentence's comma or full stop after a formula
_CAL = re.compile(r"\\(?:cal|mathcal|mathscr)\s*(?:\{\s*([A-Za-z])\s*\}|([A-Za-z]))")
_SUM_IN = re.compile(r"\\sum_\{\s*(\\?[A-Za-z]+)\s*\\in\s*[^{}]*\}")
_NORM_SQ = re.compile(r"\\\|(.+?)\\\|\s*\^\s*\{?\s*2\s*\}?")
_NP_SUM = re.compile(r"np\.sum\s*\(\s*([^,()]+(?:\([^()]*\))?[^,()]*)\s*,\s*axis\s*=\s*1\s*,\s*keepdims\s*=\s*True\s*\)")


def normalize(text: str) -> str:
    """Unicode maths (δ σ ′ ⊙ ∂ Σ ᵀ ← ∇ ...) as LaTeX; bold, indicator and primed layers simplified;
    ``\\cal C``, ``\\sum_{\\ell \\in L}``, ``\\|v\\|^2`` and NumPy's row sum read as maths."""
    text = _UNICODE_RE.sub(lambda m: UNICODE[m.group()], text)
    text = _TRAILING.sub("", text)
    text = _CAL.sub(lambda m: f" {m.group(1) or m.group(2)} ", text)
    text = _SUM_IN.sub(lambda m: "\\sum_{" + m.group(1) + "}", text)
    text = _NORM_SQ.sub(lambda m: " \\mathrm{normsq}(" + m.group(1) + ")", text)
    text = _NP_SUM.sub(lambda m: " \\mathrm{rowsum}(" + m.group(1) + ")", text)
    text = _IND_POSITIVE.sub(lambda m: f" \\mathrm{{step}}({m.group(1)}) ", text)
    text = _IND_CLASS.sub(lambda m: f" \\mathrm{{onehot}}_{{{m.group(1)}}} ", text)
    text = _IND_EQUAL.sub(lambda m: f" \\mathrm{{kron}}_{{{m.group(1)}{m.group(2)}}} ", text)
    text = _INDICATOR.sub(r" \\mathbbone ", text)
    text = _ONES.sub(r" \\mathrm{ones} ", text)
    text = _HADAMARD_POWER.sub(lambda m: "^{" + m.group(1) + "}", text)
    text = _BOLD_CMD.sub(lambda m: f" {m.group(2)} ", text)
    return _PRIME_LAYER.sub(lambda m: "^{" + m.group(1) + "}'", text)


_NAME_AFTER = re.compile(r"\s*[_^(']")
_CONDITION = re.compile(r"\\(?:text|mbox|textrm)\s*\{\s*(?:if|for|when|where)\b|\\(?:quad|qquad)\s*\\?(?:text\s*\{)?\s*(?:if|for)\b")


def annotations(text: str) -> tuple[str, list[str]]:
    """Remove ``\\text{...}`` remarks from a claim; return the claim and the remarks.

    ``\\text{net}_j``, ``\\text{ReLU}(z)`` (one word followed by a script, a prime or an
    argument) are names, not remarks."""
    notes: list[str] = []
    cond = _CONDITION.search(text)
    if cond:  # "... \text{ if } j \text{ is an output neuron}": the condition is a remark
        notes.append(" ".join(_TEXT.sub(lambda m: m.group(2), text[cond.start():]).split()))
        text = text[:cond.start()]

    def keep(m: re.Match) -> str:
        word = m.group(2).strip()
        if re.fullmatch(r"[A-Za-z]+", word) and (word in WORDS and text[m.end():].strip()
                                                 or _NAME_AFTER.match(text, m.end())):  # a last \text{ReLU}: a label
            return f" {word} "
        notes.append(word)
        return " "

    return _TEXT.sub(keep, text), notes


_PLAIN_DERIV = re.compile(r"\bd([ELC])\s*/\s*d([A-Za-z]+\d*(?:\[[^\]]*\])?)")
_PLAIN_INDEXED = re.compile(r"\b([A-Za-z]+?)(\d*)\[([^\]]*)\]")
_PLAIN_LAYER = re.compile(r"\b(W|w|b|z|a|delta|Delta)(\d+)\b")
_PLAIN_GREEK = re.compile(r"\b(alpha|eta|sigma|varphi|phi|delta|Delta)\b")


def plain_to_latex(text: str) -> str:
    """The plain-text form (``dE/dW2[1,1] = delta2[1]*a1[1]``) rewritten as claim LaTeX."""
    text = text.replace("**", "^")
    text = _PLAIN_DERIV.sub(lambda m: f"\\frac{{\\partial {m.group(1)}}}{{\\partial {m.group(2)}}}", text)

    def indexed(m: re.Match) -> str:
        layer = f"^{{({m.group(2)})}}" if m.group(2) else ""
        return f"{m.group(1)}{layer}_{{{m.group(3)}}}"

    text = _PLAIN_INDEXED.sub(indexed, text)
    text = _PLAIN_LAYER.sub(lambda m: f"{m.group(1)}^{{({m.group(2)})}}", text)
    return _PLAIN_GREEK.sub(lambda m: "\\" + m.group(1) + " ", text)


def tokenize(text: str, words: frozenset = frozenset()) -> list[Tok]:
    """Tokens of one claim (already split and free of ``\\text`` remarks); ``words`` are
    multi-letter names of the notation profile (a spec's ``loss: Loss``) kept whole."""
    if len(text) > MAX_CLAIM_LENGTH:
        raise ClaimSyntaxError(f"claim is {len(text)} characters long (at most {MAX_CLAIM_LENGTH}); split it")
    if "\\" not in text and "{" not in text:
        text = plain_to_latex(text)
    for _ in range(2):  # \boldsymbol{\mathrm{net}}: the inner name first
        text = _NAMED_GROUP.sub(lambda m: f" {m.group(2)} ", text)
    text = _PRIME_SUP.sub("'", text)
    tokens: list[Tok] = []
    depth = pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ClaimSyntaxError(f"unexpected character {text[pos]!r} at position {pos + 1}; "
                                   "write the claim with LaTeX maths or the plain form dE/dW2[1,1] = ...")
        pos = m.end()
        kind, value = m.lastgroup, m.group()
        if kind in ("space", "spacing"):
            continue
        if kind == "cmd":
            name = value[1:]
            if name == "withclause":
                raise ClaimSyntaxError("the right side is said in words ('element-wise, with ...'), which is not "
                                       "read; the formula after 'with' is checked as its own claim")
            if name == "piecewise":
                raise ClaimSyntaxError("a piecewise definition (\\begin{cases}) is not read; write each case as "
                                       "its own claim")
            if name not in COMMANDS:
                raise ClaimSyntaxError(f"unsupported LaTeX command {value} (nothing is ever run or "
                                       "included); use maths such as \\frac, \\partial, \\sum, \\sigma")
            entry = COMMANDS[name]
            if entry is None:
                continue
            tokens.append(Tok(*entry))
            if entry[0] == "FRAC":  # \tfrac12
                digits = re.match(r"\s*(\d)(\d)", text[pos:])
                if digits:
                    tokens += [Tok("NUMBER", digits.group(1)), Tok("NUMBER", digits.group(2))]
                    pos += digits.end()
        elif kind == "rel":
            tokens.append(Tok("REL", "=" if value == "=" else "<-"))
        elif kind == "number":
            if len(value) > MAX_NUMBER_DIGITS:
                raise ClaimSyntaxError(f"number {value[:20]}... is too long (at most {MAX_NUMBER_DIGITS} digits)")
            tokens.append(Tok("NUMBER", value))
        elif kind == "word":
            tokens.extend(_split_word(value, words))
        else:
            if value == "&":
                continue
            if value == "|":
                raise ClaimSyntaxError("'|' is not supported; write norms and absolute values out")
            if value in "{([":
                depth += 1
                if depth > MAX_NESTING:
                    raise ClaimSyntaxError(f"claim is nested deeper than {MAX_NESTING} levels; simplify it")
            elif value in "})]":
                depth -= 1
            tokens.append(Tok(_PUNCT[value], value))
        if len(tokens) > MAX_TOKENS:
            raise ClaimSyntaxError(f"claim has more than {MAX_TOKENS} tokens; split it")
    return tokens


def _split_word(word: str, words: frozenset = frozenset()) -> list[Tok]:
    """``net`` and other known words stay whole; other letter runs are single letters."""
    if word in words:
        return [Tok("LETTER", word)]
    if word in WORDS:
        return [Tok("LETTER", {"ReLU": "relu", "Err": "Err", "Loss": "Loss", "Cost": "Cost"}.get(word, word.lower()))]
    if word in GRAD_WORDS:
        return [Tok("LETTER", word)]
    return [Tok("LETTER", ch) for ch in word]
