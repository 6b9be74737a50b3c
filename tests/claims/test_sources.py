"""Reading notes files: formulas, their lines and sections, in Markdown, LaTeX, notebooks and stdin.

Expected lines are counted by hand in the input texts (or, for notebooks, found by
searching the written JSON text), never taken from the reader.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from symbackprop.claims.sources import NotesError, read_notes, repair_text, scan

ROOT = Path(__file__).resolve().parents[2]
SEED0 = ROOT / "examples" / "notes" / "000_dd6527256766149b.txt"
SEED1 = ROOT / "examples" / "notes" / "001_f9259761532919fe.txt"


def test_seeds_are_the_verbatim_seed_files():
    for path in (SEED0, SEED1):
        assert path.read_bytes() == (ROOT.parent / "shared" / "seeds" / path.name).read_bytes() \
            if (ROOT.parent / "shared" / "seeds").is_dir() else path.exists()


def test_seed_000_formulas_and_lines():
    notes = read_notes(str(SEED0))
    assert [f.line for f in notes.formulas] == [6, 8, 10, 12, 14]
    assert all(f.section == "" for f in notes.formulas)
    assert notes.formulas[1].text.startswith(r"\begin{align*} & z^{(1)} = W^{(1)}x + b^{(1)}")


def test_seed_001_display_formulas_lines_and_sections():
    notes = read_notes(str(SEED1))
    display = [(f.line, f.section) for f in notes.formulas if f.display]
    monash, deriv, finding = "Monash notes", "Derivation", "Finding the derivative of the error"
    assert display == [(22, monash), (23, monash), (25, monash), (26, monash), (46, deriv), (50, deriv),
                       (54, deriv), (56, deriv), (62, finding), (66, finding), (72, finding), (74, finding),
                       (78, finding), (81, finding)]
    inline = {(f.line, f.text) for f in notes.formulas if not f.display}
    assert (77, "o_j = y") in inline and (47, "L") in inline and (58, "net_j") in inline
    listing = [(f.line, f.text) for f in notes.formulas if f.listing]
    assert listing == [(85, "x"), (86, "y"), (88, "C"), (89, "L"), (90, "W^l = (w^l_{jk})"), (91, "f^l"),
                       (92, "a^l_j")]


def test_seed_001_garbled_text_is_repaired():
    text = read_notes(str(SEED1)).text.split("\n")
    assert "Youâ€™ll" not in text[27] and "You’ll" in text[27]
    assert "Δ𝑘 or Δ𝑗" in text[27]
    assert "Â" not in "\n".join(text)


@pytest.mark.parametrize("original", ["Δ𝑘 or Δ𝑗", "You’ll “quoted” ⟶ 𝑗", "σ′(z) ⊙ δ ∂E/∂w ← ∇ Σ ᵀ", "café naïve"])
@pytest.mark.parametrize("codec", ["cp1252", "cp1254"])
def test_mojibake_round_trip_is_undone(original, codec):
    garbled = original.encode("utf-8").decode(codec, errors="ignore")  # what a cp1252 round trip leaves
    assert garbled != original
    assert repair_text(garbled) == original


def test_legitimate_unicode_is_left_alone():
    for text in ("naïve café", "δ = ∂E/∂z", "‘quoted’", "Ünïcödé"):
        assert repair_text(text) == text


MARKDOWN = """# Forward
Text with $a = b$ inline and a price of $5 and $6 (no maths).
```python
x = "$c = d$"
```
Inline code `$e = f$` and a [[link $g$]] and ![img $h$](u.png).
## Backward
$$
\\begin{aligned}
p &= q \\\\
r &= s
\\end{aligned}
$$
- item: $u = v$
1. numbered \\$ escaped \\$ and $w = y$
"""


def test_markdown_scan_skips_code_links_images_and_reads_sections():
    found = [(f.line, f.text.strip(), f.section, f.display) for f in scan(MARKDOWN, "markdown")]
    assert found[0] == (2, "a = b", "Forward", False)
    assert found[1][0] == 9 and found[1][2] == "Backward" and found[1][3] and "p &= q" in found[1][1]
    assert found[2:] == [(14, "u = v", "Backward", False), (15, "w = y", "Backward", False)]


LATEX = r"""\documentclass{article}
\newcommand{\foo}{$z = 1$}
\begin{document}
\section{Forward pass}
We have $a = b$ and % $c = d$ is a comment
\begin{equation}
e = f
\end{equation}
\[ g = h \]
\subsection*{Back}
\begin{align*}
p &= q \\
r &= s
\end{align*}
\( u = v \) and $$ w = y $$
\begin{verbatim}
$nope = 1$
\end{verbatim}
\end{document}
$after = 1$
"""


def test_latex_scan_skips_preamble_comments_and_verbatim():
    found = [(f.line, " ".join(f.text.split()), f.section) for f in scan(LATEX, "latex")]
    lines = [line for line, _, _ in found]
    assert lines == [5, 7, 9, 12, 15, 15]
    assert [s for _, _, s in found] == ["Forward pass"] * 3 + ["Back"] * 3
    assert found[0][1] == "a = b" and found[1][1] == "e = f" and found[2][1] == "g = h"
    assert "p &= q" in found[3][1] and "r &= s" in found[3][1]
    assert all("nope" not in t and "after" not in t and "c = d" not in t for _, t, _ in found)


def _notebook(tmp_path: Path) -> tuple[Path, str]:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Notes\n", "Forward: $z = W x$\n"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["s = '$a = b$'\n"]},
        {"cell_type": "markdown", "metadata": {}, "source": ["Then\n", "\n", "$$\\delta = y - t$$"]},
    ]
    text = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)
    path = tmp_path / "n.ipynb"
    path.write_text(text)
    return path, text


def test_notebook_markdown_cells_with_file_lines(tmp_path):
    path, text = _notebook(tmp_path)
    file_lines = text.split("\n")
    line_z = next(i for i, s in enumerate(file_lines, 1) if "Forward: $z = W x$" in s)
    line_d = next(i for i, s in enumerate(file_lines, 1) if "delta = y - t" in s)
    notes = read_notes(str(path))
    assert notes.kind == "notebook"
    got = [(f.text, f.line, f.cell, f.cell_line) for f in notes.formulas]
    assert got == [("z = W x", line_z, 1, 2), ("\\delta = y - t", line_d, 3, 3)]
    assert notes.formulas[1].section == "Notes"


def test_standard_input(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"x\n$$a = b$$\n")))
    notes = read_notes("-")
    assert [(f.text, f.line) for f in notes.formulas] == [("a = b", 2)]


def test_unreadable_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(NotesError, match="cannot read notes file"):
        read_notes(str(tmp_path / "missing.md"))
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(NotesError, match="not a readable notebook"):
        read_notes(str(bad))
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    with pytest.raises(NotesError, match="no list of cells"):
        read_notes(str(tmp_path / "list.ipynb"))


def test_cp1252_file_is_read(tmp_path):
    path = tmp_path / "latin.md"
    path.write_bytes("caf\u00e9: $a = b$\n".encode("cp1252"))
    notes = read_notes(str(path))
    assert [f.text for f in notes.formulas] == ["a = b"] and "café" in notes.text


def test_notebook_with_string_sources(tmp_path):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# T\nsee $a = b$\nand $$c = d$$"}]
    text = json.dumps({"cells": cells}, indent=1)
    path = tmp_path / "s.ipynb"
    path.write_text(text)
    line = next(i for i, s in enumerate(text.split("\n"), 1) if "a = b" in s)
    got = [(f.text, f.line, f.cell, f.cell_line) for f in read_notes(str(path)).formulas]
    assert got == [("a = b", line, 1, 2), ("c = d", line, 1, 3)]


def test_standard_input_kind_is_sniffed(monkeypatch):
    latex = "\\documentclass{article}\n\\begin{document}\n\\[ a = b \\]\n\\end{document}\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(latex.encode())))
    notes = read_notes("-")
    assert notes.kind == "latex" and [(f.text, f.line) for f in notes.formulas] == [("a = b", 3)]


def test_latex_multline_gather_and_inline_parens():
    text = "\\begin{multline}\n a = b \\\\\n + c\n\\end{multline}\n\\begin{gather*} d = e \\end{gather*} \\(f = g\\)\n"
    found = [(f.line, " ".join(f.text.split())) for f in scan(text, "latex")]
    assert [line for line, _ in found] == [2, 5, 5]
    assert found[1][1].endswith("d = e\\end{aligned}") and found[2][1] == "f = g"


def test_inequalities_inline_are_not_taken_for_html():
    assert [f.text for f in scan("Here $a<b$ and $c>d$ and ![x $y$](u) [[k $z$]]", "markdown")] == ["a<b", "c>d"]
