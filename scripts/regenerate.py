"""Regenerate generated/<example>/ from every spec in examples/ (run after changing output code).

    python scripts/regenerate.py            # all examples, PDF included when pdflatex exists
    python scripts/regenerate.py --no-pdf

tests/test_generated.py regenerates into a temporary folder and requires byte-identical files.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symbackprop.cli import main

SPEC_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def example_specs() -> list[Path]:
    return sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in SPEC_SUFFIXES)


def derive_args(spec: Path, out: Path, pdf: bool) -> list[str]:
    return ["derive", str(spec.relative_to(ROOT)), "-o", str(out), "--pdf" if pdf else "--no-pdf"]


def run() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-pdf", action="store_true")
    args = ap.parse_args()
    pdf = not args.no_pdf and shutil.which("pdflatex") is not None
    import os

    os.chdir(ROOT)
    for spec in example_specs():
        out = Path("generated") / spec.stem
        if out.exists():
            shutil.rmtree(out)
        code = main(derive_args(spec, out, pdf))
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(run())
