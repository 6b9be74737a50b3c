"""Mutation testing of the engine, the code printers and the claim diagnoses with mutmut.

Not part of CI (it takes tens of minutes).  Usage::

    pip install -e '.[mutation]'
    nice -n 10 python scripts/mutation.py --sample 210 --seed 17 --json out.json

What it does:

1. copies the repository's sources, tests, templates and examples into a scratch
   folder (``--workdir``), so the checkout is never touched and edits made while
   it runs do not disturb it;
2. lets mutmut generate every mutant of the target modules (:data:`GROUPS`);
3. draws a random sample per group (``--sample`` in all, split by :data:`SHARE`);
4. runs ``mutmut run`` on the sample only.  mutmut first records which tests call
   which function (one run of :data:`TESTS`, the fast targeted selection, without
   ``slow`` tests), then runs, for each mutant, only the tests that reach the
   mutated function, stopping at the first failure;
5. prints the kill rate per group and lists every survivor (``mutmut show NAME``
   in the work folder shows its diff), and writes the figures to ``--json``.

A mutant counts as killed when a test fails or it times out; "no tests"
(no selected test reaches the function) and "suspicious" count as survived.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

E = "symbackprop/engine/"
C = "symbackprop/codegen/"
GROUPS = {
    # everything of the engine that derives or checks; not graph.py (the forward graph only, reached by every
    # test anyway), not gradcheck.py (its source is copied into every generated test, where mutmut's trampolines
    # would break the generated code), not worked.py (the worked example of the documents, tested with them)
    "engine": [E + m + ".py" for m in ("derive", "general", "steps", "matrix", "matrixform", "numeric", "verify",
                                        "layergraph", "layerverify")],
    "printers": [C + m + ".py" for m in ("numpy_code", "array_api", "comments", "graph_code", "graph_xp")]
    + ["symbackprop/registry/stable.py"],
    # the diagnoses of wrong claims and the fixes they print: diagnose.py for dense nets, the repairs of layer
    # claims in layers.py, and the index repairs and true formula of checker.py (only these functions count)
    "diagnoses": ["symbackprop/claims/diagnose.py",
                  ("symbackprop/claims/layers.py::_terms,_join,_scaled,_replace,_kind_factors,candidates,"
                   "diagnose_layers"),
                  "symbackprop/claims/checker.py::_repair_indices,_conflicting_indices,true_formula"],
}
"""Target modules per group; ``path::f,g`` counts only the mutants of those functions of the module."""
SHARE = {"engine": 0.45, "printers": 0.30, "diagnoses": 0.25}

TESTS = [
    "tests/engine/test_general.py", "tests/engine/test_derive.py", "tests/engine/test_steps.py",
    "tests/engine/test_verify.py", "tests/engine/test_derive_pairs.py", "tests/engine/test_matrix.py",
    "tests/engine/test_layerverify.py", "tests/engine/test_layers_oracle.py",
    "tests/engine/test_oracle_autograd.py", "tests/engine/test_gradcheck.py",
    "tests/registry/test_ops.py", "tests/registry/test_stable.py", "tests/registry/test_stable_forms.py",
    "tests/codegen/test_codegen.py", "tests/codegen/test_codegen_xp.py", "tests/codegen/test_graph_code.py",
    "tests/codegen/test_graph_xp.py",
    "tests/claims/test_claims.py", "tests/claims/test_claims_corpus.py", "tests/claims/test_claims_fixes.py",
    "tests/claims/test_claims_diagnose.py", "tests/claims/test_claims_layers.py",
]
"""The targeted selection: fast tests of the three groups (``slow`` ones are deselected)."""

PYTEST_ARGS = ["-m", "not slow and not pdf", "-p", "no:cacheprovider",
               # the closed-form oracle takes minutes for softmax and SiLU nets: keep the cheap activations
               "--deselect",
               "tests/engine/test_derive_pairs.py::test_every_gradient_equals_sympy_diff_of_closed_form[softmax",
               "--deselect",
               "tests/engine/test_derive_pairs.py::test_every_gradient_equals_sympy_diff_of_closed_form[silu"]
PRELOAD = ["numpy", "sympy", "jinja2", "lark", "yaml", "pytest", "hypothesis"]

COPY = ["symbackprop", "tests", "templates", "examples", "benchmarks", "scripts", "generated", "docs",
        "pyproject.toml", "README.md"]

EMBEDDED = {"symbackprop/codegen/numpy_code.py": ["def fixed_point("]}
"""Functions whose source is copied verbatim into generated files (inspect.getsource): mutmut's trampolines
would land in the generated test_model.py, so they are left unmutated (``# pragma: no mutate block``)."""

KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def _file(entry: str) -> str:
    return entry.split("::")[0]


def function_of(mutant: str) -> str:
    """``...x_candidates__mutmut_3`` -> ``candidates``; ``...xǁMatrixFormǁbatch__mutmut_1`` -> ``batch``."""
    key = mutant.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]
    return key.split("ǁ")[-1] if key.startswith("xǁ") else key[2:]


def group_of(mutant: str) -> str | None:
    """``symbackprop.claims.diagnose.x_fix__mutmut_3`` -> ``diagnoses``."""
    for group, entries in GROUPS.items():
        for entry in entries:
            path, _, only = entry.partition("::")
            module = path[:-3].replace("/", ".") + "."
            if mutant.startswith(module) and (not only or function_of(mutant) in only.split(",")):
                return group
    return None


def prepare(work: Path, debug: bool = False) -> None:
    """A fresh copy of the repository with mutmut's configuration appended to pyproject.toml.

    An earlier ``mutants/`` folder is kept: mutmut regenerates only the files whose source changed.
    """
    work.mkdir(parents=True, exist_ok=True)
    for old in work.iterdir():
        if old.name != "mutants":
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, work / name)
    for path, heads in EMBEDDED.items():
        lines = (work / path).read_text(encoding="utf-8").split("\n")
        for i, line in enumerate(lines):
            if any(line.startswith(h) for h in heads):
                lines[i] = line + "  # pragma: no mutate block"
        (work / path).write_text("\n".join(lines), encoding="utf-8")
    tests = [t for t in TESTS if (ROOT / t).exists()]
    only = sorted({_file(f) for files in GROUPS.values() for f in files})
    with open(work / "pyproject.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[tool.mutmut]\n")
        fh.write('source_paths = ["symbackprop"]\n')
        fh.write(f"only_mutate = {json.dumps(only)}\n")
        fh.write(f"also_copy = {json.dumps([c for c in COPY if c not in ('symbackprop', 'tests')])}\n")
        fh.write(f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n")
        fh.write(f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS)}\n")
        fh.write("use_git_change_detection = false\n")
        fh.write(f"debug = {'true' if debug else 'false'}\n")
        # Workers fork from a server that has imported only third-party modules (PRELOAD), never from the
        # process that ran the stats: a cache filled there (functools.cache in general.py) would hide mutants.
        fh.write('process_isolation = "forkserver"\nforkserver_warmup = "import"\n')
        fh.write('preload_modules_file = "preload.txt"\n')
    (work / "preload.txt").write_text("\n".join(PRELOAD) + "\n")


def generate(work: Path) -> list[str]:
    """Let mutmut write every mutant of the target files; return their names."""
    code = ("import mutmut.__main__ as m\n"
            "m.makedirs(m.Path('mutants'), exist_ok=True)\n"
            "m.copy_src_dir(); m.copy_also_copy_files(); m.setup_source_paths()\n"
            "m.store_lines_covered_by_tests(); m.create_mutants(2)\n")
    subprocess.run([sys.executable, "-c", code], cwd=work, check=True, stdout=subprocess.DEVNULL)
    names = []
    for meta in sorted((work / "mutants").rglob("*.meta")):
        names += json.loads(meta.read_text())["exit_code_by_key"].keys()
    return sorted(n for n in names if group_of(n))


def results(work: Path) -> dict[str, str]:
    os.chdir(work)  # mutmut reads its configuration from the current folder on import
    from mutmut.__main__ import status_by_exit_code

    out = {}
    for meta in (work / "mutants").rglob("*.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if code is not None:
                out[name] = status_by_exit_code.get(code, f"exit {code}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=220, help="mutants to run in all (default 220)")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/symbackprop-mutation"))
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--debug", action="store_true", help="let mutmut show pytest's output")
    ap.add_argument("--rerun", type=Path, default=None,
                    help="a --json file of an earlier run: run its survivors again (after adding tests)")
    ap.add_argument("--reuse", action="store_true", help="keep the work folder and its results (report only)")
    args = ap.parse_args(argv)

    mutmut = Path(sys.executable).with_name("mutmut")
    start = time.time()
    if not args.reuse:
        prepare(args.workdir, args.debug)
    names = generate(args.workdir) if not args.reuse else sorted(n for n in results(args.workdir) if group_of(n))
    by_group = {g: [n for n in names if group_of(n) == g] for g in GROUPS}
    rng = random.Random(args.seed)
    sample = []
    for g, members in by_group.items():
        k = min(len(members), round(args.sample * SHARE[g]))
        sample += rng.sample(members, k)
    if args.rerun:
        earlier = json.loads(args.rerun.read_text())["groups"]
        again = [n for g in earlier.values() for n in g["survivors"] if n in names]
        print(f"running {len(again)} survivors of {args.rerun} again", flush=True)
    print(f"mutants: {len(names)} ({', '.join(f'{g} {len(m)}' for g, m in by_group.items())}); "
          f"sampled {len(sample)}", flush=True)
    if not args.reuse:
        subprocess.run([str(mutmut), "run", "--max-children", str(args.max_children),
                        *sorted(again if args.rerun else sample)], cwd=args.workdir, check=False)
    elapsed = time.time() - start

    status = results(args.workdir)
    figures = {"seconds": round(elapsed), "seed": args.seed, "groups": {}}
    for g in GROUPS:
        ran = [n for n in sample if group_of(n) == g and n in status]
        killed = [n for n in ran if status[n] in KILLED]
        survived = sorted(n for n in ran if status[n] not in KILLED)
        rate = len(killed) / len(ran) if ran else 0.0
        figures["groups"][g] = {"total": len(by_group[g]), "sampled": len(ran), "killed": len(killed),
                                "survived": len(survived), "kill_rate": round(rate, 3),
                                "survivors": {n: status[n] for n in survived}}
        print(f"{g:10s} sampled {len(ran):4d}  killed {len(killed):4d}  survived {len(survived):4d}  "
              f"kill rate {rate:.1%}")
        for n in survived:
            print(f"    {status[n]:12s} {n}")
    print(f"run time {elapsed / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
