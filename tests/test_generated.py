"""generated/ is exactly what the current code writes for examples/ (byte-identical)."""

import os
import shutil
from pathlib import Path

import pytest

from symbackprop.cli import main
from symbackprop.documents import compile_pdf
from symbackprop.output import MANIFEST

ROOT = Path(__file__).resolve().parent.parent
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
        assert (committed / name).is_file(), f"generated/{spec.stem}/{name} is missing: run scripts/regenerate.py"
        assert (out / name).read_bytes() == (committed / name).read_bytes(), (
            f"generated/{spec.stem}/{name} is stale: run python scripts/regenerate.py")
    assert os.path.isdir(committed)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_committed_pdf_is_reproducible():
    """The committed PDF is what pdflatex makes of the committed .tex, byte for byte."""
    folder = ROOT / "generated" / "seed_2_3_1"
    pdf = compile_pdf((folder / "derivation.tex").read_text(encoding="utf-8"))
    assert pdf == (folder / "derivation.pdf").read_bytes()
