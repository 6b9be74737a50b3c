"""generated/ is exactly what the current code writes for examples/ (byte-identical).

This compares the code with its own earlier output, not with any truth: it catches unintended
changes of the documents and code a user sees.  A failure shows the diff; regenerating
(scripts/regenerate.py) is right only after reading it and confirming every changed line is meant
(the formulas themselves are checked against independent oracles elsewhere: tests/engine/test_matrix.py,
tests/engine/test_derive_pairs.py, tests/codegen/test_codegen.py).
"""

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from symbackprop.cli import main
from symbackprop.output import MANIFEST
from symbackprop.render.documents import compile_pdf

ROOT = Path(__file__).resolve().parent.parent
DIFF_LINES = 40


def stale_message(path: str, committed: bytes, produced: bytes) -> str:
    """The first DIFF_LINES lines of a unified diff committed -> produced, and what to do about it."""
    diff = list(difflib.unified_diff(committed.decode("utf-8", "replace").splitlines(),
                                     produced.decode("utf-8", "replace").splitlines(),
                                     f"committed {path}", "produced now", lineterm=""))
    shown = "\n".join(diff[:DIFF_LINES]) + (f"\n... ({len(diff) - DIFF_LINES} more diff lines)"
                                            if len(diff) > DIFF_LINES else "")
    return (f"{path} differs from what the code writes now:\n{shown}\n"
            "Read this diff first. Regenerating (python scripts/regenerate.py) is right only if every changed "
            "line is an intended change; otherwise the code has a bug that the committed file just caught.")


SPECS = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".yaml", ".yml", ".toml", ".json"))


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_generated_outputs_are_up_to_date(tmp_path, spec, monkeypatch):
    monkeypatch.chdir(ROOT)  # specs are named relative to the repo, as in scripts/regenerate.py
    out = tmp_path / spec.stem
    assert main(["derive", str(spec.relative_to(ROOT)), "-o", str(out), "--no-pdf"]) == 0
    committed = ROOT / "generated" / spec.stem
    produced = sorted(p.name for p in out.iterdir() if p.name != MANIFEST)
    assert produced, "derive wrote nothing"
    for name in produced:
        assert (committed / name).is_file(), (f"generated/{spec.stem}/{name} is missing: after reading it, "
                                              "commit it with python scripts/regenerate.py")
        new, old = (out / name).read_bytes(), (committed / name).read_bytes()
        assert new == old, stale_message(f"generated/{spec.stem}/{name}", old, new)
    assert os.path.isdir(committed)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_committed_pdf_is_reproducible():
    """The committed PDF is what pdflatex makes of the committed .tex, byte for byte."""
    folder = ROOT / "generated" / "seed_2_3_1"
    pdf = compile_pdf((folder / "derivation.tex").read_text(encoding="utf-8"))
    assert pdf == (folder / "derivation.pdf").read_bytes()


def test_stale_message_shows_the_diff_and_warns():
    msg = stale_message("generated/x/derivation.md", b"a\nW^T delta\nc\n", b"a\nW delta\nc\n")
    assert "-W^T delta" in msg and "+W delta" in msg
    assert "Read this diff first" in msg and "only if every changed line is an intended change" in msg
    long = stale_message("f", "".join(f"{i}\n" for i in range(200)).encode(), b"")
    assert long.count("\n-") <= DIFF_LINES and "more diff lines" in long


def test_committed_generated_tests_pass(tmp_path):
    """Every committed generated/<example>/test_model.py passes, run by pytest in a fresh process.

    Those tests compare the generated gradients with central finite differences of the generated
    loss (an independent truth), so this runs each example's own check as a user would.
    """
    folders = sorted(p for p in (ROOT / "generated").iterdir() if (p / "test_model.py").is_file())
    assert {p.name for p in folders} >= {s.stem for s in SPECS}, "an example has no generated test_model.py"
    paths = []
    for folder in folders:  # copies: running in generated/ would leave caches in the repository
        target = tmp_path / folder.name
        target.mkdir()
        for name in ("model.py", "test_model.py"):
            shutil.copy(folder / name, target / name)
        paths.append(str(target / "test_model.py"))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--import-mode=importlib", "--rootdir", str(tmp_path), *paths],
                            check=False, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
