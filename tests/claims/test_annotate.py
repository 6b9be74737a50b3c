"""``--annotate OUT``: a marked copy of the notes (Markdown callouts, LaTeX margin notes, notebook cells).

Line numbers are counted by hand in the inputs; the original file must stay byte-identical.
"""

from __future__ import annotations

import json
from pathlib import Path

from symbackprop.cli import main

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed_2_3_1.yaml")
WIKI_NET = str(ROOT / "examples" / "claims" / "wikipedia_net.yaml")
NOTES1 = str(ROOT / "examples" / "notes" / "001_f9259761532919fe.txt")


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_annotate_markdown_copy(tmp_path, capsys):
    out = tmp_path / "annotated.md"
    before = Path(NOTES1).read_bytes()
    assert main(["check", WIKI_NET, NOTES1, "--annotate", str(out)]) == 1
    assert Path(NOTES1).read_bytes() == before
    lines = out.read_text(encoding="utf-8").split("\n")
    typo = next(i for i, s in enumerate(lines) if r"w_{j,k} \leftarrow w{i,j}" in s)
    assert lines[typo + 1].startswith("> [!failure]") and "line 26" in lines[typo + 2]
    good = next(i for i, s in enumerate(lines) if r"$$\Delta_k \leftarrow (y_k - a_k)g'(in_k)$$" in s)
    assert lines[good + 1].startswith("> [!success]")
    capsys.readouterr()
    assert main(["check", WIKI_NET, NOTES1, "--annotate", str(out)]) == 2  # exists: needs --force
    captured = capsys.readouterr()
    assert "--force" in captured.err and captured.out == ""  # refused before checking anything
    assert main(["check", WIKI_NET, NOTES1, "--annotate", str(out), "--force"]) == 1
    assert main(["check", WIKI_NET, NOTES1, "--annotate", NOTES1, "--force"]) == 2  # never the input
    assert Path(NOTES1).read_bytes() == before


def test_annotate_latex_margin_notes(tmp_path):
    src = _write(tmp_path, "n.tex", "\\documentclass{article}\n\\begin{document}\n"
                 "\\begin{align*}\nz^{(1)} &= W^{(1)}x + b^{(1)} \\\\\na^{(1)} &= \\sigma(z^{(1)})\n\\end{align*}\n"
                 "\\[ \\frac{\\partial L}{\\partial b^{(2)}} = \\delta^{(1)} \\]\n\\end{document}\n")
    out = tmp_path / "out.tex"
    assert main(["check", SEED, src, "--annotate", str(out)]) == 1
    lines = out.read_text().split("\n")
    assert lines[6].startswith("\\marginpar{") and "correct" in lines[6]
    assert lines[8].startswith("\\marginpar{") and "line 7" in lines[8]
    assert r"$\frac{\partial L}{\partial b^{(2)}} = \delta^{(2)}$" in lines[8]  # the fix, as maths


def test_annotate_notebook_cell(tmp_path):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Net\n", "$$z^{(1)} = W^{(1)}x + b^{(1)}$$\n",
                                                                   "text after\n"]},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": ["x = 1\n"]},
             {"cell_type": "markdown", "metadata": {}, "source": ["$$z^{(1)} = W^{(1)}x$$"]}]
    src = _write(tmp_path, "n.ipynb", json.dumps({"cells": cells, "metadata": {}, "nbformat": 4}, indent=1))
    out = tmp_path / "out.ipynb"
    assert main(["check", SEED, src, "--annotate", str(out)]) == 1  # the second cell's formula lacks b^{(1)}
    data = json.loads(out.read_text(encoding="utf-8"))
    first = "".join(data["cells"][0]["source"]).split("\n")
    assert first[1] == "$$z^{(1)} = W^{(1)}x + b^{(1)}$$" and first[2].startswith("> [!success]")
    assert first[-1] == "text after" or first[-2] == "text after"
    assert data["cells"][1]["source"] == ["x = 1\n"]
    last = "".join(data["cells"][2]["source"]).split("\n")
    assert last[0] == "$$z^{(1)} = W^{(1)}x$$" and last[1].startswith("> [!failure]")
