"""Size of the derivation documents, before (a git ref's committed generated/ and code) and now.

    python benchmarks/document_size.py [--before REF]     # REF default: 835bd9f, the last commit before issue 12

For each dense example and for a 5-layer net: PDF pages (pdfinfo), pages before the appendix
(pdftotext, the first page whose text has "Appendix:"), and the Markdown size in KB: ``md KB`` is
derivation.md alone; ``+app KB`` adds its companion appendix.md (notation table, batch form,
verification details, which derivation.md points to) and ``+pw KB`` also per_weight.md (every
parameter's chain rule), as far as they exist.  Before issue 12 derivation.md held all of it.  Needs
pdflatex, pdfinfo and pdftotext; the "before" of the 5-layer net runs the REF's code from a
temporary checkout (git archive).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("seed_2_3_1", "xor", "classifier_4_5_3", "deep_mixed")  # mazur_2_2_2 is new: no "before"
FIVE = {"name": "five-layer", "inputs": 2, "loss": "mse",
        "layers": [{"units": 3, "activation": "relu"}, {"units": 3, "activation": "tanh"},
                   {"units": 3, "activation": "sigmoid"}, {"units": 3, "activation": "tanh"},
                   {"units": 2, "activation": "identity"}]}
RENDER = ("import json, sys; from symbackprop.engine.derive import derive; from symbackprop.render import documents;"
          "d = derive(json.loads(sys.argv[1]), verify=False); out = sys.argv[2];"
          "open(out + '.md', 'w').write(documents.markdown(d)); open(out + '.tex', 'w').write(documents.tex(d));"
          "extra = getattr(documents, 'markdown_appendix', lambda d: None)(d);"
          "extra is None or open(out + '-appendix.md', 'w').write(extra)")
COMPANIONS = ("appendix.md", "per_weight.md")


def pages(pdf: Path) -> tuple[int, int]:
    """(all pages, pages before the appendix)."""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    total = int(next(ln.split()[1] for ln in info.splitlines() if ln.startswith("Pages:")))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for number, page in enumerate(text.split("\f"), start=1):
        if "Appendix:" in page:
            return total, number - 1 if page.lstrip().split("\n", 1)[0].find("Appendix:") >= 0 else number
    return total, total


def compile_to(tex: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from symbackprop.render.documents import compile_pdf

    pdf = tex.with_suffix(".pdf")
    pdf.write_bytes(compile_pdf(tex.read_text(encoding="utf-8")))
    return pdf


def render(code_root: Path, out: Path) -> None:
    subprocess.run([sys.executable, "-c", RENDER, json.dumps(FIVE), str(out)], cwd=code_root, check=True,
                   env={"PYTHONPATH": str(code_root), "PATH": "/usr/bin:/bin"})


def kb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths if p.is_file()) / 1024


def row(name: str, before: tuple[Path, Path], now: tuple[Path, Path], companions: list[Path]) -> str:
    """``companions``: appendix.md, then per_weight.md, beside the new derivation.md (missing ones: 0)."""
    (bp, bm), (np_, nm) = before, now
    (bt, ba), (nt, na) = pages(bp), pages(np_)
    main, with_app, with_all = kb([nm]), kb([nm, *companions[:1]]), kb([nm, *companions])
    return (f"{name:22s} {bt:4d} {ba:6d} {kb([bm]):7.1f}   ->  {nt:4d} {na:6d} {main:7.1f} ({main * 1024 / bm.stat().st_size:4.0%})"
            f" {with_app:7.1f} ({with_app * 1024 / bm.stat().st_size:4.0%}) {with_all:7.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="835bd9f")
    args = ap.parse_args()
    print(f"{'document':22s} {'pages':>4s} {'w/o app':>6s} {'md KB':>7s}   ->  {'pages':>4s} {'w/o app':>6s} "
          f"{'md KB':>7s} {'':6s} {'+app KB':>7s} {'':6s} {'+pw KB':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in EXAMPLES:
            old = tmp / f"{name}-before"
            old.mkdir()
            for ext in ("pdf", "md"):
                blob = subprocess.run(["git", "show", f"{args.before}:generated/{name}/derivation.{ext}"],
                                      cwd=ROOT, capture_output=True, check=True).stdout
                (old / f"derivation.{ext}").write_bytes(blob)
            folder = ROOT / "generated" / name
            print(row(name, (old / "derivation.pdf", old / "derivation.md"),
                      (folder / "derivation.pdf", folder / "derivation.md"), [folder / c for c in COMPANIONS]))
        checkout = tmp / "before"
        checkout.mkdir()
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive, check=True)
        render(checkout, tmp / "five-before")
        render(ROOT, tmp / "five-now")
        before = (compile_to(tmp / "five-before.tex"), tmp / "five-before.md")
        now = (compile_to(tmp / "five-now.tex"), tmp / "five-now.md")
        print(row("five_layer 2-3-3-3-3-2", before, now, [tmp / "five-now-appendix.md"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
