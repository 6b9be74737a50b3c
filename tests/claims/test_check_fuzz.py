"""No traceback from any text: random and mutated notes through ``symbackprop check`` in-process.

Every run must end with a documented exit code (0, 1 or 2) and, on exit 2, one
``symbackprop: error:`` line; no exception may escape ``main``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbackprop.cli import main

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed_2_3_1.yaml")
SEEDS = [(ROOT / "examples" / "notes" / name).read_text(encoding="utf-8")
         for name in ("000_dd6527256766149b.txt", "001_f9259761532919fe.txt")]
TOKENS = ["$", "$$", "\\", "{", "}", "^", "_", "&", "\\\\", "=", "\\leftarrow", "\\frac", "\\partial", "\\sum",
          "\\begin{align*}", "\\end{align*}", "\\begin{aligned}", "\\end{equation}", "\\text{", "\\[", "\\]",
          "\\(", "\\)", "%", "#", "```", "\n", "δ", "σ′", "⊙", "∂", "Â", "â€™", "ğ‘—", "\x00", "\ufeff",
          "W^{(9)}", "\\delta^{(0)}", "z^{(1)} = W^{(1)}x", "a^{(3)} = \\sigma(z^{(3)})", "\\input{x}", "\\write18"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["delete", "duplicate", "token", "unicode"]))
        if kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 40)):]
        elif kind == "duplicate":
            text = text[:pos] + text[pos:pos + draw(st.integers(1, 40))] * 2 + text[pos + 1:]
        elif kind == "token":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        else:
            text = text[:pos] + draw(st.text(min_size=1, max_size=5)) + text[pos:]
    return text


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)


@st.composite
def notebooks(draw) -> str:
    if draw(st.booleans()):
        return json.dumps(draw(JSON))
    cells = draw(st.lists(st.fixed_dictionaries({
        "cell_type": st.sampled_from(["markdown", "code", "raw", 7]),
        "source": st.one_of(mutated().map(lambda t: t.splitlines(keepends=True)), mutated(), JSON)}), max_size=3))
    return json.dumps({"cells": cells, "nbformat": 4})


def _run(text: str, suffix: str, with_spec: bool, capsys, annotate: bool = False) -> None:
    handle, name = tempfile.mkstemp(suffix=suffix)
    marked = name + ".annotated" + suffix
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        argv = ["check"] + ([SEED] if with_spec else []) + [name, "--json"] + (["--annotate", marked] * annotate)
        code = main(argv)
        out, err = capsys.readouterr()
        assert code in (0, 1, 2), code
        if code == 2:
            assert err.startswith("symbackprop: error:"), err
        else:
            assert isinstance(json.loads(out), list)
    finally:
        os.unlink(name)
        if os.path.exists(marked):
            os.unlink(marked)


@pytest.mark.slow
@SETTINGS
@given(text=mutated(), suffix=st.sampled_from([".md", ".txt", ".tex"]), annotate=st.booleans())
def test_mutated_seed_notes_never_crash(text, suffix, annotate, capsys):
    _run(text, suffix, True, capsys, annotate)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=mutated())
def test_mutated_notes_without_spec_never_crash(text, capsys):
    _run(text, ".md", False, capsys)


@SETTINGS
@given(text=st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=80).map("".join),
       suffix=st.sampled_from([".md", ".tex"]))
def test_random_text_never_crashes(text, suffix, capsys):
    _run(text, suffix, True, capsys)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=notebooks())
def test_random_notebooks_never_crash(text, capsys):
    _run(text, ".ipynb", True, capsys, annotate=True)
