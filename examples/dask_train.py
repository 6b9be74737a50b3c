"""Train generated Array API code on a row-chunked dask.array under a dask.distributed cluster.

    pip install -e '.[dask]'
    python examples/dask_train.py [--rows 20000] [--chunk 5000] [--epochs 15] [--workers 2] [--check]

Generates ``model_xp.py`` for ``examples/classifier_4_5_3.yaml`` (what
``symbackprop derive SPEC -o DIR --target array-api`` writes) into a temporary
folder, starts a ``LocalCluster`` (threads in this process; point ``Client`` at a
real scheduler to scale out), builds a blobs data set as dask arrays chunked by
rows (made on the workers, never on the client), and runs the generated
``train`` on it with ``batch_size=None``: every step's gradient of the batch mean,
``delta^T a`` summed over the rows, is a reduction across the chunks, and
``dask.persist`` keeps each step's parameters on the workers.  ``--check`` also
trains with the same generated code on the gathered NumPy arrays and requires the
same loss history (to 1e-9 relative).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
from dask.distributed import Client, LocalCluster

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symbackprop.codegen import array_api as codegen_xp
from symbackprop.engine.derive import derive

SPEC = ROOT / "examples" / "classifier_4_5_3.yaml"


def generated_model(folder: Path):
    """model_xp.py for SPEC, written into ``folder`` and imported."""
    path = folder / "model_xp.py"
    path.write_text(codegen_xp.xp_model(derive(SPEC, verify=False)))
    spec = importlib.util.spec_from_file_location("model_xp_dask_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blobs(rows: int, chunk: int, inputs: int, classes: int, seed: int = 0):
    """A blobs data set as row-chunked dask arrays: X (rows, inputs), one-hot T (rows, classes)."""
    centers = np.random.default_rng(seed).normal(0.0, 3.0, size=(classes, inputs))
    rng = da.random.default_rng(seed)
    labels = rng.integers(0, classes, size=rows, chunks=chunk)
    T = (labels[:, None] == da.arange(classes)[None, :]).astype(np.float64)
    X = T @ centers + rng.normal(0.0, 1.0, size=(rows, inputs), chunks=(chunk, inputs))
    return X, T


def run(rows: int, chunk: int, epochs: int, workers: int, learning_rate: float, check: bool) -> int:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster):
        model = generated_model(Path(tmp))
        xp = model.namespace("dask")
        X, T = dask.persist(*blobs(rows, chunk, model.SIZES[0], model.SIZES[-1]))
        print(f"data: X {X.shape} in {X.numblocks[0]} row chunks of {chunk}, {workers} workers", flush=True)
        params = model.init_params(0, xp=xp)
        history = model.train(X, T, epochs=epochs, batch_size=None, learning_rate=learning_rate, progress=True,
                              params=params, after_step=lambda p, s: dask.persist(p, s))
        Y = model.predict(params, X)
        accuracy = float(xp.mean(xp.astype(xp.argmax(Y, axis=1) == xp.argmax(T, axis=1), xp.float64)))
        print(f"loss {history[0]:.6f} after the first epoch, {history[-1]:.6f} after the last; "
              f"training accuracy {accuracy:.3f}; {time.perf_counter() - start:.1f} s", flush=True)
        if check:
            hX, hT = dask.compute(X, T)
            host = model.train(hX, hT, epochs=epochs, batch_size=None, learning_rate=learning_rate, progress=False)
            if not np.allclose(history, host, rtol=1e-9, atol=0):
                print(f"check failed: Dask {history} vs NumPy {host}", file=sys.stderr)
                return 1
            print("check: the same loss history as the same code on NumPy arrays")
    return 0 if history[-1] < history[0] else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--chunk", type=int, default=5000, help="rows per chunk")
    parser.add_argument("--epochs", type=int, default=15, help="full-batch steps")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--check", action="store_true", help="compare with the same code on NumPy arrays")
    args = parser.parse_args(argv)
    return run(args.rows, args.chunk, args.epochs, args.workers, args.learning_rate, args.check)


if __name__ == "__main__":
    raise SystemExit(main())
