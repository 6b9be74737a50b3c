"""Score the claim checker on the corpus of backprop formulas as people write them.

The corpus (``tests/data/claims_corpus/*.yaml``, one file per source family) holds
formulas quoted from textbooks, course notes and the project's seeds, correct and
wrong, each with the verdict the mathematics gives (``expect``) and, for a wrong one,
the mistake category.  Each file names its network (an inline spec) and notation
profile.  Every claim is judged with a fresh context, so one line cannot affect another.

Run: ``.venv/bin/python benchmarks/claims_corpus.py [--failures] [--json] [--dir DIR]``.

Figures printed: formulas read (verdict not cannot-check), verdicts right, wrong
formulas flagged incorrect, wrong formulas whose diagnosis names the mistake, per-family.

Baseline, branch claims-corpus at 4ed3df2 (checker before issue 9), 2026-11-30:
    formulas read (not cannot-check): 157 of 289
    verdicts right: 119 of 289
    wrong formulas flagged incorrect: 58 of 103
    wrong formulas whose diagnosis names the mistake: 30 of 103
    crashes (judge raised): 9
    expected: {'correct': 172, 'incorrect': 103, 'skipped': 14}; verdicts: {'correct': 68, 'cannot-check': 123, 'incorrect': 89, 'crash': 9}

    family                    n  read  right  wrong  flagged  named  crash
    ----------------------------------------------------------------------
    aima                     26    24     15     11       10      4      0
    bishop                   30     0      0     10        0      0      0
    goodfellow               18     2      0      7        0      0      1
    lectures                 17     7      6      8        3      3      0
    ng                       38    23     10     13       10      0      0
    nielsen                  36    13     12     15        6      5      8
    seed-000                 55    40     39     16       14     11      0
    seed-001-monash           4     4      4      1        1      1      0
    seed-001-wikipedia       11    11      7      0        0      0      0
    softmax-classifier       27    20     16     11        8      4      0
    wikipedia                27    13     10     11        6      2      0
    TOTAL                   289   157    119    103       58     30      9

After issue 9 (notes reader and claim language merged), 2026-11-30:
    formulas read (not cannot-check): 288 of 289
    verdicts right: 287 of 289
    wrong formulas flagged incorrect: 103 of 103
    wrong formulas whose diagnosis names the mistake: 101 of 103
    crashes (judge raised): 0

After the fixes of issue 14's "every suggested fix is checked" (2026-11-30): the same, except
    wrong formulas whose diagnosis names the mistake: 103 of 103
    (The claim language was improved against this corpus, so these figures are likely higher
    than on unseen notes.)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symbackprop import derive
from symbackprop.claims.judge import judge, new_context
from symbackprop.errors import SpecError

CORPUS = ROOT / "tests" / "data" / "claims_corpus"
EXPECTS = ("correct", "incorrect", "skipped")
VERDICTS = ("correct", "incorrect", "skipped", "cannot-check")

# Mistake categories, and the words a diagnosis must contain (any one, case-insensitive)
# to count as naming the mistake.  The words follow the labels of symbackprop/claims/diagnose.py.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "sign": ("sign",),
    "missing-activation-derivative": ("missing activation", "activation-derivative factor", "derivative factor"),
    "extra-activation-derivative": ("extra", "activation-derivative factor", "derivative factor"),
    "prime-at-a": ("instead of z", "applied to a", "derivative applied", "argument"),
    "index": ("index", "transpos"),
    "wrong-layer": ("layer",),
    "sum": ("sum",),
    "factor": ("constant factor", "times the true value"),
    "missing-mean": ("constant factor", "times the true value", "1/m", "mean", "batch"),
    "bias": ("bias",),
    "ascent": ("ascent",),
    "softmax-diagonal": ("softmax", "jacobian", "diagonal"),
    "a-for-x": ("instead of x", "first layer", "input", "layer"),
    "hadamard": ("hadamard", "odot", "elementwise", "element-wise", "matrix product"),
    "missing-term": ("missing term", "term"),
}


def load(directory: Path = CORPUS) -> list[dict[str, Any]]:
    """Every corpus file as a dict (``family``, ``profile``, ``network``, ``entries``, ``path``)."""
    files = []
    for path in sorted(Path(directory).glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["path"] = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        files.append(data)
    return files


def names_mistake(category: str | None, diagnosis: str | None) -> bool:
    """Whether ``diagnosis`` names the mistake ``category``."""
    if not category or not diagnosis:
        return False
    text = diagnosis.lower()
    return any(word in text for word in CATEGORIES.get(category, ()))


def judge_file(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One result per entry: the entry plus ``verdict``, ``diagnosis``, ``reason`` (``crash`` on an exception)."""
    derivation = derive(data["network"], verify=False)
    results = []
    for entry in data["entries"]:
        out = {"family": data["family"], "claim": entry["claim"], "expect": entry["expect"],
               "mistake": entry.get("mistake"), "source": entry.get("source")}
        try:
            ctx = new_context(derivation, data.get("profile"))
        except SpecError as exc:  # an unknown profile: nothing in this file can be read
            out.update(verdict="cannot-check", diagnosis=None, reason=f"context: {exc}")
            results.append(out)
            continue
        try:
            verdict = judge(entry["claim"], ctx)
            out.update(verdict=verdict.verdict, diagnosis=verdict.diagnosis, reason=verdict.reason or verdict.note)
        except Exception as exc:  # noqa: BLE001 -- judge() promises never to raise: record the crash
            out.update(verdict="crash", diagnosis=None, reason=f"{type(exc).__name__}: {exc}")
        results.append(out)
    return results


def run(directory: Path = CORPUS) -> list[dict[str, Any]]:
    """Judge the whole corpus."""
    return [r for data in load(directory) for r in judge_file(data)]


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals and per-family figures."""

    def figures(rows):
        wrong = [r for r in rows if r["expect"] == "incorrect"]
        return {
            "formulas": len(rows),
            "read": sum(r["verdict"] not in ("cannot-check", "crash") for r in rows),
            "right": sum(r["verdict"] == r["expect"] for r in rows),
            "wrong_formulas": len(wrong),
            "wrong_flagged": sum(r["verdict"] == "incorrect" for r in wrong),
            "wrong_named": sum(r["verdict"] == "incorrect" and names_mistake(r["mistake"], r["diagnosis"])
                               for r in wrong),
            "crashes": sum(r["verdict"] == "crash" for r in rows),
        }

    families = sorted({r["family"] for r in results})
    return {
        "total": figures(results),
        "by_family": {f: figures([r for r in results if r["family"] == f]) for f in families},
        "by_expect": dict(Counter(r["expect"] for r in results)),
        "verdicts": dict(Counter(r["verdict"] for r in results)),
    }


def failures(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mismatched verdicts, and wrong formulas flagged without naming the mistake."""
    return [r for r in results if r["verdict"] != r["expect"]
            or (r["expect"] == "incorrect" and not names_mistake(r["mistake"], r["diagnosis"]))]


def _table(summary: dict[str, Any]) -> str:
    head = f"{'family':22} {'n':>4} {'read':>5} {'right':>6} {'wrong':>6} {'flagged':>8} {'named':>6} {'crash':>6}"
    lines = [head, "-" * len(head)]
    rows = list(summary["by_family"].items()) + [("TOTAL", summary["total"])]
    for name, f in rows:
        lines.append(f"{name:22} {f['formulas']:>4} {f['read']:>5} {f['right']:>6} {f['wrong_formulas']:>6} "
                     f"{f['wrong_flagged']:>8} {f['wrong_named']:>6} {f['crashes']:>6}")
    return "\n".join(lines)


def report(summary: dict[str, Any]) -> str:
    t = summary["total"]
    return "\n".join([
        f"formulas read (not cannot-check): {t['read']} of {t['formulas']}",
        f"verdicts right: {t['right']} of {t['formulas']}",
        f"wrong formulas flagged incorrect: {t['wrong_flagged']} of {t['wrong_formulas']}",
        f"wrong formulas whose diagnosis names the mistake: {t['wrong_named']} of {t['wrong_formulas']}",
        f"crashes (judge raised): {t['crashes']}",
        f"expected: {summary['by_expect']}; verdicts: {summary['verdicts']}",
        "",
        _table(summary),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=CORPUS, help="corpus folder (default: %(default)s)")
    parser.add_argument("--failures", action="store_true", help="list every mismatch")
    parser.add_argument("--json", action="store_true", help="machine output: summary and results")
    args = parser.parse_args(argv)
    results = run(args.dir)
    summary = summarize(results)
    if args.json:
        print(json.dumps({"summary": summary, "results": results}, indent=1, ensure_ascii=False))
        return 0
    print(report(summary))
    if args.failures:
        print("\nmismatches (expect -> verdict [diagnosis | reason]):")
        for r in failures(results):
            detail = r["diagnosis"] or r["reason"] or ""
            wanted = f"{r['expect']}" + (f" ({r['mistake']})" if r["mistake"] else "")
            print(f"- [{r['family']}] {wanted} -> {r['verdict']} [{detail}]\n    {r['claim']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
