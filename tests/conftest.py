import fnmatch
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".yaml", ".yml", ".toml", ".json"))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def examples():
    return EXAMPLES


# ---------------------------------------------------------------------------------------------------------
# The fast default.  `pytest` (the README's test command) runs every test not marked `slow`; `pytest -m slow`
# runs the rest, and CI (.ci/run) runs both, so nothing is skipped there.  Besides the tests marked `slow` in
# place, these heavy parametrizations repeat, for every example, notation or depth, a check that the default
# already makes on a representative; the default keeps the representative and leaves the repeats to `-m slow`.
# Each entry: the test function's node id, and the parameter ids that stay in the fast default (fnmatch
# patterns on the id inside the brackets; an empty tuple moves the whole test to `slow`).
SLOW_REPEATS: dict[str, tuple[str, ...]] = {
    # closed-form oracle per activation/loss pair: depth 1 by default, depths 2 and 3 under -m slow
    "tests/engine/test_derive_pairs.py::test_every_gradient_equals_sympy_diff_of_closed_form": ("*-d1",),
    # byte-identical generated/: the seeds' net, a dense and a layer-graph example by default
    "tests/test_generated.py::test_generated_outputs_are_up_to_date": ("seed_2_3_1", "xor", "residual"),
    "tests/test_generated.py::test_committed_generated_tests_pass": (),
    "tests/test_output.py::test_same_spec_same_bytes": (),
    # documents read back by the checker: every notation of the seed net, both formats of two examples
    "tests/test_readback.py::test_markdown_in_each_notation_reads_back_correct": ("seed_2_3_1-*",),
    "tests/test_readback.py::test_latex_in_each_notation_reads_back_correct": ("seed_2_3_1-*",),
    "tests/test_readback.py::test_generated_document_reads_back_correct": ("seed_2_3_1-*", "batchnorm-*"),
    # random architectures against autograd-free finite differences: the first ten by default
    "tests/codegen/test_generated_random.py::test_random_architecture": tuple(str(i) for i in range(10)),
    # step-by-step algebra of every example: the seed net by default (core pairs cover the other losses)
    "tests/engine/test_steps.py::test_general_steps_of_the_examples": ("examples/seed_2_3_1*",),
    "tests/engine/test_steps.py::test_derivation_steps_of_the_examples": ("examples/seed_2_3_1*",),
    "tests/engine/test_derive.py::test_every_printed_step_is_a_true_equation": ("examples/seed_2_3_1*",),
    "tests/engine/test_general.py::test_general_form_agrees_at_two_widths": ("examples/seed_2_3_1*",),
    "tests/render/test_documents.py::test_examples_compile_to_pdf_with_ink_and_no_overfull_boxes": ("seed_2_3_1*",),
    # whole-corpus crash sweeps and generated stability scripts
    "tests/claims/test_claims_corpus.py::test_no_claim_crashes": (),
    "tests/claims/test_check_fuzz.py::test_random_notebooks_never_crash": (),
    "tests/registry/test_stable.py::test_generated_stability_test_runs_and_tells_the_truth": (),
    "tests/test_cli_derive.py::test_no_progress_noise_when_stderr_is_not_a_terminal": (),
}


def _kept(param: str, keep: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(param, pattern) for pattern in keep)


def pytest_collection_modifyitems(config, items):
    """Mark the repeats of SLOW_REPEATS `slow` (before `-m` deselects), so the default stays fast."""
    for item in items:
        base, _, param = item.nodeid.partition("[")
        keep = SLOW_REPEATS.get(base)
        if keep is not None and not _kept(param.rstrip("]"), keep):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def refused(tmp_path, capsys):
    """``refused(spec_dict)``: run ``symbackprop derive`` on the spec (as JSON) in-process, assert the refusal
    every bad input gets (exit 2, one line ``symbackprop: error: what is wrong; how to fix it``, no output
    folder written), and return that line."""
    import json

    from symbackprop.cli import main

    def run(spec: dict) -> str:
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(spec))
        out_dir = tmp_path / "out"
        assert main(["derive", str(path), "-o", str(out_dir)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("symbackprop: error: ")
        assert ";" in lines[0]  # what is wrong; how to fix it
        assert not out_dir.exists()
        return lines[0]

    return run
