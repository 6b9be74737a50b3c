"""Benchmark: check a file of 200 claims on the 4-5-3 classifier (target: under 10 s), a 200-line
notes file built from the seeds' formulas (target: under 5 s), and the CLI's start-up time.

Run: ``PYTHONPATH=. python benchmarks/check_claims.py``.  Prints the time of the
derivation and of the check; a benchmark, not a timed test.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symbackprop import check, derive

SPEC = str(ROOT / "examples" / "classifier_4_5_3.yaml")
SIZES = (4, 5, 3)


def claims() -> list[str]:
    """200 claims: per-weight gradients, deltas, updates, index and matrix forms, some wrong."""
    out = []
    for l in (1, 2):
        prev = "x" if l == 1 else "a^{(1)}"
        for j in range(1, SIZES[l] + 1):
            for k in range(1, SIZES[l - 1] + 1):
                out.append(rf"\frac{{\partial E}}{{\partial W^{{({l})}}_{{{j}{k}}}}} = \delta^{{({l})}}_{j} {prev}_{k}")
                out.append(rf"W^{{({l})}}_{{{j}{k}}} \leftarrow W^{{({l})}}_{{{j}{k}}} - \alpha \delta^{{({l})}}_{j}"
                           rf" {prev}_{k}")
            out.append(rf"\frac{{\partial E}}{{\partial b^{{({l})}}_{j}}} = \delta^{{({l})}}_{j}")
    for k in range(1, 4):
        out.append(rf"\delta^{{(2)}}_{k} = \hat y_{k} - y_{k}")
        out.append(rf"\delta^{{(2)}}_{k} = y_{k} - \hat y_{k}")  # wrong: sign
    for j in range(1, 6):
        out.append(rf"\delta^{{(1)}}_{j} = \sigma'(z^{{(1)}}_{j}) \sum_k W^{{(2)}}_{{k{j}}} \delta^{{(2)}}_k")
        out.append(rf"\delta^{{(1)}}_{j} = \sigma'(a^{{(1)}}_{j}) \sum_k W^{{(2)}}_{{k{j}}} \delta^{{(2)}}_k")  # wrong
    general = [
        r"\frac{\partial E}{\partial W^{(l)}_{jk}} = \delta^{(l)}_j a^{(l-1)}_k",
        r"\delta^{(1)} = (W^{(2)})^T \delta^{(2)} \odot \sigma'(z^{(1)})",
        r"\frac{\partial L}{\partial W^{(2)}} = \delta^{(2)} a^{(1)T}",
        r"\frac{\partial L}{\partial W^{(1)}} = \delta^{(1)} x^T",
        r"z^{(1)} = W^{(1)} x + b^{(1)}",
        r"E = -\sum_k y_k \log \hat y_k",
    ]
    while len(out) < 200:
        out.append(general[len(out) % len(general)])
    return out[:200]


NOTES_SPEC = str(ROOT / "examples" / "seed_2_3_1.yaml")
SEED_NOTES = ROOT / "examples" / "notes"


def notes_text(lines: int = 200) -> str:
    """A notes file of ``lines`` lines: the seeds' own text (000, and 001's Monash section), repeated
    under numbered headings, as a person's notes file on one network grows."""
    seed0 = (SEED_NOTES / "000_dd6527256766149b.txt").read_text(encoding="utf-8").split("\n")
    seed1 = (SEED_NOTES / "001_f9259761532919fe.txt").read_text(encoding="utf-8").split("\n")
    blocks = [seed0, seed1[18:26]]  # 001 lines 19-26: the Monash rules in AIMA notation
    out: list[str] = []
    n = 0
    while len(out) < lines:
        block = blocks[n % 2]
        out += [f"## Part {n + 1}", ""] + block + [""]
        n += 1
    return "\n".join(out[:lines]) + "\n"


def notes_benchmark() -> float:
    from symbackprop.cli import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notes.md"
        path.write_text(notes_text(), encoding="utf-8")
        for label, argv in (("with spec", ["check", NOTES_SPEC, str(path), "--json"]),
                            ("network from the notes", ["check", str(path), "--json"])):
            start = time.perf_counter()
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                code = cli(argv)
            took = time.perf_counter() - start
            counts = Counter(d["verdict"] for d in json.loads(buffer.getvalue()))
            print(f"notes file of 200 lines, {label}: {took:.2f} s (exit {code}; {dict(counts)})"
                  + ("; target: under 5 s" if label == "with spec" else ""))
            if label == "with spec":
                first = took
    return first


def startup() -> float:
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "symbackprop", "--version"], check=True, capture_output=True,
                       cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
        runs.append(time.perf_counter() - start)
    print(f"CLI start-up (python -m symbackprop --version): {min(runs):.2f} s (best of 3)")
    return min(runs)


def main() -> int:
    text = "\n".join(claims())
    start = time.perf_counter()
    d = derive(SPEC, verify=False)
    derived = time.perf_counter()
    verdicts = check(SPEC, text, derivation=d)
    done = time.perf_counter()
    counts = Counter(v.verdict for v in verdicts)
    print(f"{len(verdicts)} claims on {d.network.architecture}: {dict(counts)}")
    print(f"derive: {derived - start:.2f} s, check: {done - derived:.2f} s "
          f"({1000 * (done - derived) / len(verdicts):.1f} ms per claim); target: under 10 s")
    notes = notes_benchmark()
    startup()
    return 0 if done - derived < 10 and notes < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
