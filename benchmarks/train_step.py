"""One training step (forward, backward, SGD update) in float32: generated code vs frameworks.

    PYTHONPATH=. python benchmarks/train_step.py [--quick] [--runs 3] [--threads N]

Implementations, all in this one process and interleaved (each repetition times
every implementation once, in turn); the table reports medians and ratios:

* ``generated``: ``model.train_step`` of the NumPy target (``model.py``), on the parameters of
  its ``init_params`` (views of one flat vector, as ``train`` uses them; the SGD update is one
  subtraction), set to the same initial values as the others; on batches of at most
  ``model.FLOAT_STEP_ROWS`` rows (2-3-1 at batch 1) that is its SGD step on Python floats
  (``sgd_step_floats``), and the same model with ``FLOAT_STEP_ROWS = 0`` is timed as well (the
  "array step", on which the GEMM-only bound and the second Array API ratio are taken); where
  model.py has ``sgd_step_blas`` (SciPy installed, weights of ``FUSED_MIN_WEIGHTS`` or more),
  ``train_step`` runs its ``blas_trial`` during the warm-up and then the step it chose, and the
  same model held on its array step (``state["blas"] = False``) is timed as well;
* ``xp-numpy``: ``train_step`` of the Array API target (``model_xp.py``) on NumPy arrays;
* ``xp-torch``: the same ``model_xp.py`` on PyTorch CPU tensors (when torch is installed);
* ``torch``: PyTorch eager (CPU), autograd, ``p -= lr * p.grad``;
* ``jax``: ``jax.jit`` of value-and-grad plus the update (CPU, buffers donated);
* ``--gpu``: ``model_xp.py`` on PyTorch CUDA tensors and CuPy arrays against PyTorch's
  eager step on the same device (needs a CUDA device; untested where this was written);
* ``gemm``: a lower bound of ``generated``: exactly the matrix products of the
  generated step (same operands, layouts and ``out=`` buffers, bias sums included, ``np.matmul``
  into a Fortran-ordered ``out`` (a weight stored transposed, a feature-major layer) and
  ``np.dot`` otherwise, as the step), nothing else.

Every repetition starts each implementation from the same initial parameters
(restored untimed): without that, thousands of SGD steps on one fixed batch drift
each implementation into its own numerical regime (saturated softmax, dead ReLUs,
subnormal floats, which x86 handles slowly and JAX flushes to zero), so runs were
not comparable.  ``--runs`` repeats the whole table and reports, per configuration,
the worst run (the largest generated / faster-framework ratio).

Threads: ``--threads N`` (default 1; 0 keeps each library's default) sets every
library's thread count before it is imported.  With the defaults (OpenBLAS, PyTorch's
OpenMP and XLA each starting one thread per core) on a 2-core machine that other work
shares, OpenBLAS's threaded GEMM stalls: we measured the generated 784-128-10 step at
75 ms with two OpenBLAS threads against 0.47 ms with one, in the same minute.  That
oversubscription, not the generated code, made the 784-input rows swing between runs.
``--xla_cpu_multi_thread_eigen=false`` alone left JAX's step on about 1.7 cores (process
CPU time over wall time, measured with JAX 0.10); ``intra_op_parallelism_threads=N`` is
set as well, but JAX 0.10 still used about 1.8 cores with both, so ``--threads 1`` also pins
the process to one core (``os.sched_setaffinity``, where the OS has it) before any library loads.

Graph networks (``--graph`` times only these): ``784-256(bn)-256(bn, dropout)-10``, i.e.
dense 256 ReLU, batch normalization, dense 256 ReLU, batch normalization, dropout 0.5,
dense 10 softmax with categorical cross-entropy, at batch 256.  ``generated`` is
``model.train_step`` of :mod:`symbackprop.codegen.graph_code`'s NumPy target (on the parameters
of its ``init_params``, views of one flat vector, as for the dense networks); PyTorch eager
(``F.batch_norm`` in training mode) and ``jax.jit`` run the same step: the same fixed
dropout mask as an input, the running statistics updated with the spec's momentum, SGD
(PyTorch keeps the unbiased batch variance in its running statistics; the work is the same).
After one step from the same start the three agree to float32 rounding.

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


def _threads_from_argv() -> None:
    """--threads N (default 1) must act before NumPy, PyTorch and JAX start their thread pools."""
    n = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    if n != "0":
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = n
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                                   + ("false" if n == "1" else "true")
                                   + f" intra_op_parallelism_threads={n}").strip()
    if n == "1" and hasattr(os, "sched_setaffinity"):
        # the flags above leave JAX's step on about 1.8 cores (process CPU time over wall time,
        # JAX 0.10, 784-1024-1024-10); one core for the whole process is the one-thread rule
        # that every library obeys
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


_threads_from_argv()

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from symbackprop.codegen import array_api as codegen_xp
from symbackprop.codegen import graph_code as codegen_graph
from symbackprop.codegen import numpy_code as codegen
from symbackprop.engine.derive import derive
from symbackprop.engine.layergraph import LayerDerivation
from symbackprop.spec import load

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


_DERIVED = {}


def generated_model(spec, folder: Path, target: str = "numpy"):
    d = _DERIVED.get(spec["name"]) or _DERIVED.setdefault(spec["name"], derive(spec, verify=False))
    suffix = "" if target == "numpy" else "_xp"
    path = folder / f"{spec['name']}{suffix}.py"
    path.write_text(codegen.numpy_model(d) if target == "numpy" else codegen_xp.xp_model(d))
    module_spec = importlib.util.spec_from_file_location(spec["name"].replace("-", "_") + suffix, path)
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


class Impl:
    """One implementation: ``step()`` is timed; ``reset()`` (untimed) restores the initial parameters."""

    def __init__(self, step, reset):
        self.step, self.reset = step, reset


def make_generated(model, init, X, T, blas=None):
    """model.train_step; ``blas=False`` keeps it on the array step where it has sgd_step_blas."""
    params = model.init_params(0, np.float32)  # views of one flat vector: SGD is one subtraction
    for k, v in init.items():
        np.copyto(params[k], v)
    state = model.init_state(params)
    if blas is not None:
        state["blas"] = blas
    ws = model.Workspace(X.shape[0], np.float32)

    def step():
        model.train_step(params, X, T, state, ws, LR)

    def reset():
        for k, v in init.items():
            np.copyto(params[k], v)

    impl = Impl(step, reset)
    impl.model, impl.params, impl.ws, impl.state = model, params, ws, state
    return impl


def make_xp(model, init, X, T, library, device="cpu"):
    """model_xp.train_step on NumPy (through array-api-compat), PyTorch tensors or CuPy arrays."""
    sync = None
    if library == "torch":
        import torch

        def convert(a):
            return torch.asarray(a, device=device)

        sync = torch.cuda.synchronize if device != "cpu" else None
    elif library == "cupy":
        import cupy

        convert, sync = cupy.asarray, cupy.cuda.Device().synchronize
    else:
        convert = np.asarray
    start = {k: convert(v.copy()) for k, v in init.items()}
    tX, tT = convert(X), convert(T)
    box = [start, model.init_state(start)]

    def step():
        box[0], box[1] = model.train_step(box[0], tX, tT, box[1], LR)
        if sync is not None:
            sync()

    def reset():
        box[0] = start

    return Impl(step, reset)


def make_gemm(generated, X):
    """The generated step's matrix products alone: the same operands, layouts and out= buffers."""
    params, ws = generated.params, generated.ws
    L = len([k for k in params if k.startswith("W")])
    A = [X] + [getattr(ws, f"z{l}") for l in range(1, L + 1)]  # a_l has z_l's shape and layout
    D = [None] + [getattr(ws, f"delta{l}") for l in range(1, L + 1)]
    G = {k: np.empty_like(v) for k, v in params.items()}
    rng = np.random.default_rng(0)
    for l in range(1, L + 1):
        D[l][...] = rng.normal(size=D[l].shape)
    Z = [None] + [np.empty_like(A[l]) for l in range(1, L + 1)]
    Dn = [None] + [np.empty_like(D[l]) for l in range(1, L + 1)]

    def product(a, b, out):  # as the generated step: np.matmul into a Fortran-ordered out, np.dot otherwise
        (np.dot if out.flags.c_contiguous else np.matmul)(a, b, out=out)

    def step():
        for l in range(1, L + 1):
            product(A[l - 1], params[f"W{l}"].T, Z[l])
        for l in range(L, 0, -1):
            product(D[l].T, A[l - 1], G[f"W{l}"])
            if f"b{l}" in G:
                np.dot(ws.ones, D[l], out=G[f"b{l}"])
            if l > 1:
                product(D[l], params[f"W{l}"], Dn[l - 1])

    return Impl(step, lambda: None)


def make_torch(params, X, T, hidden, out, loss, device="cpu"):
    import torch

    tp = {k: torch.tensor(v, requires_grad=True, device=device) for k, v in params.items()}
    init = {k: torch.tensor(v, device=device) for k, v in params.items()}
    tX, tT = torch.tensor(X, device=device), torch.tensor(T, device=device)
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
        if device != "cpu":
            torch.cuda.synchronize()

    def reset():
        with torch.no_grad():
            for k, p in tp.items():
                p.copy_(init[k])

    return Impl(step, reset)


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

    def reset():  # the donated buffers are gone: fresh copies
        box[0] = {k: jnp.array(v) for k, v in params.items()}
        jax.block_until_ready(box[0])

    return Impl(step, reset)


def timed(step, inner):
    start = time.perf_counter()
    for _ in range(inner):
        step()
    return (time.perf_counter() - start) / inner


def subnormals(impl) -> int:
    """Subnormal entries in the generated step's activations and deltas (its workspace) now."""
    tiny = np.finfo(np.float32).tiny
    arrays = [v for v in vars(impl.ws).values() if isinstance(v, np.ndarray)]
    return int(sum(np.count_nonzero((np.abs(a) < tiny) & (a != 0)) for a in arrays))


def one_run(quick: bool, torch_ok: bool, rng) -> list:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sizes, batch, hidden, out, loss in CONFIGS:
            spec = spec_of(sizes, hidden, out, loss)
            model, model_xp = generated_model(spec, Path(tmp)), generated_model(spec, Path(tmp), "array-api")
            X, T = data(sizes, batch, out, rng)
            init = model.init_params(0, np.float32)
            impls = {"generated": make_generated(model, init, X, T),
                     "xp-numpy": make_xp(model_xp, init, X, T, "numpy")}
            if batch <= getattr(model, "FLOAT_STEP_ROWS", 0):  # the float step: time the array step too
                array_model = generated_model(spec, Path(tmp))
                array_model.FLOAT_STEP_ROWS = 0
                impls["generated-array"] = make_generated(array_model, init, X, T)
            elif getattr(model, "GEMM", None):  # sgd_step_blas where blas_trial picks it: the array step too
                impls["generated-array"] = make_generated(model, init, X, T, blas=False)
            array_step = impls.get("generated-array", impls["generated"])
            if torch_ok:
                impls["xp-torch"] = make_xp(model_xp, init, X, T, "torch")
                impls["torch"] = make_torch(init, X, T, hidden, out, loss)
            impls["jax"] = make_jax(init, X, T, hidden, out, loss)
            impls["gemm"] = make_gemm(array_step, X)
            for impl in impls.values():  # warm up (and compile)
                for _ in range(3):
                    impl.step()
                while getattr(impl, "state", {}).get("blas", False) is None:  # blas_trial: its first steps
                    impl.step()
                impl.reset()
            kind = ("float step" if "generated-array" in impls and impls["generated"].model is not array_step.model
                    else "SciPy-BLAS update" if impls["generated"].state.get("blas") else
                    "array step, blas_trial chose it" if "generated-array" in impls else None)
            # steps per sample: about 2 ms of the slower of generated and PyTorch, from the fastest of
            # 5 single steps (one cold step after the warm-up reset took over 2 ms, so that tiny
            # networks were timed one cold step per sample)
            slowest = max(min(timed(impls[name].step, 1) for _ in range(5))
                          for name in ("generated", "torch") if name in impls)
            inner = max(1, int(2e-3 / slowest))
            reps = (15 if quick else 41) if slowest > 1e-2 else (31 if quick else 151)
            samples = {name: [] for name in impls}
            worst_subnormals = 0
            for _ in range(reps):
                for name, impl in impls.items():
                    impl.reset()
                    samples[name].append(timed(impl.step, inner))
                worst_subnormals = max(worst_subnormals, subnormals(array_step))
            med = {name: statistics.median(values) for name, values in samples.items()}
            rows.append(("-".join(map(str, sizes)), batch, med, worst_subnormals, kind))
            print(f"done {rows[-1][0]} (batch {batch}, {inner} steps x {reps} repetitions)", file=sys.stderr, flush=True)
    return rows


def ratios(med: dict) -> dict:
    g = med["generated"]
    frameworks = [med[k] for k in ("torch", "jax") if k in med]
    a = med.get("generated-array", g)  # the array step: the float step does no matrix product
    out = {"generated_us": g * 1e6, "array_us": a * 1e6, "jax": med["jax"] / g, "faster": g / min(frameworks),
           "gemm": a / med["gemm"], "xp-numpy": med["xp-numpy"] / g, "xp-numpy-array": med["xp-numpy"] / a}
    if "torch" in med:
        out.update(torch=med["torch"] / g, **{"xp-torch": med["xp-torch"] / med["torch"]})
    return out


def run(quick: bool, runs: int, graph_only: bool = False):
    import jax

    try:
        import torch
        torch_ok = True
        threads = torch.get_num_threads()
    except ImportError:
        torch_ok, threads = False, "-"
    jax.config.update("jax_platforms", "cpu")
    if graph_only:
        graph_table(quick, runs, torch_ok)
        return
    rng = np.random.default_rng(0)
    all_runs = []
    for k in range(runs):
        print(f"run {k + 1} of {runs}", file=sys.stderr, flush=True)
        all_runs.append([ratios(med) | {"arch": arch, "batch": batch, "subnormals": sub, "kind": kind}
                         for arch, batch, med, sub, kind in one_run(quick, torch_ok, rng)])
    print(f"\nOne SGD training step, float32, CPU ({os.cpu_count()} cores, torch threads {threads}); medians of "
          f"interleaved repetitions, each from the same initial parameters; worst of {runs} run(s) "
          "(the run with the largest generated / faster framework; ᵃ: a run in which model.py's blas_trial kept "
          "the array step)")
    print("| network | batch | generated | PyTorch eager / generated | JAX jit / generated | "
          "generated / faster framework (each run) | array step / GEMM-only (≥ 1) | Array API on NumPy / generated "
          "(/ its array step) | Array API on PyTorch / PyTorch eager |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i in range(len(CONFIGS)):
        per_run = [r[i] for r in all_runs]
        w = max(per_run, key=lambda r: r["faster"])
        each = " / ".join(f"{r['faster']:.2f}" + ("ᵃ" if (r["kind"] or "").startswith("array") else "")
                          for r in per_run)  # ᵃ: blas_trial kept the array step in that run
        torch_cols = (f"{w['torch']:.2f}", f"{w['xp-torch']:.2f}") if "torch" in w else ("-", "-")
        step = f"{w['generated_us']:.0f} µs"
        xp = f"{w['xp-numpy']:.2f}"
        if w["kind"]:
            step += f" ({w['kind']}; array step {w['array_us']:.0f} µs)"
            xp += f" ({w['xp-numpy-array']:.2f})"
        print(f"| {w['arch']} | {w['batch']} | {step} | {torch_cols[0]} | {w['jax']:.2f} | "
              f"**{w['faster']:.2f}** ({each}) | {min(r['gemm'] for r in per_run):.2f} | {xp} | {torch_cols[1]} |")
    print(f"\nsubnormal entries in the generated step's activations and deltas (largest seen): "
          f"{max(r['subnormals'] for rs in all_runs for r in rs)}")
    graph_table(quick, runs, torch_ok)


# ----------------------------------------------------------------------------- graph networks

GRAPH_CONFIGS = [  # (label, spec layers, batch)
    ("784-256(bn)-256(bn, dropout)-10", [
        {"units": 256, "activation": "relu"}, {"type": "batchnorm"},
        {"units": 256, "activation": "relu"}, {"type": "batchnorm"}, {"type": "dropout", "rate": 0.5},
        {"units": 10, "activation": "softmax"}], 256),
]


def graph_spec(label, layers):
    return {"name": "bench-graph", "inputs": 784, "layers": layers, "loss": "categorical_cross_entropy",
            "optimizer": {"name": "sgd", "learning_rate": LR}}


def graph_model(spec, folder: Path):
    d = LayerDerivation(load(spec))
    path = folder / "bench_graph_model.py"
    path.write_text(codegen_graph.graph_model(d))
    module_spec = importlib.util.spec_from_file_location("bench_graph_model", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return d.network, module


def make_graph_generated(model, init, running0, X, T, masks):
    params = model.init_params(0, X.dtype)  # views of one flat vector, as train uses them: SGD is one subtraction
    for k, v in init.items():
        np.copyto(params[k], v)
    running = {k: v.copy() for k, v in running0.items()}
    state, ws = model.init_state(params), model.Workspace(X.shape[0], X.dtype)

    def step():
        model.train_step(params, X, T, masks, state, running, LR, ws)

    def reset():
        for k, v in init.items():
            np.copyto(params[k], v)
        for k, v in running0.items():
            running[k] = v.copy()

    return Impl(step, reset)


def make_graph_torch(net, init, running0, X, T, masks):
    """The same graph in PyTorch eager: addmm, F.batch_norm (training), the fixed mask, log_softmax."""
    import torch
    import torch.nn.functional as F

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    start = {k: torch.tensor(v) for k, v in init.items()}
    running = {k: torch.tensor(v) for k, v in running0.items()}
    tX, tT = torch.tensor(X), torch.tensor(T)
    tmasks = {k: torch.tensor(v) for k, v in masks.items()}

    def step():
        outs = [tX]
        for node in net.nodes:
            x, i, o = outs[node.inputs[0]], node.index, node.opts
            kind = node.kind.name
            if kind == "dense":
                y = torch.addmm(tp[f"b{i}"], x, tp[f"W{i}"].t())
                if node is not net.output:
                    y = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[o["activation"].name](y)
            elif kind == "batchnorm":
                y = F.batch_norm(x, running[f"mean{i}"], running[f"var{i}"], tp[f"gamma{i}"], tp[f"beta{i}"],
                                 training=True, momentum=1 - o["momentum"], eps=o["epsilon"])
            elif kind == "layernorm":
                y = F.layer_norm(x, (node.units,), tp[f"gamma{i}"], tp[f"beta{i}"], eps=o["epsilon"])
            elif kind == "dropout":
                y = x * tmasks[f"mask{i}"] / (1 - o["rate"])
            else:
                y = x + outs[node.inputs[1]]
            outs.append(y)
        value = -(tT * torch.log_softmax(outs[-1], dim=1)).sum(dim=1).mean()
        value.backward()
        with torch.no_grad():
            for p in tp.values():
                p -= LR * p.grad
                p.grad = None

    def reset():
        with torch.no_grad():
            for k, p in tp.items():
                p.copy_(start[k])
            for k, v in running0.items():
                running[k].copy_(torch.tensor(v))

    return Impl(step, reset)


def make_graph_jax(net, init, running0, X, T, masks):
    """The same graph under jax.jit: gradients, the running statistics and SGD in one compiled step."""
    import jax
    import jax.numpy as jnp

    def loss_fn(p, X, T, masks):
        outs, stats = [X], {}
        for node in net.nodes:
            x, i, o = outs[node.inputs[0]], node.index, node.opts
            kind = node.kind.name
            if kind == "dense":
                y = x @ p[f"W{i}"].T + p[f"b{i}"]
                if node is not net.output:
                    y = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[o["activation"].name](y)
            elif kind == "batchnorm":
                mu = x.mean(axis=0)
                var = ((x - mu) ** 2).mean(axis=0)
                stats[i] = (mu, var)
                y = p[f"gamma{i}"] * (x - mu) / jnp.sqrt(var + o["epsilon"]) + p[f"beta{i}"]
            elif kind == "layernorm":
                mu = x.mean(axis=1, keepdims=True)
                var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
                y = p[f"gamma{i}"] * (x - mu) / jnp.sqrt(var + o["epsilon"]) + p[f"beta{i}"]
            elif kind == "dropout":
                y = x * masks[f"mask{i}"] / (1 - o["rate"])
            else:
                y = x + outs[node.inputs[1]]
            outs.append(y)
        return -(T * jax.nn.log_softmax(outs[-1], axis=1)).sum(axis=1).mean(), stats

    momenta = {n.index: n.opts["momentum"] for n in net.nodes if n.kind.name == "batchnorm"}

    def update(p, r, X, T, masks):
        grads, stats = jax.grad(loss_fn, has_aux=True)(p, X, T, masks)
        r = dict(r)
        for i, (mu, var) in stats.items():
            m = momenta[i]
            r[f"mean{i}"] = m * r[f"mean{i}"] + (1 - m) * mu
            r[f"var{i}"] = m * r[f"var{i}"] + (1 - m) * var
        return jax.tree_util.tree_map(lambda w, g: w - LR * g, p, grads), r

    update = jax.jit(update, donate_argnums=(0, 1))
    box = [None, None]
    jX, jT = jnp.asarray(X), jnp.asarray(T)
    jmasks = {k: jnp.asarray(v) for k, v in masks.items()}

    def step():
        box[0], box[1] = update(box[0], box[1], jX, jT, jmasks)
        jax.block_until_ready(box[0])

    def reset():  # the donated buffers are gone: fresh copies
        box[0] = {k: jnp.array(v) for k, v in init.items()}
        box[1] = {k: jnp.array(v) for k, v in running0.items()}
        jax.block_until_ready(box[0])

    reset()
    return Impl(step, reset)


def one_graph_run(quick: bool, torch_ok: bool, rng) -> list:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, layers, batch in GRAPH_CONFIGS:
            net, model = graph_model(graph_spec(label, layers), Path(tmp))
            X, T = data((784, 10), batch, "softmax", rng)
            init, running0 = model.init_params(0, np.float32), model.init_running(np.float32)
            masks = model.draw_masks(np.random.default_rng(1), batch, np.float32)
            impls = {"generated": make_graph_generated(model, init, running0, X, T, masks)}
            if torch_ok:
                impls["torch"] = make_graph_torch(net, init, running0, X, T, masks)
            impls["jax"] = make_graph_jax(net, init, running0, X, T, masks)
            for impl in impls.values():  # warm up (and compile)
                for _ in range(3):
                    impl.step()
                impl.reset()
            slowest = max(min(timed(impl.step, 1) for _ in range(5)) for impl in impls.values())
            inner = max(1, int(2e-3 / slowest))
            reps = (15 if quick else 41) if slowest > 1e-2 else (31 if quick else 101)
            samples = {name: [] for name in impls}
            for _ in range(reps):
                for name, impl in impls.items():
                    impl.reset()
                    samples[name].append(timed(impl.step, inner))
            med = {name: statistics.median(values) for name, values in samples.items()}
            rows.append((label, batch, med))
            print(f"done {label} (batch {batch}, {inner} steps x {reps} repetitions)", file=sys.stderr, flush=True)
    return rows


def graph_table(quick: bool, runs: int, torch_ok: bool) -> None:
    """Times the generated step of each graph network against PyTorch eager and JAX jit; prints a table."""
    rng = np.random.default_rng(0)
    all_runs = [one_graph_run(quick, torch_ok, rng) for _ in range(runs)]
    print(f"\nGraph networks: one SGD step (batch normalization in training mode with running statistics, "
          f"a fixed dropout mask), float32, CPU; medians; worst of {runs} run(s)")
    print("| network | batch | generated | PyTorch eager / generated | JAX jit / generated | "
          "generated / faster framework (each run) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for i, (label, batch, _) in enumerate(all_runs[0]):
        per_run = []
        for rows in all_runs:
            med = rows[i][2]
            frameworks = [med[k] for k in ("torch", "jax") if k in med]
            per_run.append((med["generated"] / min(frameworks), med))
        worst, med = max(per_run, key=lambda r: r[0])
        torch_col = f"{med['torch'] / med['generated']:.2f}" if "torch" in med else "-"
        each = " / ".join(f"{r[0]:.2f}" for r in per_run)
        print(f"| {label} | {batch} | {med['generated'] * 1e6:.0f} µs | {torch_col} | "
              f"{med['jax'] / med['generated']:.2f} | **{worst:.2f}** ({each}) |")


def gpu_run(quick: bool):
    """--gpu: model_xp.py on PyTorch CUDA tensors and CuPy arrays against PyTorch's eager step on the device.

    Written for a machine with a CUDA device; none was available where this was built, so untested.
    """
    import torch

    if not torch.cuda.is_available():
        print("--gpu: no CUDA device here (torch.cuda.is_available() is False); nothing timed")
        return
    try:
        import cupy  # noqa: F401
        cupy_ok = True
    except ImportError:
        cupy_ok = False
    print(f"\nOne SGD training step, float32, {torch.cuda.get_device_name()}; medians; ratios to PyTorch eager")
    print("| network | batch | PyTorch eager | Array API on PyTorch CUDA / eager | Array API on CuPy / eager |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for sizes, batch, hidden, out, loss in CONFIGS:
            model_xp = generated_model(spec_of(sizes, hidden, out, loss), Path(tmp), "array-api")
            X, T = data(sizes, batch, out, rng)
            init = model_xp.init_params(0, np.float32)
            impls = {"torch": make_torch(init, X, T, hidden, out, loss, "cuda"),
                     "xp-torch": make_xp(model_xp, init, X, T, "torch", "cuda")}
            if cupy_ok:
                impls["xp-cupy"] = make_xp(model_xp, init, X, T, "cupy")
            samples = {name: [] for name in impls}
            for impl in impls.values():
                for _ in range(3):
                    impl.step()
            for _ in range(31 if quick else 101):
                for name, impl in impls.items():
                    impl.reset()
                    samples[name].append(timed(impl.step, 5))
            med = {name: statistics.median(v) for name, v in samples.items()}
            cupy_col = f"{med['xp-cupy'] / med['torch']:.2f}" if cupy_ok else "-"
            print(f"| {'-'.join(map(str, sizes))} | {batch} | {med['torch'] * 1e6:.0f} µs | "
                  f"{med['xp-torch'] / med['torch']:.2f} | {cupy_col} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--runs", type=int, default=3, help="whole tables; the worst is reported (default 3)")
    parser.add_argument("--gpu", action="store_true", help="time the Array API target on PyTorch CUDA and CuPy "
                        "against PyTorch eager on the same device (needs a CUDA device)")
    parser.add_argument("--graph", action="store_true", help="time only the graph networks (batch "
                        "normalization, dropout) against PyTorch eager and JAX jit")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of every library, set before they load (default 1; 0: each library's default)")
    args = parser.parse_args()
    if args.gpu:
        gpu_run(args.quick)
    else:
        run(args.quick, args.runs, args.graph)
