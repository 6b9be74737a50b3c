"""``--annotate OUT``: a copy of the notes with a mark after each checked formula.

Markdown gets an Obsidian callout (``> [!success]``, ``> [!failure]``, ``> [!question]``,
``> [!note]``) on the lines after the formula; LaTeX a ``\\marginpar``; a notebook the
callout in the markdown cell.  The original file is never written.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from ..errors import SymbackpropError
from .sources import Notes

CALLOUT = {"correct": "success", "incorrect": "failure", "cannot-check": "question", "skipped": "note"}
_TEX_SPECIAL = re.compile(r"[\\{}_^&%$#~]")


def _tex_text(text: str) -> str:
    return _TEX_SPECIAL.sub(lambda m: {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}",
                                       "^": r"\textasciicircum{}"}.get(m.group(), "\\" + m.group()), text)


def _tex_marks(checked: list) -> str:
    """Margin text: words escaped for LaTeX; a fix as maths (printed by the checker from whitelisted tokens)."""
    parts = []
    for c in checked:
        v = c.verdict
        text = _tex_text(f"line {c.line}: {v.verdict}")
        if v.verdict == "incorrect":
            text += ", " + _tex_text(v.diagnosis or "")
            if v.expected:
                text += f"; fix: ${v.expected}$"
        elif v.verdict in ("cannot-check", "skipped"):
            text += ", " + _tex_text(v.reason or "")
        parts.append(text)
    return "; ".join(parts)


def _worst(checked: list) -> str:
    kinds = {c.verdict.verdict for c in checked}
    for k in ("incorrect", "cannot-check", "correct", "skipped"):
        if k in kinds:
            return k
    return "skipped"


def _message(checked: list) -> list[str]:
    out = []
    for c in checked:
        v = c.verdict
        if v.verdict == "incorrect":
            out.append(f"✗ line {c.line}: {v.diagnosis}" + (f"; fix: ${v.expected}$" if v.expected else ""))
        elif v.verdict == "cannot-check":
            out.append(f"? line {c.line}: cannot check: {v.reason}")
        elif v.verdict == "skipped":
            out.append(f"- line {c.line}: skipped: {v.reason}")
        else:
            out.append(f"✓ line {c.line}: correct")
    return out


def _callout(checked: list, indent: str) -> list[str]:
    kind = _worst(checked)
    msgs = _message(checked)
    head = {"correct": "correct", "incorrect": "incorrect", "cannot-check": "cannot check",
            "skipped": "skipped"}[kind]
    return [f"{indent}> [!{CALLOUT[kind]}] symbackprop: {head}"] + [f"{indent}> {m}" for m in msgs]


def annotated(notes: Notes, checked: list) -> str:
    """The annotated text of ``notes`` (Markdown, LaTeX or notebook JSON)."""
    by_formula = defaultdict(list)
    for c in checked:
        by_formula[c.formula].append(c)
    if notes.kind == "notebook":
        return _annotated_notebook(notes, by_formula)
    after_line = defaultdict(list)
    for i, group in by_formula.items():
        after_line[notes.formulas[i].end_line].extend(group)
    lines = notes.text.split("\n")
    out = []
    for n, text in enumerate(lines, start=1):
        out.append(text)
        group = after_line.get(n)
        if not group:
            continue
        if notes.kind == "latex":
            out.append(f"\\marginpar{{\\footnotesize symbackprop: {_tex_marks(group)}}}%")
        else:
            indent = re.match(r"[ \t]*", text).group()
            out.extend(_callout(group, indent))
    return "\n".join(out)


def _annotated_notebook(notes: Notes, by_formula: dict) -> str:
    data = json.loads(notes.text)
    per_cell = defaultdict(lambda: defaultdict(list))
    for i, group in by_formula.items():
        f = notes.formulas[i]
        per_cell[f.cell][f.cell_end or f.cell_line or 1].extend(group)
    for number, cell in enumerate(data.get("cells", []), start=1):
        if number not in per_cell or not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        lines = text.split("\n")
        out = []
        for n, line in enumerate(lines, start=1):
            out.append(line)
            if n in per_cell[number]:
                out.extend(_callout(per_cell[number][n], re.match(r"[ \t]*", line).group()))
        new = "\n".join(out)
        cell["source"] = [s for s in new.splitlines(keepends=True)]
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def check_target(notes_path: str, out: str, force: bool = False) -> Path:
    """The path to write ``--annotate`` to; refuses the notes file itself, and an existing file without force."""
    target = Path(out)
    if notes_path != "-" and target.exists() and Path(notes_path).exists() and target.samefile(notes_path):
        raise SymbackpropError(f"--annotate {out} is the notes file itself; give another file name "
                               "(the original is never touched)")
    if target.exists() and not force:
        raise SymbackpropError(f"--annotate {out} already exists; give a new file name or add --force")
    if target.is_dir():
        raise SymbackpropError(f"--annotate {out} is a directory; give a file name")
    return target


def write_annotated(notes: Notes, checked: list, out: str, force: bool = False) -> Path:
    """Write the annotated copy to ``out`` (after :func:`check_target`)."""
    target = check_target(notes.name, out, force)
    try:
        target.write_text(annotated(notes, checked), encoding="utf-8")
    except OSError as exc:
        raise SymbackpropError(f"cannot write {out}: {exc.strerror or exc}; give a writable path") from None
    return target
