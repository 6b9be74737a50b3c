"""Check every formula of a notes file: sections -> notation profile -> claims -> verdicts.

The stages: :mod:`.sources` finds the formulas, :mod:`.split` the claims in each,
this module picks a notation profile per section (``--notation auto``), skips what
is syntactically not a claim (a notation-list entry, a formula without a relation,
an ``\\in`` annotation, an inequality) and hands every other claim to
:func:`~symbackprop.claims.judge.judge`, once per network option (one for a spec;
several widths and open choices for a network read from the notes, combined by
:func:`combine`).  A layer condition stated in the prose (``if the neuron is in the
output layer, ... $o_j = y$``) applies to the claims after it, to the next heading.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..render.notation import PROFILE_NAMES
from .checker import Verdict
from .infer import Option
from .judge import judge, new_context
from .sources import Formula, Notes
from .split import split_formula

_REL = re.compile(r"\\leftarrow\b|\\gets\b|\\coloneqq\b|\\equiv\b|\\triangleq\b|:=|<-|←|(?<![<>!\\])=")
_OTHER_REL = re.compile(r"\\(?:approx|sim|simeq|propto|le|leq|ge|geq|lt|gt|neq|ne|ll|gg|to|mapsto|rightarrow)\b|[<>≈≤≥]")
_RANGE = re.compile(r"^\s*[A-Za-z]\s*=\s*\w+\s*,\s*\\[lc]?dots\s*,\s*[\w{}\\_^]+\s*$")
_IN = re.compile(r"\\in\b|∈")
_CONDITION = re.compile(r"\b(?:if|when|where|for)\b[^.]*?\b(output|first|hidden)\s+(?:layer|neuron|unit)", re.IGNORECASE)

PROFILE_SIGNS: dict[str, tuple[str, ...]] = {
    "wikipedia": (r"\bnet_", r"\\(?:mathrm|text|operatorname)\{net\}", r"\bo_", r"\\varphi", r"\\phi\b", r"\bt_"),
    "aima": (r"\bin_", r"\\(?:mathrm|text|operatorname)\{in\}", r"\\Delta_", r"\bg'", r"\bg\^\{?\\prime",
             r"[wW]_\{\s*\w\s*,\s*\w\s*\}", r"\bErr_"),
    "seed": (r"\b[zaWb]\^\{?\(", r"\\delta\^\{?\(", r"\\sigma\b", r"\\hat\{?\s*y\}?"),
    "bishop": (r"\bh'?\(\s*a_", r"w_\{?ji\}?\s*z_i", r"\by_k\s*-\s*t_k"),
}
"""Symbols that point to a profile (profiles without an entry are chosen only with --notation)."""


@dataclass
class Checked:
    """One claim of the notes with its verdict and where it stands in the file."""

    verdict: Verdict
    line: int
    section: str
    profile: str
    formula: int              # index in Notes.formulas
    cell: int | None = None
    cell_line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        v = self.verdict
        out = {"line": self.line, "claim": v.claim, "verdict": v.verdict, "note": _note(v),
               "diagnosis": v.diagnosis, "counterexample": v.counterexample, "expected": v.expected,
               "section": self.section, "profile": self.profile}
        if self.cell is not None:
            out.update(cell=self.cell, cell_line=self.cell_line)
        return out


def _note(v: Verdict) -> str | None:
    parts = [p for p in (v.note, v.reason if v.verdict in ("cannot-check", "skipped") else None) if p]
    return "; ".join(dict.fromkeys(parts)) or None


_DECLARED = re.compile(r"\bNotation: the ([a-z]+) profile\b")


def declared_profile(text: str) -> str | None:
    """The profile a document names for itself (symbackprop's documents say "Notation: the
    bishop profile."), or None; it holds for every section, as ``--notation`` would."""
    names = {m.group(1) for m in _DECLARED.finditer(text)} & set(PROFILE_NAMES)
    return names.pop() if len(names) == 1 else None


def auto_profile(texts: Iterable[str], fallback: str) -> tuple[str, str]:
    """The profile whose symbols the texts use most, and the evidence (``fallback`` when none is used)."""
    joined = "\n".join(texts)
    scores = {}
    for name in PROFILE_NAMES:
        scores[name] = [m.group() for p in PROFILE_SIGNS.get(name, ()) for m in re.finditer(p, joined)]
    best = max(PROFILE_NAMES, key=lambda n: (len(scores[n]), n == fallback))
    if not scores[best]:
        return fallback, "no profile's symbols used"
    evidence = ", ".join(dict.fromkeys(s.strip() for s in scores[best]))
    return best, f"symbols {evidence}"


def syntactic_skip(text: str, formula: Formula) -> str | None:
    """Why a claim text is not a claim about the network, judged from its syntax alone (or None)."""
    if formula.listing:
        return "a notation-list entry (it names a symbol), not a claim"
    if _RANGE.match(text):
        return "an index range (j = 1, ..., n), not a claim"
    if not _REL.search(text):
        if _IN.search(text):
            return "a shape or set annotation (\\in), not a claim"
        if _OTHER_REL.search(text):
            return "an inequality, approximation or mapping, not an equation"
        return "no '=' or '\\leftarrow': a symbol or expression, not a claim"
    return None


@dataclass
class _Item:
    text: str
    line: int
    formula: int
    skip: str | None
    scope: str | None
    cell_line: int | None
    shown: str = ""


def items(notes: Notes) -> list[_Item]:
    """The claim texts of the notes, in order, with their lines, syntactic skips and layer conditions.

    A formula without any relation written inline in prose (``$net_j$``) is a mention, not a
    claim, and is left out."""
    out: list[_Item] = []
    scope, section = None, None
    for i, f in enumerate(notes.formulas):
        if f.section != section:
            scope, section = None, f.section
        if not f.display and not _REL.search(f.text) and not _IN.search(f.text) and not f.listing:
            continue
        claims = split_formula(f.text)
        condition = _CONDITION.search(f.context or "")
        if condition and any(_REL.search(c.text) for c in claims):
            scope = condition.group(1).lower() + " layer"
        for c in claims:
            skip = syntactic_skip(c.text, f)
            text = c.text
            if scope and not skip and "layer)}" not in text:
                text = f"{text} \\text{{({scope})}}"
            out.append(_Item(text, f.line + c.offset, i, skip, scope if not skip and text != c.text else None,
                             f.cell_line + c.offset if f.cell_line is not None else None, c.text))
    return out


def combine(verdicts: list[list[Verdict]], choices: list[list[str]]) -> Verdict:
    """One verdict from the verdicts at every width (outer) and open choice (inner).

    Correct only if correct everywhere; incorrect when some width is incorrect under every
    choice; cannot-check when the verdict changes with a choice the notes leave open."""
    flat = [v for row in verdicts for v in row]
    kinds = {v.verdict for v in flat}
    if len(kinds) == 1:
        return flat[0]
    for v in flat:
        if v.verdict == "cannot-check":
            return v
    for row in verdicts:
        if row and all(v.verdict == "incorrect" for v in row):
            return row[0]
    for row, names in zip(verdicts, choices):
        if len({v.verdict for v in row}) > 1:
            wrong = [c for v, c in zip(row, names) if v.verdict != "correct"]
            right = [c for v, c in zip(row, names) if v.verdict == "correct"]
            return Verdict(flat[0].claim, "cannot-check",
                           reason=f"the verdict depends on what the notes leave open: correct with "
                                  f"{', '.join(right) or 'none'}, not with {', '.join(wrong)}; the notes do not "
                                  "define it (define the loss and activations in the notes, or pass a spec)")
    wrong = next((v for v in flat if v.verdict == "incorrect"), None)
    if wrong is not None:
        return wrong
    return next(v for v in flat if v.verdict == "correct")  # correct where read, skipped elsewhere


def _judge(text: str, ctx: Any) -> Verdict:
    """judge(), with a last guard: a failure inside the checker is that claim's cannot-check, never a crash."""
    try:
        return judge(text, ctx)
    except Exception as exc:  # noqa: BLE001 - the report must go on; the reason names the failure
        return Verdict(text, "cannot-check", reason=f"the checker failed on this claim ({type(exc).__name__}: "
                       f"{str(exc)[:80]}); please report it")


def check_notes(notes: Notes, options: list[list[Option]], notation: str = "auto", fallback: str = "seed",
                progress: Callable[[Iterable], Iterable] | None = None) -> tuple[list[Checked], dict[str, str]]:
    """Every claim of ``notes`` judged against ``options`` (widths x open choices); and the profile per section."""
    todo = items(notes)
    sections: dict[str, list[str]] = {}
    for f in notes.formulas:
        sections.setdefault(f.section, []).append(f.text)
    profiles: dict[str, str] = {}
    evidence: dict[str, str] = {}
    previous = fallback
    declared = declared_profile(notes.text) if notation == "auto" else None
    for name, texts in sections.items():
        if declared:
            profiles[name], evidence[name] = declared, "declared by the notes: 'Notation: the ... profile'"
        elif notation == "auto":
            profiles[name], evidence[name] = auto_profile(texts, previous)
            previous = profiles[name] if evidence[name].startswith("symbols") else previous
        else:
            profiles[name], evidence[name] = notation, "given with --notation"
    contexts: dict[tuple[str, int, int], Any] = {}
    choices = [[o.choice for o in row] for row in options]
    out: list[Checked] = []
    for item in (progress(todo) if progress else todo):
        f = notes.formulas[item.formula]
        prof = profiles[f.section]
        if item.skip:
            v = Verdict(item.text, "skipped", reason=item.skip)
        else:
            grid = []
            for w, row in enumerate(options):
                cells = []
                for k, option in enumerate(row):
                    key = (f.section, w, k)
                    if key not in contexts:
                        contexts[key] = new_context(option.derivation, prof)
                    cells.append(_judge(item.text, contexts[key]))
                grid.append(cells)
            v = combine(grid, choices)
            if item.scope:
                scoped = f"read for the {item.scope} only, as the prose before it says"
                v.note = f"{v.note}; {scoped}" if v.note else scoped
        v.line, v.claim = item.line, item.shown
        out.append(Checked(v, item.line, f.section, prof, item.formula, f.cell, item.cell_line))
    return out, {s: f"{profiles[s]} ({evidence[s]})" for s in profiles}
