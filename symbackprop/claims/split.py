"""One formula -> the claim texts it holds, each with its line offset within the formula.

Align rows and ``\\\\`` breaks are separate claims (a row that starts with ``+``, ``-``,
``\\cdot`` ... and has no relation continues the row before: a long line broken); ``&``, ``\\label``, ``\\tag``,
``\\nonumber`` and trailing punctuation go; a row that starts with a relation
(``&= ...``) continues the previous row's last side; a chain ``a = b = c`` becomes
the links ``a = b`` and ``b = c``.  ``\\text{...}`` remarks are dropped, except a
layer remark (``(output layer)``, ``(first layer)``, ``(hidden layer)``), which the
checker reads and which is kept on every link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .lexer import annotations

_ENV = re.compile(r"\\(?:begin|end)\s*\{(?:align|aligned|alignat|alignedat|gather|gathered|equation|split|"
                  r"multline|eqnarray|flalign|displaymath|math|array|cases)\*?\}(?:\{[^{}]*\})?")
_CASES = re.compile(r"\\begin\s*\{cases\}.*?\\end\s*\{cases\}", re.DOTALL)
_WITH = re.compile(r"\\text\s*\{[^{}]*\b(?:with|where)\s*\}")  # "= \text{element-wise, with } f'(u) = ..."
_LEADING_SPACE = re.compile(r"^(?:\\(?:quad|qquad|[,;:!])\s*)+")  # "&\quad + c": a broken line
_DROP = re.compile(r"\\(?:label|tag\*?|eqref|ref)\s*\{[^{}]*\}|\\(?:nonumber|notag|displaystyle)\b")
_ROW_BREAK = re.compile(r"(?<!\\)\\\\(?:\s*\[[^\]]*\])?")
_REL = re.compile(r"\\leftarrow\b|\\gets\b|\\coloneqq\b|\\equiv\b|\\triangleq\b|:=|<-|←|(?<![<>!\\])=")
_TEXT = re.compile(r"\\text\s*\{(?:[^{}]|\{[^{}]*\})*\}")  # a remark, "= ..." inside it is no relation
_BOUND = re.compile(r"_\s*\{[^{}]*\}")  # \sum_{b=1}: a bound, not a relation
_CONTINUE = ("+", "-", "\\cdot", "\\times", "\\odot", "\\circ")
_SCOPE = re.compile(r"\(?\s*(output|first|hidden)\s+layer\s*\)?", re.IGNORECASE)


@dataclass(frozen=True)
class ClaimText:
    """One claim of a formula and the line it starts on, counted from the formula's first line (0)."""

    text: str
    offset: int


_BRANCHES = re.compile(r"\\begin\s*\{cases\}\s*(?P<a>[^&]+?)\s*&\s*\\text\s*\{\s*(?:for|if)\s*\}\s*(?:\\[:;,]\s*)?"
                       r"(?P<x>[^&]+?)\s*(?P<op>\\leq?|\\geq?|<|>)\s*0\s*\\\\\s*(?P<b>[^&]+?)\s*&\s*"
                       r"\\text\s*\{\s*otherwise\s*\}\s*\\end\s*\{cases\}", re.DOTALL)


_SIGNED = re.compile(r"\\begin\s*\{cases\}\s*(?P<a>[^&]+?)\s*&\s*(?P<x>[^&]+?)\s*(?P<op>>)\s*0\s*\\\\\s*"
                     r"(?P<b>[^&]+?)\s*&\s*(?P<x2>[^&]+?)\s*\\le(?:q)?\s*0\s*\\end\s*\{cases\}", re.DOTALL)
"""``\\begin{cases} A & x > 0 \\\\ B & x \\le 0 \\end{cases}``: the two cases with their conditions."""


def _two_cases(block: str) -> str:
    """``\\begin{cases} A & \\text{for} x \\leq 0 \\\\ B & \\text{otherwise} \\end{cases}`` (SymPy's
    piecewise, as for ReLU) as ``A (1 - step(x)) + B step(x)``, step(x) = [x > 0]; any other
    piecewise definition is one unreadable claim, not rows."""
    m = _BRANCHES.fullmatch(block.strip())
    if m is None:
        m = _SIGNED.fullmatch(block.strip())
        if m is None or m.group("x") != m.group("x2"):
            return " \\piecewise "
    a, x, b = (" ".join(m.group(k).split()) for k in ("a", "x", "b"))
    step = rf"\mathrm{{step}}\left({x}\right)"
    low, high = (a, b) if m.group("op") in (r"\le", r"\leq", "<") else (b, a)
    return rf" \left(\left({low}\right) \left(1 - {step}\right) + \left({high}\right) {step}\right) "


def rows(formula: str) -> list[tuple[str, int]]:
    """The rows of a formula (align rows, ``\\\\`` breaks) with their line offsets; ``&`` removed."""
    formula = _CASES.sub(lambda m: _two_cases(m.group()) + "\n" * m.group().count("\n"), formula)  # one claim
    text = _DROP.sub(" ", _ENV.sub(" ", formula))
    out = []
    pos = 0
    for m in list(_ROW_BREAK.finditer(text)) + [None]:
        end = m.start() if m else len(text)
        piece = text[pos:end]
        lead = len(piece) - len(piece.lstrip())
        offset = text.count("\n", 0, pos + lead)
        row = " ".join(piece.replace("&", " ").split()).rstrip(" ,.;")
        if row:
            out.append((row, offset))
        pos = m.end() if m else len(text)
    return out


def links(row: str) -> tuple[list[str], list[str]]:
    """The sides and relations of a row, split at relations outside braces and brackets."""
    sides, rels, depth, start, pos = [], [], 0, 0, 0
    while pos < len(row):
        ch = row[pos]
        if ch == "\\" and row.startswith("\\text", pos):  # remarks are opaque
            close = _matching_brace(row, row.find("{", pos))
            pos = close + 1 if close > 0 else pos + 1
            continue
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth = max(depth - 1, 0)
        elif depth == 0:
            m = _REL.match(row, pos)
            if m:
                sides.append(row[start:pos].strip())
                rels.append(m.group())
                start = pos = m.end()
                continue
        pos += 1 + (ch == "\\" and pos + 1 < len(row) and not row[pos + 1].isalpha())
    sides.append(row[start:].strip())
    return sides, rels


def _matching_brace(text: str, open_at: int) -> int:
    if open_at < 0:
        return -1
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _equations_listed(row: str) -> list[str]:
    """``n_{0} = 2, n_{1} = 3``: a row of equations separated by commas, one claim each (a
    comma inside braces or brackets, ``w_{j,k}``, ``L(t, y)``, never splits)."""
    parts, depth, start = [], 0, 0
    for pos, ch in enumerate(row):
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            parts.append(row[start:pos].strip())
            start = pos + 1
    parts.append(row[start:].strip())
    if len(parts) > 1 and all(len(links(p)[1]) == 1 and all(links(p)[0]) for p in parts):
        return parts
    return [row]


def split_formula(formula: str) -> list[ClaimText]:
    """The claims of one formula, in order; a formula with no relation is one (non-)claim text."""
    merged: list[tuple[str, int]] = []
    for row, offset in rows(formula):
        row = _LEADING_SPACE.sub("", row)
        if merged and row.startswith(_CONTINUE) and not _REL.search(_BOUND.sub(" ", _TEXT.sub(" ", annotations(row)[0]))):
            merged[-1] = (f"{merged[-1][0]} {row}", merged[-1][1])  # a broken line: "a = b \\ + c"
        else:
            merged.extend((part, offset) for part in _equations_listed(row))
    out: list[ClaimText] = []
    previous_last = ""
    clauses: list[tuple[str, int]] = []
    for row, offset in merged:  # "f'(z) = \text{element-wise, with } f'(u) = ...": the clause is its own claim
        m = _WITH.search(row)
        clauses += [(row[:m.start()] + " \\withclause", offset), (row[m.end():], offset)] if m else [(row, offset)]
    for row, offset in clauses:
        body, remarks = annotations(row)
        scope = " ".join(f"\\text{{({m.group(1).lower()} layer)}}" for r in remarks if (m := _SCOPE.fullmatch(r.strip())))
        sides, rels = links(" ".join(body.split()))
        if not sides[0] and rels and previous_last:
            sides[0] = previous_last
        if len(rels) <= 1:
            text = " ".join(f"{s} {r}" for s, r in zip(sides, rels + [""])).strip()
            out.append(ClaimText(f"{text} {scope}".strip() if text else "", offset))
        else:
            for i, rel in enumerate(rels):
                out.append(ClaimText(f"{sides[i]} {rel} {sides[i + 1]} {scope}".strip(), offset))
        previous_last = sides[-1] if sides else ""
    return [c for c in out if c.text]
