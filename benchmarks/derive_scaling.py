"""Time derive with numeric verification against naive sympy.diff of the closed form.

Run: python benchmarks/derive_scaling.py [--naive-cap 60] [--only 2-3-1,4-8-3]

Each configuration runs in a fresh subprocess so that peak memory (ru_maxrss)
belongs to that configuration alone.  The naive baseline differentiates the
fully nested closed-form E with respect to every parameter, stopping at the cap.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CONFIGS = ["2-3-1", "4-8-3", "8-16-4", "16-32-10", "64-64-10", "784-128-10"]


def spec_for(arch: str) -> dict:
    sizes = [int(n) for n in arch.split("-")]
    return {"name": f"sigmoid-{arch}", "inputs": sizes[0],
            "layers": [{"units": n, "activation": "sigmoid"} for n in sizes[1:]], "loss": "half_sse"}


def child(arch: str, mode: str, cap: float) -> dict:
    import resource

    import sympy as sp

    from symbackprop import derive

    spec = spec_for(arch)
    if mode == "derive":
        # warm-up on a 1-1 identity net: imports and lambdify's first call, but no sigmoid templates
        derive({"inputs": 1, "layers": [{"units": 1, "activation": "identity"}], "loss": "half_sse"})
        start = time.perf_counter()
        d = derive(spec, verify="numeric")
        cold = time.perf_counter() - start
        start = time.perf_counter()
        derive(spec, verify="numeric")  # again in the same process: layer templates now cached
        out = {"seconds": cold, "warm": time.perf_counter() - start, "parameters": len(d.parameters),
               "passed": d.verification.passed, "symbolic": d.verification.symbolic_checked}
    else:
        sp.diff(sp.exp(sp.Symbol("u")) / (1 + sp.Symbol("u")), sp.Symbol("u"))  # warm-up
        start = time.perf_counter()
        d = derive(spec, verify=False)
        loss, done = d.loss, 0
        for p in d.parameters:
            sp.diff(loss, p)
            done += 1
            if time.perf_counter() - start > cap:
                break
        elapsed = time.perf_counter() - start
        out = {"seconds": elapsed, "done": done, "parameters": len(d.parameters),
               "capped": done < len(d.parameters)}
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run(arch: str, mode: str, cap: float) -> dict:
    cmd = [sys.executable, __file__, "--child", arch, mode, "--naive-cap", str(cap)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=cap + 60)
    except subprocess.TimeoutExpired:  # a single sympy.diff of the nested E can outlast the cap
        return {"seconds": cap + 60, "done": 0, "parameters": None, "capped": True, "peak_mb": float("nan")}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--naive-cap", type=float, default=60.0)
    ap.add_argument("--only", default=",".join(CONFIGS))
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.naive_cap)))
        return
    header = ("| net | parameters | derive + numeric verification (s) | again, templates cached (s) | us / parameter | "
              "peak MB | naive sympy.diff (s) | speed-up |")
    print(header)
    print("|" + "---|" * 8)
    for arch in args.only.split(","):
        ours = run(arch, "derive", args.naive_cap)
        naive = run(arch, "naive", args.naive_cap)
        n = ours["parameters"]
        if naive["capped"] and naive["done"] == 0:
            naive_txt = f"> {naive['seconds']:.0f} (not one parameter done)"
            speed = f"> {naive['seconds'] / ours['seconds']:.0f}x"
        elif naive["capped"]:
            est = naive["seconds"] / max(naive["done"], 1) * n
            naive_txt = f"> {args.naive_cap:.0f} (capped, {naive['done']}/{n} done; ~{est:.0f} extrapolated)"
            speed = f"> {args.naive_cap / ours['seconds']:.0f}x"
        else:
            naive_txt = f"{naive['seconds']:.2f}"
            speed = f"{naive['seconds'] / ours['seconds']:.0f}x"
        ok = "" if ours["passed"] else " (verification FAILED)"
        print(f"| {arch} | {n:,} | {ours['seconds']:.2f}{ok} | {ours['warm']:.2f} | {ours['seconds'] / n * 1e6:.0f} | "
              f"{ours['peak_mb']:.0f} | {naive_txt} | {speed} |", flush=True)


if __name__ == "__main__":
    main()
