"""Read notes as people write them: the formulas of a Markdown, LaTeX or Jupyter file.

:func:`read_notes` returns the :class:`Notes` of a path (or ``-`` for standard input):
the repaired text and every formula in it, in file order, each with its 1-based
line, its section heading and, in a notebook, its cell.  Nothing is evaluated.

* Markdown and Obsidian (``.md``, ``.txt``, anything else): ``$...$``, ``$$...$$``
  (with ``align``/``aligned``/``gather`` inside), equation environments; headings
  delimit sections; code fences, inline code, images and ``[[links]]`` are skipped.
* LaTeX (``.tex``): the preamble (up to ``\\begin{document}``) and comments are
  skipped; ``equation``, ``align``, ``gather``, ``multline`` (starred or not),
  ``\\[ \\]``, ``\\( \\)``, ``$$`` and ``$`` are read; ``\\section`` etc. are headings.
* Jupyter (``.ipynb``): markdown cells are read as Markdown, code cells skipped;
  ``line`` is the line of the ``.ipynb`` file holding the formula's source line.
* Text garbled by a cp1252 round trip of UTF-8 (``Â``, ``â€™``, ``Î”``, ``ğ‘—``) is
  repaired where the bytes allow it, and otherwise left as it is; never fatal.
"""

from __future__ import annotations

import json
import re
import sys
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SymbackpropError

MAX_NOTES_BYTES = 5_000_000


@dataclass(frozen=True)
class Formula:
    """One formula of the notes, as written between its delimiters."""

    text: str            # the LaTeX between the delimiters
    line: int            # 1-based line of the file where the formula's text starts
    end_line: int        # 1-based line of the file where the formula (with its closing delimiter) ends
    section: str = ""    # the heading above it ("" before the first heading)
    display: bool = True  # display maths ($$, environments) rather than inline $...$
    cell: int | None = None       # notebook: 1-based cell number
    cell_line: int | None = None  # notebook: 1-based line within the cell
    cell_end: int | None = None   # notebook: 1-based line within the cell where the formula ends
    listing: bool = False  # a notation-list entry: "$x$: input", "$W$ - weights"
    context: str = ""      # the prose of the sentence the formula sits in, up to the formula


@dataclass
class Notes:
    """A notes file: its kind (markdown, latex, notebook), text and formulas."""

    name: str
    kind: str
    text: str
    formulas: list[Formula] = field(default_factory=list)
    cells: list[dict] | None = None  # notebook JSON cells (for --annotate)


class NotesError(SymbackpropError):
    """A notes file that cannot be read at all (exit code 2)."""


# ----------------------------------------------------------------------------- mojibake

_LOST = bytes([0x9D, 0x81, 0x8D, 0x8F, 0x90])  # undefined in cp1252: lost in a round trip


def _byte(ch: str) -> int | None:
    for codec in ("cp1252", "cp1254"):
        try:
            b = ch.encode(codec)
        except UnicodeEncodeError:
            continue
        return b[0] if len(b) == 1 and b[0] >= 0x80 else None
    return None


def _try(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


_LIKELY = ((0x1D400, 0x1D7FF), (0x2000, 0x206F), (0x2100, 0x22FF), (0x27F0, 0x27FF), (0x0370, 0x03FF))


_COMMON = set("“”‘’–—…←→⇐⇒↦∂∇∑∏√∞≈≠≤≥⊙⊗·×′″‖∈∉∀∃ᵀ⟶⟵")


def _likely(ch: str) -> int:
    """Characters notes use most win an ambiguous repair, then maths letters, arrows, operators, Greek."""
    return 2 if ch in _COMMON else int(any(lo <= ord(ch) <= hi for lo, hi in _LIKELY))


def _decode_run(data: bytes) -> str | None:
    """UTF-8 of ``data``, re-inserting a byte lost by cp1252 where a sequence falls short."""
    out, i = [], 0
    while i < len(data):
        lead = data[i]
        n = 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF4 else 0
        if n == 0:
            return None
        try:
            out.append(data[i:i + n].decode("utf-8"))
            i += n
            continue
        except UnicodeDecodeError:
            pass
        found = [c for c in (_try(data[i:i + pos] + bytes([lost]) + data[i + pos:i + n - 1])
                             for pos in range(1, n) for lost in _LOST) if c is not None]
        if not found:
            return None
        out.append(max(found, key=_likely))
        i += n - 1
    return "".join(out)


_CANDIDATE = re.compile(r"[^\x00-\x7f]+")


def repair_text(text: str) -> str:
    """Undo a cp1252 (or cp1254) decoding of UTF-8 where the bytes allow; no-break spaces become spaces."""
    def fix(m: re.Match) -> str:
        run = m.group()
        out, i = [], 0
        while i < len(run):  # greedy: the longest decodable stretch from each position
            best = None
            for j in range(len(run), i, -1):
                codes = [_byte(c) for c in run[i:j]]
                if None in codes or j - i < 2:
                    continue
                decoded = _decode_run(bytes(codes))
                if decoded:
                    best = (j, decoded)
                    break
            if best is None:
                out.append(run[i])
                i += 1
            else:
                out.append(best[1])
                i = best[0]
        return "".join(out)

    return _CANDIDATE.sub(fix, text).replace("\u00a0", " ")


# ----------------------------------------------------------------------------- scanning

_ENVS = r"equation|align|alignat|gather|multline|eqnarray|displaymath|math|flalign"
_OPEN = re.compile(r"(?<!\\)\$\$|(?<![\\$])\$(?![\s$])|\\begin\{((?:" + _ENVS + r")\*?)\}|(?<!\\)\\\[|(?<!\\)\\\(")
_CLOSE = {"\\[": re.compile(r"(?<!\\)\\\]"), "\\(": re.compile(r"(?<!\\)\\\)"), "$$": re.compile(r"(?<!\\)\$\$")}
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class _Math:
    group: str   # "dd" ($$), "d" ($), "e" (environment), "b" (\[), "p" (\()
    env: str
    start: int   # where the delimiters start
    body: int    # where the body starts
    body_end: int
    end: int     # after the closing delimiter


def _maths(work: str):
    """Every maths span of ``work``, in order, in linear time (an unclosed opener is passed over)."""
    pos, closed_none_after = 0, {}
    while True:
        m = _OPEN.search(work, pos)
        if m is None:
            return
        opener, env = m.group(), m.group(1)
        key = env or opener[:2]
        if closed_none_after.get(key, len(work) + 1) <= m.end():
            pos = m.start() + 1
            continue
        if opener == "$":
            close = work.find("$", m.end())
            ok = close > m.end() and work[close - 1] not in " \t\n\\" and not _BLANK_LINE.search(work, m.end(), close)
            if close < 0:
                closed_none_after[key] = m.end()
            if not ok:
                pos = m.start() + 1
                continue
            yield _Math("d", "", m.start(), m.end(), close, close + 1)
            pos = close + 1
            continue
        pattern = _CLOSE.get(opener) or re.compile(r"\\end\{" + re.escape(env) + r"\}")
        c = pattern.search(work, m.end())
        if c is None:
            closed_none_after[key] = m.end()
            pos = m.start() + 1
            continue
        group = {"$$": "dd", "\\[": "b", "\\(": "p"}.get(opener, "e")
        yield _Math(group, env or "", m.start(), m.end(), c.start(), c.end())
        pos = c.end()


_FENCE = re.compile(r"^[ \t>]*(```|~~~).*?^[ \t>]*\1[^\n]*$|^[ \t>]*(```|~~~)[^\n]*\Z", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"(`+)[^`\n].*?\1")
_IMAGE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)|\[\[[^\]\n]*\]\]")
_MD_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_TEX_HEADING = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection|paragraph)\*?\s*\{([^{}\n]*)\}")
_TEX_COMMENT = re.compile(r"(?<!\\)%[^\n]*")
_TEX_VERBATIM = re.compile(r"\\begin\{(verbatim|lstlisting|minted|comment)\*?\}.*?\\end\{\1\*?\}", re.DOTALL)
_LISTING_AFTER = re.compile(r"\s*(?::|\s[-\u2013\u2014]\s|\\text\{\s*-)\s*\S")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n[ \t]*\n")


def _blank(text: str, pattern: re.Pattern) -> str:
    """``text`` with every match of ``pattern`` replaced by spaces (newlines kept, so offsets stay)."""
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)


class _Lines:
    def __init__(self, text: str):
        self.starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def line(self, offset: int) -> int:
        return bisect_right(self.starts, offset)


def scan(text: str, kind: str) -> list[Formula]:
    """The formulas of Markdown (``kind="markdown"``) or LaTeX (``"latex"``) text, in order."""
    work = text
    if kind == "latex":
        work = _blank(work, _TEX_COMMENT)
        work = _blank(work, _TEX_VERBATIM)
        begin = work.find("\\begin{document}")
        if begin >= 0:
            work = " " * (begin + len("\\begin{document}")) + work[begin + len("\\begin{document}"):]
        end = work.find("\\end{document}")
        if end >= 0:
            work = work[:end]
        headings = [(m.start(), m.group(1).strip()) for m in _TEX_HEADING.finditer(work)]
    else:
        work = _blank(work, _FENCE)
        work = _blank(work, _CODE_SPAN)
        work = _blank(work, _IMAGE)
        headings = [(m.start(), m.group(2).strip()) for m in _MD_HEADING.finditer(work)]
    lines = _Lines(text)
    formulas = []
    prose_start = 0
    heading_starts = [pos for pos, _ in headings]
    for m in _maths(work):
        body, start = work[m.body:m.body_end], m.body
        if not body.strip():
            continue
        lead = len(body) - len(body.lstrip())
        body = body.strip()
        if m.group == "e" and m.env.rstrip("*") in ("align", "alignat", "flalign", "gather", "eqnarray"):
            body = f"\\begin{{aligned}}{body}\\end{{aligned}}"
        h = bisect_right(heading_starts, m.start - 1)
        section = headings[h - 1][1] if h else ""
        line_start = max(lines.starts[lines.line(m.start) - 1], m.start - 200)
        before = work[line_start:m.start] if line_start > m.start - 200 else "text"
        eol = work.find("\n", m.end)
        after = work[m.end:eol if eol >= 0 else len(work)][:200]
        listing = (kind == "markdown" and not re.sub(r"^[ \t]*(?:[-*+]|\d+[.)])?[ \t]*", "", before).strip()
                   and bool(_LISTING_AFTER.match(after)) and m.group == "d")
        context = work[max(prose_start, m.start - 2000):m.start]
        cut = [c.end() for c in _SENTENCE_END.finditer(context)]
        context = " ".join(context[cut[-1] if cut else 0:].split())
        prose_start = m.end
        group = m.group
        formulas.append(Formula(body, lines.line(max(start + lead, 0)), lines.line(m.end - 1),
                                _clean_heading(section), group in ("dd", "e", "b") or "\\begin{" in body, listing=listing,
                                context=context))
    return formulas


def _clean_heading(title: str) -> str:
    return " ".join(re.sub(r"[*_`$]", "", title).split())


# ----------------------------------------------------------------------------- files

def kind_of_path(name: str) -> str:
    """``latex`` for .tex, ``notebook`` for .ipynb, else ``markdown``."""
    suffix = Path(name).suffix.lower()
    return {".tex": "latex", ".ltx": "latex", ".ipynb": "notebook"}.get(suffix, "markdown")


def read_notes(path: str, kind: str | None = None) -> Notes:
    """The notes at ``path`` (``-``: standard input, read as Markdown unless ``kind`` says otherwise)."""
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_NOTES_BYTES + 1) if hasattr(sys.stdin, "buffer") else \
                sys.stdin.read(MAX_NOTES_BYTES + 1).encode("utf-8", "replace")
        else:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_NOTES_BYTES + 1)
    except OSError as exc:
        raise NotesError(f"cannot read notes file {path}: {exc.strerror or exc}; give a .md, .txt, .tex "
                         "or .ipynb file, or - for standard input") from None
    if len(raw) > MAX_NOTES_BYTES:
        raise NotesError(f"notes file {path} is larger than {MAX_NOTES_BYTES // 1_000_000} MB; split it")
    text = decode_bytes(raw)
    kind = kind or (kind_of_path(path) if path != "-" else sniff(text))
    if kind == "notebook":
        return read_notebook(path, text)
    return Notes(path, kind, text, scan(text, kind) or claim_lines(text))


_PLAIN_REL = re.compile(r"=|\\leftarrow|\\gets|<-|←")


def claim_lines(text: str) -> list[Formula]:
    """A file without maths delimiters whose every line is a relation (``dE/dW2[1,1] = ...``): one claim
    per line, as claim files were written before notes were read; otherwise nothing."""
    lines = [(n, line.strip()) for n, line in enumerate(text.split("\n"), start=1)
             if line.strip() and not line.lstrip().startswith(("%", "#"))]
    if not lines or not all(_PLAIN_REL.search(line) for _, line in lines):
        return []
    return [Formula(line, n, n) for n, line in lines]


def sniff(text: str) -> str:
    """The kind of text from standard input: a notebook (JSON with cells), LaTeX (a document), else Markdown."""
    head = text.lstrip()[:4000]
    if head.startswith("{") and '"cells"' in text:
        return "notebook"
    if "\\documentclass" in head or "\\begin{document}" in text:
        return "latex"
    return "markdown"


def decode_bytes(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else cp1252; then repaired; never fails."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    return repair_text(text.replace("\r\n", "\n").replace("\r", "\n"))


def read_notebook(name: str, text: str) -> Notes:
    """Markdown cells of a Jupyter notebook, with lines counted in the ``.ipynb`` file itself."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise NotesError(f"{name} is not a readable notebook ({exc}); save it again from Jupyter") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise NotesError(f"{name} has no list of cells; save it again from Jupyter as a .ipynb file")
    file_lines = text.split("\n")
    notes = Notes(name, "notebook", text, cells=cells)
    search_from = 0
    section = ""
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        src_lines = source if isinstance(source, list) else str(source).splitlines(keepends=True)
        src_lines = [s if isinstance(s, str) else "" for s in src_lines]
        if isinstance(source, str):  # one JSON string: every line of the cell is on one line of the file
            where, _ = _source_lines(file_lines, [source], search_from)
            locations = where * len(src_lines)
            search_from = where[0] or search_from
        else:
            locations, search_from = _source_lines(file_lines, src_lines, search_from)
        if cell.get("cell_type") != "markdown":
            continue
        cell_text = repair_text("".join(src_lines))
        for f in scan(cell_text, "markdown"):
            loc = locations[f.line - 1] if f.line - 1 < len(locations) else None
            end = locations[f.end_line - 1] if f.end_line - 1 < len(locations) else None
            notes.formulas.append(Formula(f.text, loc or 1, end or loc or 1, f.section or section, f.display,
                                          number, f.line, f.end_line, f.listing, f.context))
        for m in _MD_HEADING.finditer(cell_text):
            section = _clean_heading(m.group(2).strip())
    return notes


def _source_lines(file_lines: list[str], src_lines: list[str], start: int) -> tuple[list[int | None], int]:
    """The 1-based file line of each source line of a cell (JSON strings searched in order)."""
    out: list[int | None] = []
    pos = start
    for src in src_lines:
        encoded = json.dumps(src, ensure_ascii=False)
        ascii_encoded = json.dumps(src)
        found = None
        for i in range(pos, len(file_lines)):
            if encoded in file_lines[i] or ascii_encoded in file_lines[i]:
                found = i
                break
        if found is None:
            out.append(None)
        else:
            out.append(found + 1)
            pos = found + 1
    return out, pos
