"""Benchmark: hostile claims are refused fast (target: each under 1 s).

Moved here from tests/claims/test_claims.py, which checks only *that* they are refused: wall-clock
limits are flaky on shared machines.  Run: ``PYTHONPATH=. python benchmarks/hostile_claims.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from symbackprop import check, derive
from symbackprop.claims import ClaimSyntaxError
from symbackprop.claims.parse import parse_claim

TARGET_S = 1.0


def main() -> int:
    from test_claims import HOSTILE, SEED

    slow = 0
    for text in HOSTILE:
        start = time.perf_counter()
        try:
            parse_claim(text)
            outcome = "ACCEPTED"
        except ClaimSyntaxError:
            outcome = "refused"
        took = time.perf_counter() - start
        slow += took >= TARGET_S
        print(f"{took * 1000:8.1f} ms  {outcome:8s}  {text[:50]!r}")
    d = derive(SEED, verify=False)
    start = time.perf_counter()
    verdict = check(SEED, "2^{2^{2^{2^{2^{2}}}}} = 1", notation="seed", derivation=d)[0].verdict
    took = time.perf_counter() - start
    slow += took >= TARGET_S
    print(f"{took * 1000:8.1f} ms  {verdict:8s}  exponent tower")
    print(f"{slow} over the {TARGET_S:.0f} s target")
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
