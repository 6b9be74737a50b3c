"""One training step (forward, backward, SGD update) in float32: generated NumPy vs frameworks.

    PYTHONPATH=. python benchmarks/train_step.py [--quick]

Implementations, all in this one process and interleaved (each repetition times
every implementation once, in turn); the table reports medians and ratios:

* ``generated``: ``model.train_step`` of the code symbackprop generates for the spec;
* ``torch``: PyTorch eager (CPU), autograd, ``p -= lr * p.grad``;
* ``jax``: ``jax.jit`` of value-and-grad plus the update (CPU, buffers donated);
* ``gemm``: the lower bound, the same matrix products alone in NumPy
  (forward ``A W^T``, backward ``Delta^T A`` and ``Delta W``) into preallocated outputs.

Networks: hidden sigmoid (small nets) or ReLU (784-input nets), softmax output
with categorical cross-entropy, except 2-3-1 which is the seeds' sigmoid net
with half the squared error.  The machines are noisy: compare ratios, not times.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from symbackprop import codegen
from symbackprop.derive import derive

LR = 0.01
CONFIGS = [  # (sizes, batch, hidden activation, output activation, loss)
    ((2, 3, 1), 1, "sigmoid", "sigmoid", "half_sse"),
    ((4, 8, 3), 16, "sigmoid", "softmax", "categorical_cross_entropy"),
    ((784, 128, 10), 64, "relu", "softmax", "categorical_cross_entropy"),
    ((784, 256, 256, 10), 256, "relu", "softmax", "categorical_cross_entropy"),
    ((784, 1024, 1024, 10), 256, "relu", "softmax", "categorical_cross_entropy"),
]


def spec_of(sizes, hidden, out, loss):
    layers = [{"units": n, "activation": hidden} for n in sizes[1:-1]]
    layers.append({"units": sizes[-1], "activation": out})
    return {"name": "bench-" + "-".join(map(str, sizes)), "inputs": sizes[0], "layers": layers, "loss": loss,
            "optimizer": {"name": "sgd", "learning_rate": LR}}


def generated_model(spec, folder: Path):
    d = derive(spec, verify=False)
    path = folder / f"{spec['name']}.py"
    path.write_text(codegen.numpy_model(d))
    module_spec = importlib.util.spec_from_file_location(spec["name"].replace("-", "_"), path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def data(sizes, batch, out, rng):
    X = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    if out == "softmax":
        T = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], size=batch)]
    else:
        T = rng.uniform(0.1, 0.9, size=(batch, sizes[-1])).astype(np.float32)
    return X, T


def make_generated(model, X, T):
    params = model.init_params(0, np.float32)
    state = model.init_state(params)
    ws = model.Workspace(X.shape[0], np.float32)

    def step():
        model.train_step(params, X, T, state, ws, LR)

    return step


def make_gemm(params, X):
    """The matrix products of one step alone, into preallocated outputs."""
    L = len([k for k in params if k.startswith("W")])
    W = [None] + [params[f"W{l}"] for l in range(1, L + 1)]
    batch = X.shape[0]
    A = [X] + [np.empty((batch, W[l].shape[0]), np.float32) for l in range(1, L + 1)]
    D = [None] + [np.empty((batch, W[l].shape[0]), np.float32) for l in range(1, L + 1)]
    G = [None] + [np.empty_like(W[l]) for l in range(1, L + 1)]
    rng = np.random.default_rng(0)
    for l in range(1, L + 1):
        D[l][...] = rng.normal(size=D[l].shape)

    def step():
        for l in range(1, L + 1):
            np.matmul(A[l - 1], W[l].T, out=A[l])
        for l in range(L, 0, -1):
            np.matmul(D[l].T, A[l - 1], out=G[l])
            if l > 1:
                np.matmul(D[l], W[l], out=D[l - 1])

    return step


def make_torch(params, X, T, hidden, out, loss):
    import torch

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tX, tT = torch.tensor(X), torch.tensor(T)
    L = len([k for k in params if k.startswith("W")])
    act = {"sigmoid": torch.sigmoid, "relu": torch.relu}[hidden]

    def step():
        a = tX
        for l in range(1, L + 1):
            z = torch.addmm(tp[f"b{l}"], a, tp[f"W{l}"].t())
            a = act(z) if l < L else z
        if out == "softmax":
            value = -(tT * torch.log_softmax(a, dim=1)).sum(dim=1).mean()
        else:
            value = (0.5 * (torch.sigmoid(a) - tT) ** 2).sum(dim=1).mean()
        value.backward()
        with torch.no_grad():
            for p in tp.values():
                p -= LR * p.grad
                p.grad = None

    return step


def make_jax(params, X, T, hidden, out, loss):
    import jax
    import jax.numpy as jnp

    L = len([k for k in params if k.startswith("W")])
    act = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}[hidden]

    def loss_fn(p, X, T):
        a = X
        for l in range(1, L + 1):
            z = a @ p[f"W{l}"].T + p[f"b{l}"]
            a = act(z) if l < L else z
        if out == "softmax":
            return -(T * jax.nn.log_softmax(a, axis=1)).sum(axis=1).mean()
        return (0.5 * (jax.nn.sigmoid(a) - T) ** 2).sum(axis=1).mean()

    def update(p, X, T):
        grads = jax.grad(loss_fn)(p, X, T)
        return jax.tree_util.tree_map(lambda w, g: w - LR * g, p, grads)

    update = jax.jit(update, donate_argnums=0)
    box = [{k: jnp.asarray(v) for k, v in params.items()}]
    jX, jT = jnp.asarray(X), jnp.asarray(T)

    def step():
        box[0] = update(box[0], jX, jT)
        jax.block_until_ready(box[0])

    return step


def timed(step, inner):
    start = time.perf_counter()
    for _ in range(inner):
        step()
    return (time.perf_counter() - start) / inner


def run(quick: bool):
    import jax
    import torch

    jax.config.update("jax_platforms", "cpu")
    threads = torch.get_num_threads()
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sizes, batch, hidden, out, loss in CONFIGS:
            model = generated_model(spec_of(sizes, hidden, out, loss), Path(tmp))
            X, T = data(sizes, batch, out, rng)
            params = model.init_params(0, np.float32)
            steps = {"generated": make_generated(model, X, T),
                     "torch": make_torch(params, X, T, hidden, out, loss),
                     "jax": make_jax(params, X, T, hidden, out, loss),
                     "gemm": make_gemm(params, X)}
            for step in steps.values():  # warm up (and compile)
                for _ in range(3):
                    step()
            one = max(timed(steps["torch"], 1), timed(steps["generated"], 1))
            inner = max(1, int(2e-3 / one))
            reps = (15 if quick else 41) if one > 1e-2 else (31 if quick else 201)
            samples = {name: [] for name in steps}
            for _ in range(reps):
                for name, step in steps.items():
                    samples[name].append(timed(step, inner))
            med = {name: statistics.median(values) for name, values in samples.items()}
            rows.append(("-".join(map(str, sizes)), batch, med))
            print(f"done {rows[-1][0]} (batch {batch})", file=sys.stderr, flush=True)
    print(f"\nOne SGD training step, float32, CPU ({os.cpu_count()} cores, torch threads {threads}); "
          "medians of interleaved repetitions, ratios to the generated code's time")
    print("| network | batch | generated | PyTorch eager / generated | JAX jit / generated | "
          "generated / faster framework | generated / GEMM-only |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for arch, batch, med in rows:
        g = med["generated"]
        print(f"| {arch} | {batch} | {g * 1e6:.0f} us | {med['torch'] / g:.2f} | {med['jax'] / g:.2f} | "
              f"{g / min(med['torch'], med['jax']):.2f} | {g / med['gemm']:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    run(parser.parse_args().quick)
