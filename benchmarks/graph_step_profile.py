"""Where the generated graph training step spends its time: each statement of step_gradients, timed.

    python benchmarks/graph_step_profile.py [--reps 201] [--rotation] [--copies]

The network, batch, data and masks are those of ``train_step.py --graph`` (784-256(bn)-256(bn,
dropout)-10 at batch 256, float32), with its thread settings (one thread per library, the process
pinned to one core; it imports ``train_step``).  Each repetition restores the initial parameters,
runs every top-level statement of the generated ``step_gradients`` in turn (in the module's
namespace, each timed on its own) and then the SGD update of ``train_step``; the table lists the
median of each statement, in code order, and the sums of the matrix products and of the rest.
``--rotation`` runs one PyTorch eager and one JAX jit step (those of ``train_step.py``) before
each repetition, as the benchmark's interleaving does, so that the caches hold what they hold there.
``--copies`` uses C-ordered copies of the parameters (``train_step.py --graph`` as of this writing)
instead of ``init_params``' arrays (views of one flat vector, ``W1`` stored transposed).  Timing
each statement separately adds about a microsecond per statement.
"""

import argparse
import ast
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import train_step as bench


def statements(path: Path) -> list[tuple[str, object]]:
    """(first line, compiled code) of each top-level statement of step_gradients, without its return."""
    source = path.read_text()
    fn = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "step_gradients")
    body = [s for s in fn.body[1:] if not isinstance(s, ast.Return)]
    return [(ast.get_source_segment(source, s).splitlines()[0], compile(ast.Module([s], []), path.name, "exec"))
            for s in body]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=201)
    parser.add_argument("--rotation", action="store_true", help="a PyTorch and a JAX step before each repetition")
    parser.add_argument("--copies", action="store_true", help="C-ordered copies of the parameters")
    args = parser.parse_args()
    label, layers, batch = bench.GRAPH_CONFIGS[0]
    with tempfile.TemporaryDirectory() as tmp:
        net, model = bench.graph_model(bench.graph_spec(label, layers), Path(tmp))
        code = statements(Path(tmp) / "bench_graph_model.py")
    X, T = bench.data((784, 10), batch, "softmax", np.random.default_rng(0))
    init, running0 = model.init_params(0, np.float32), model.init_running(np.float32)
    masks = model.draw_masks(np.random.default_rng(1), batch, np.float32)
    params = {k: v.copy() for k, v in init.items()} if args.copies else model.init_params(0, np.float32)
    running = {k: v.copy() for k, v in running0.items()}
    state, ws = model.init_state(params), model.Workspace(batch, np.float32)
    flat = state["flat"] is not None
    update = ("theta, step, _ = state['flat']\ntheta -= step" if flat else
              "for key, step in grads.items():\n    params[key] -= step")
    code.append(("SGD update (train_step)" + (": one subtraction" if flat else ": one per array"),
                 compile(update, "update", "exec")))
    namespace = dict(vars(model), params=params, X=X, T=T, masks=masks, running=running, ws=ws,
                     scale=bench.LR, grads=state["grads"], state=state)
    others = []
    if args.rotation:
        others = [bench.make_graph_jax(net, init, running0, X, T, masks)]
        try:
            others.insert(0, bench.make_graph_torch(net, init, running0, X, T, masks))
        except ImportError:
            pass
    samples = [[] for _ in code]
    for rep in range(args.reps + 3):  # three warm-up repetitions
        for other in others:
            other.reset()
            other.step()
        for key, value in init.items():
            np.copyto(params[key], value)
        for k, (_, compiled) in enumerate(code):
            start = time.perf_counter()
            exec(compiled, namespace)  # noqa: S102  (generated code of this repository, not user text)
            if rep >= 3:
                samples[k].append(time.perf_counter() - start)
    medians = [statistics.median(s) * 1e6 for s in samples]
    products = sum(m for m, (line, _) in zip(medians, code) if "matmul(" in line)
    print(f"step_gradients of {label}, batch {batch}, float32; median µs of {args.reps} repetitions"
          f"{', after a PyTorch and a JAX step each' if others else ''}; "
          f"parameters: {'copies' if args.copies else 'init_params (flat, W1 transposed)'}")
    for med, (line, _) in zip(medians, code):
        print(f"{med:8.1f}  {line.strip()}")
    print(f"{sum(medians):8.1f}  total: {products:.0f} in matrix products, {sum(medians) - products:.0f} in the rest")


if __name__ == "__main__":
    main()
