"""Every formula a generated document prints, read back and judged by ``symbackprop check``.

The documents (``symbackprop.render.documents``) and the claim checker (``symbackprop.claims``) test
each other: each document is checked against its own spec, and every formula the checker reads
must come back correct -- forward pass, deltas, gradients, matrix and batch form, update rules,
hyper-parameters.  The truth the checker compares with is the derivation's numbers at random
points and finite differences of the forward pass (``claims.evaluate``), not the document's
text, so a wrong printed formula and a wrong judgement cannot both pass.

The graph examples (batchnorm, dropout, layernorm, residual, weight_decay, mixed_layers) are read by
``claims.graphclaims``: their truth is the spec's whole network at batch sizes 3 and 4 (the engine's
forward and gradients, finite differences), and their hyper-parameters (``B = 8``, ``\\lambda``,
``\\alpha``) are compared with the spec's values.

Formulas the checker cannot read (``cannot-check``) are recorded per example, notation and
format in ``tests/data/readback_cannot_check.json``; the list may only shrink: a formula that
becomes unreadable fails the test.  After the checker learns to read more, rewrite the list
with ``python tests/test_readback.py`` (it only ever records what is unreadable now).

The generated documents in ``generated/`` (seed notation; the Markdown's appendix is the companion
``appendix.md``, checked on its own) are checked through the command line, as a user would; the other notation profiles are rendered
from ``derive(spec, verify=False)`` (the Markdown with its appendix) and checked with the notes pipeline in ``--notation auto``, the
command line's default, which takes the profile the document declares ("Notation: the bishop profile").
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from functools import cache
from pathlib import Path

import pytest

from symbackprop import cli
from symbackprop.claims.infer import Option
from symbackprop.claims.notes import check_notes
from symbackprop.claims.sources import Notes, scan
from symbackprop.engine.derive import derive
from symbackprop.render import documents

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".yaml", ".toml"))
NOTATIONS = ("seed", "wikipedia", "aima", "bishop")
RECORD = ROOT / "tests" / "data" / "readback_cannot_check.json"
MIN_CORRECT = 20


@cache
def _derivation(example: Path):
    return derive(str(example), verify=False)


def _recorded() -> dict[str, list[str]]:
    return json.loads(RECORD.read_text(encoding="utf-8"))


def _check_rendered(example: Path, notation: str, fmt: str) -> list:
    """The verdicts on the document of ``example`` in ``notation`` (``md`` or ``tex``)."""
    d = _derivation(example)
    if fmt == "md":  # the Markdown document is derivation.md and its companion appendix.md, read as one
        text = documents.markdown(d, notation) + "\n\n" + (documents.markdown_appendix(d, notation) or "")
    else:
        text = documents.tex(d, notation)
    kind = "markdown" if fmt == "md" else "latex"
    notes = Notes(f"derivation.{fmt}", kind, text, scan(text, kind))
    checked, profiles = check_notes(notes, [[Option(d, (), "the spec")]], "auto", "seed")
    assert all(p.startswith(notation) for p in profiles.values()), profiles
    return [c.verdict.as_dict() | {"line": c.line} for c in checked]


def _assert_read_back(key: str, verdicts: list[dict]) -> None:
    wrong = [f"line {v['line']}: {v['claim']}  ({v['diagnosis']})" for v in verdicts if v["verdict"] == "incorrect"]
    assert not wrong, f"{key}: the checker judges printed formulas wrong (fix the document or the checker):\n" \
        + "\n".join(wrong)
    unreadable = {v["claim"] for v in verdicts if v["verdict"] == "cannot-check"}
    new = sorted(unreadable - set(_recorded().get(key, [])))
    assert not new, f"{key}: formulas that the checker can no longer read (the list may only shrink):\n" \
        + "\n".join(new)
    correct = sum(v["verdict"] == "correct" for v in verdicts)
    assert correct >= MIN_CORRECT, f"{key}: only {correct} formulas checked correct"


def _generated(example: Path) -> Path:
    return ROOT / "generated" / example.stem


@pytest.mark.parametrize("fmt", ["md", "tex"])
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_generated_document_reads_back_correct(example, fmt, capsys):
    """``symbackprop check SPEC generated/NAME/derivation.md`` exits 0 with at least 20 correct."""
    path = _generated(example) / f"derivation.{fmt}"
    code = cli.main(["check", str(example), str(path), "--json"])
    verdicts = json.loads(capsys.readouterr().out)
    _assert_read_back(f"{example.stem}/generated/{fmt}", verdicts)
    assert code == 0


@pytest.mark.parametrize("example", [e for e in EXAMPLES if (_generated(e) / "appendix.md").exists()],
                         ids=lambda p: p.stem)
def test_generated_markdown_appendix_reads_back_correct(example, capsys):
    """``symbackprop check SPEC generated/NAME/appendix.md`` (the Markdown's notation table, batch form and
    verification details) exits 0, with no formula judged incorrect and at least 10 correct."""
    code = cli.main(["check", str(example), str(_generated(example) / "appendix.md"), "--json"])
    verdicts = json.loads(capsys.readouterr().out)
    assert not [v["claim"] for v in verdicts if v["verdict"] != "correct"], verdicts
    assert sum(v["verdict"] == "correct" for v in verdicts) >= 10 and code == 0


@pytest.mark.parametrize("notation", NOTATIONS[1:])
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_markdown_in_each_notation_reads_back_correct(example, notation):
    """The Markdown document in the wikipedia, aima and bishop profiles, checked in the profile it declares."""
    _assert_read_back(f"{example.stem}/{notation}/md", _check_rendered(example, notation, "md"))


@pytest.mark.slow
@pytest.mark.parametrize("notation", NOTATIONS[1:])
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_latex_in_each_notation_reads_back_correct(example, notation):
    """The LaTeX document in the wikipedia, aima and bishop profiles, checked in the profile it declares."""
    _assert_read_back(f"{example.stem}/{notation}/tex", _check_rendered(example, notation, "tex"))


def test_a_wrong_printed_formula_is_caught():
    """The read-back is not vacuous: one printed gradient with its transpose dropped is judged incorrect."""
    example = ROOT / "examples" / "seed_2_3_1.yaml"
    d = _derivation(example)
    text = documents.markdown(d, "seed")
    good = r"\frac{\partial L}{\partial W^{(2)}} &= \delta^{(2)} a^{(1)T}"
    assert good in text
    bad = text.replace(good, r"\frac{\partial L}{\partial W^{(2)}} &= a^{(1)} \delta^{(2)T}")
    notes = Notes("derivation.md", "markdown", bad, scan(bad, "markdown"))
    checked, _ = check_notes(notes, [[Option(d, (), "the spec")]], "seed", "seed")
    wrong = [c.verdict.claim for c in checked if c.verdict.verdict == "incorrect"]
    copies = text.count(good)  # page one's summary and the matrix-form section: each copy is caught
    assert copies >= 1 and wrong == [r"\frac{\partial L}{\partial W^{(2)}} = a^{(1)} \delta^{(2)T}"] * copies


def _graph_notes(text: str):
    return Notes("derivation.md", "markdown", text, scan(text, "markdown"))


def test_a_wrong_batchnorm_compact_form_is_caught():
    """A graph document's batch-norm compact form with its -sum_b g_bj term dropped is judged incorrect
    (truth: the spec's network, finite differences of its forward), and only that formula."""
    example = ROOT / "examples" / "batchnorm.yaml"
    d = _derivation(example)
    text = documents.markdown(d, "seed")
    good = (r"g^{(1)}_{ij} &= \frac{\gamma^{(2)}_j}{B \hat{\sigma}_j} \left(B \, g^{(2)}_{ij} - \sum_{b=1}^{B} "
            r"g^{(2)}_{bj} - \hat{x}_{ij}")
    assert good in text
    bad = text.replace(good, good.replace(r" - \sum_{b=1}^{B} g^{(2)}_{bj}", "", 1), 1)
    checked, _ = check_notes(_graph_notes(bad), [[Option(d, (), "the spec")]], "seed", "seed")
    wrong = [c.verdict.claim for c in checked if c.verdict.verdict == "incorrect"]
    assert len(wrong) == 1 and wrong[0].startswith("g^{(1)}_{ij} = ") and r"\sum_{b=1}^{B} g^{(2)}_{bj} -" \
        not in wrong[0], wrong


def test_a_wrong_relu_derivative_in_a_graph_document_is_caught():
    """ReLU' printed as two cases (the graph documents' form) is read; with the cases swapped it is incorrect."""
    d = _derivation(ROOT / "examples" / "batchnorm.yaml")
    text = documents.markdown(d, "seed")
    good = r"\begin{cases} 1 & z^{(1)}_{ij} > 0 \\ 0 & z^{(1)}_{ij} \le 0 \end{cases}"
    assert good in text
    bad = text.replace(good, r"\begin{cases} 0 & z^{(1)}_{ij} > 0 \\ 1 & z^{(1)}_{ij} \le 0 \end{cases}")
    checked, _ = check_notes(_graph_notes(bad), [[Option(d, (), "the spec")]], "seed", "seed")
    wrong = [c.verdict.claim for c in checked if c.verdict.verdict == "incorrect"]
    assert wrong and all(w.startswith(r"\operatorname{ReLU}'") for w in wrong), wrong


def test_graph_hyper_parameters_are_judged_against_the_spec():
    """``B``, ``\\lambda``, ``\\alpha``, ``\\epsilon``, ``p`` as printed are compared with the spec's values
    (examples/mixed_layers.yaml: batch_size 32 by default, l2 1e-4, learning rate 0.1, epsilon 1e-5, rate 0.5),
    never with the random scenes; a wrong value is incorrect and the fix names the spec's value."""
    d = _derivation(ROOT / "examples" / "mixed_layers.yaml")
    claims = [r"B = 32", r"\lambda = 0.0001", r"\alpha = 0.1", r"\epsilon = 1 \times 10^{-5}", r"p = 0.5",
              r"n_{1} = 5", r"B = 8", r"\lambda = 0.001", r"p = 0.25"]
    text = "# Settings\n\n" + "".join(f"$${c}$$\n\n" for c in claims)
    checked, _ = check_notes(_graph_notes(text), [[Option(d, (), "the spec")]], "seed", "seed")
    assert [c.verdict.verdict for c in checked] == ["correct"] * 6 + ["incorrect"] * 3
    assert [c.verdict.expected for c in checked[6:]] == ["B = 32", r"\lambda = 0.0001", "p = 0.5"]


def _record() -> None:  # pragma: no cover - run by hand: python tests/test_readback.py
    out: dict[str, list[str]] = {}
    for example in EXAMPLES:
        for fmt in ("md", "tex"):
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                cli.main(["check", str(example), str(_generated(example) / f"derivation.{fmt}"), "--json"])
            out[f"{example.stem}/generated/{fmt}"] = sorted({v["claim"] for v in json.loads(buffer.getvalue())
                                                             if v["verdict"] == "cannot-check"})
        for notation in NOTATIONS[1:]:
            for fmt in ("md", "tex"):
                verdicts = _check_rendered(example, notation, fmt)
                out[f"{example.stem}/{notation}/{fmt}"] = sorted({v["claim"] for v in verdicts
                                                                  if v["verdict"] == "cannot-check"})
    RECORD.write_text(json.dumps(out, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_record())


def test_piecewise_relu_in_a_document_is_checked_both_ways():
    """ReLU's derivative printed as SymPy's two cases is read ([z > 0]) and judged, right and wrong."""
    d = _derivation(ROOT / "examples" / "deep_mixed.toml")
    right = r"\frac{\partial a^{(1)}_{1}}{\partial z^{(1)}_{1}} = \begin{cases} 0 & \text{for}\: z^{(1)}_{1} \leq 0 \\1 & \text{otherwise} \end{cases}"
    wrong = right.replace(r"\leq 0", "> 0")
    text = f"# ReLU\n\n$$\n{right}\n$$\n\n$$\n{wrong}\n$$\n"
    checked, _ = check_notes(Notes("n.md", "markdown", text, scan(text, "markdown")),
                             [[Option(d, (), "the spec")]], "seed", "seed")
    assert [c.verdict.verdict for c in checked] == ["correct", "incorrect"]
