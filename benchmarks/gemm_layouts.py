"""Memory layouts for the matrix products of one training step, as OpenBLAS runs them.

    python benchmarks/gemm_layouts.py [INPUTS H1 H2 BATCH] [--repeats 5]

Times the five large products of a two-hidden-layer step (forward ``z1 = X W1ᵀ`` and
``z2 = a1 W2ᵀ``, backward ``dW2 = δ2ᵀ a1``, ``δ1 = δ2 W2`` and ``dW1 = δ1ᵀ X``), float32, one
thread, the process pinned to one core, for every combination of four layouts: ``W1`` and ``W2``
stored plainly (C) or transposed (F), and layer 1's and layer 2's ``z``/``a``/``δ`` row-major (C)
or feature-major (F).  ``X`` is row-major, as a user passes it.  ``np.matmul`` writes into any
layout, so every combination is a single BLAS call per product, no copies.  Prints the
combinations fastest first: ``W1 W2 L1 L2`` letters, the sum in ms, then each product.
:func:`symbackprop.codegen.numpy_code.feature_major_layers` and ``transposed_weights`` choose
the generated code's layouts from such runs (defaults: 784 1024 1024 256).
"""

from __future__ import annotations

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse
import functools
import itertools
import time

import numpy as np


def fastest(op, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls (after one untimed), in ms."""
    op()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        op()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[784, 1024, 1024, 256],
                        help="inputs, units of layer 1, units of layer 2, batch")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if len(args.sizes) != 4:
        parser.error("give four numbers: INPUTS H1 H2 BATCH")
    n0, n1, n2, batch = args.sizes
    rng = np.random.default_rng(0)

    def array(shape, order):
        out = np.empty(shape, np.float32, order=order)
        out[...] = rng.standard_normal(shape)
        return out

    X = array((batch, n0), "C")
    rows = []
    for w1, w2, l1, l2 in itertools.product("CF", repeat=4):
        W1, dW1, W2, dW2 = array((n1, n0), w1), array((n1, n0), w1), array((n2, n1), w2), array((n2, n1), w2)
        a1, d1, z2, d2 = array((batch, n1), l1), array((batch, n1), l1), array((batch, n2), l2), array((batch, n2), l2)
        ops = [functools.partial(np.matmul, a, b, out=out)
               for a, b, out in ((X, W1.T, a1), (a1, W2.T, z2), (d2.T, a1, dW2), (d2, W2, d1), (d1.T, X, dW1))]
        times = [fastest(op, args.repeats) for op in ops]
        rows.append((sum(times), w1 + w2 + l1 + l2, times))
    print(f"{n0}-{n1}-{n2} at batch {batch}: W1 W2 L1 L2, sum (ms), z1 z2 dW2 delta1 dW1")
    for total, key, times in sorted(rows):
        print(key, f"{total:8.3f}", " ".join(f"{t:7.3f}" for t in times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
