"""examples/dask_train.py: generated Array API training on a row-chunked dask.array under a local cluster.

Runs the script as a user would (a fresh process) on a small data set with ``--check``:
the same generated code on the gathered NumPy arrays must give the same loss history,
and the loss must fall.  Skipped when dask or distributed is not installed (CI installs
the ``dask`` extra, see .ci/run).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_dask_example_trains_on_a_local_cluster():
    for module in ("dask.array", "dask.distributed"):  # in CI (.ci/run installs them) a missing one fails
        importlib.import_module(module) if os.environ.get("CI") else pytest.importorskip(module)
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "dask_train.py"), "--rows", "6000",
                             "--chunk", "1500", "--epochs", "6", "--workers", "2", "--check"],
                            check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "in 4 row chunks of 1500, 2 workers" in result.stdout
    assert "check: the same loss history" in result.stdout
