"""``symbackprop check [SPEC] NOTES``: the seeds as written, profiles per section, exit codes, reports.

Expected lines are counted in the seed files by hand; verdicts of the seeds' formulas
are those of the textbook derivation (the seeds' own matrix equations are correct,
the Monash line 26 has the index typo w{i,j} for w_{j,k}).
"""

from __future__ import annotations

import json
from pathlib import Path

from symbackprop.claims.checker import Verdict
from symbackprop.claims.infer import Option
from symbackprop.claims.notes import auto_profile, check_notes, combine, items
from symbackprop.claims.sources import Notes, read_notes, scan
from symbackprop.cli import main
from symbackprop.engine.derive import derive

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed_2_3_1.yaml")
WIKI_NET = str(ROOT / "examples" / "claims" / "wikipedia_net.yaml")
NOTES0 = str(ROOT / "examples" / "notes" / "000_dd6527256766149b.txt")
NOTES1 = str(ROOT / "examples" / "notes" / "001_f9259761532919fe.txt")

# seed 000: the forward pass (line 8), output delta and gradients (10), hidden (12), updates (14)
SEED0_CHECKED_LINES = [8] * 5 + [10] * 3 + [12] * 3 + [14] * 4


def run_json(capsys, argv):
    code = main(argv + ["--json"])
    return code, json.loads(capsys.readouterr().out)


def test_seed_000_with_its_spec_all_correct(capsys):
    code, data = run_json(capsys, ["check", SEED, NOTES0])
    checked = [d for d in data if d["verdict"] != "skipped"]
    assert code == 0
    assert len(checked) >= 14
    assert [d["line"] for d in checked] == SEED0_CHECKED_LINES
    assert {d["verdict"] for d in checked} == {"correct"}, [d for d in checked if d["verdict"] != "correct"]
    skipped = [d for d in data if d["verdict"] == "skipped"]
    assert [d["line"] for d in skipped] == [6] * 9  # the notation list in the align of line 6
    assert all(d["note"] for d in skipped)


def test_seed_000_without_spec_gives_the_same_verdicts(capsys):
    _, with_spec = run_json(capsys, ["check", SEED, NOTES0])
    code, alone = run_json(capsys, ["check", NOTES0])
    assert code == 0
    assert [(d["line"], d["claim"], d["verdict"]) for d in alone] == \
        [(d["line"], d["claim"], d["verdict"]) for d in with_spec]


def test_seed_001_flags_exactly_the_monash_typo(capsys):
    code, data = run_json(capsys, ["check", WIKI_NET, NOTES1])
    assert code == 1
    wrong = [d for d in data if d["verdict"] == "incorrect"]
    assert [(d["line"], d["claim"]) for d in wrong] == [
        (26, r"w_{j,k} \leftarrow w{i,j} + \alpha \times a_i \times \Delta_j")]
    assert wrong[0]["expected"].startswith(r"w_{i,j} \leftarrow w_{i,j}")
    assert wrong[0]["counterexample"]["left"] != wrong[0]["counterexample"]["right"]
    assert not [d for d in data if d["verdict"] == "cannot-check"]
    lines = {d["line"] for d in data if d["verdict"] == "correct"}
    assert {22, 23, 25, 50, 56, 62, 66, 74, 78, 81} <= lines


def test_seed_001_profiles_per_section(capsys):
    _, data = run_json(capsys, ["check", WIKI_NET, NOTES1])
    profile = {d["section"]: d["profile"] for d in data}
    assert profile["Monash notes"] == "aima"
    assert profile["Derivation"] == "wikipedia"
    assert profile["Finding the derivative of the error"] == "wikipedia"
    main(["check", WIKI_NET, NOTES1])
    out = capsys.readouterr().out
    assert "-- section 'Monash notes': notation aima" in out
    assert "-- section 'Derivation': notation wikipedia" in out


def test_auto_profile_from_symbols():
    assert auto_profile([r"o_j = \varphi(net_j)"], "seed")[0] == "wikipedia"
    assert auto_profile([r"\Delta_j = g'(in_j) \sum_k w_{j,k} \Delta_k"], "seed")[0] == "aima"
    assert auto_profile([r"a^{(1)} = \sigma(z^{(1)})"], "aima")[0] == "seed"
    assert auto_profile(["x"], "aima") == ("aima", "no profile's symbols used")


def test_prose_condition_restricts_the_claims_after_it():
    notes = read_notes(NOTES1)
    scoped = {i.line: i.text for i in items(notes) if i.scope}
    assert set(scoped) == {77, 78, 81}
    assert all(t.endswith(r"\text{(output layer)}") for t in scoped.values())


def test_report_format_and_summary(capsys):
    assert main(["check", WIKI_NET, NOTES1]) == 1
    out = capsys.readouterr().out
    name = NOTES1
    assert f"{name}:26 ✗ w_{{j,k}} \\leftarrow w{{i,j}}" in out
    assert "    diagnosis: transposed or wrong index" in out
    assert "    fix:       w_{i,j} \\leftarrow w_{i,j}" in out
    assert f"{name}:22 ✓ \\Delta_k \\leftarrow (y_k - a_k)g'(in_k)" in out
    _, data = run_json(capsys, ["check", WIKI_NET, NOTES1])
    count = {k: sum(d["verdict"] == k for d in data) for k in ("correct", "incorrect", "skipped", "cannot-check")}
    assert count["incorrect"] == 1 and count["cannot-check"] == 0 and len(data) == 30
    assert out.rstrip().endswith(f"30 claims, {count['correct']} correct, 1 incorrect, {count['skipped']} skipped, "
                                 "0 cannot-check")
    main(["check", SEED, NOTES0])
    out = capsys.readouterr().out  # the notation list of line 6 is one report line
    assert f"{NOTES0}:6 - 9 rows: x, W^{{(1)}}, b^{{(1)}}, W^{{(2)}}" in out and out.count(":6 ") == 1


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


FORWARD = r"""# Net
$$z^{(1)} = W^{(1)}x + b^{(1)}$$
$$a^{(1)} = \sigma(z^{(1)})$$
$$z^{(2)} = W^{(2)}a^{(1)} + b^{(2)}$$
$$a^{(2)} = \sigma(z^{(2)})$$
"""


def test_wrong_claim_without_spec_is_incorrect(tmp_path, capsys):
    path = _write(tmp_path, "n.md", FORWARD + "$$\\delta^{(1)} = (W^{(2)})^T \\delta^{(2)}$$\n")  # sigma' missing
    code, data = run_json(capsys, ["check", path])
    assert code == 1
    assert [(d["line"], d["verdict"]) for d in data][-1] == (6, "incorrect")


def test_claim_that_depends_on_the_undefined_loss_cannot_be_checked(tmp_path, capsys):
    # true for half squared error, false for cross-entropy (whose output delta is a - y)
    path = _write(tmp_path, "n.md", FORWARD + "$$\\delta^{(2)} = (a^{(2)} - y) \\odot \\sigma'(z^{(2)})$$\n")
    code, data = run_json(capsys, ["check", path])
    assert code == 0
    last = data[-1]
    assert last["verdict"] == "cannot-check" and "do not define" in last["note"]
    code, data = run_json(capsys, ["check", path, "--strict"])
    assert code == 2


def test_a_loss_defined_in_the_notes_settles_the_claims_that_depend_on_it(tmp_path, capsys):
    claim = "$$\\delta^{(2)} = (a^{(2)} - y) \\odot \\sigma'(z^{(2)})$$\n"
    half = FORWARD + "$$L = \\frac12 \\sum_k (y_k - a^{(2)}_k)^2$$\n" + claim
    code, data = run_json(capsys, ["check", _write(tmp_path, "h.md", half)])
    assert code == 0 and [d["verdict"] for d in data][-2:] == ["correct", "correct"]
    bce = FORWARD + "$$L = -\\sum_k (y_k \\log a^{(2)}_k + (1 - y_k) \\log(1 - a^{(2)}_k))$$\n" + claim
    code, data = run_json(capsys, ["check", _write(tmp_path, "b.md", bce)])
    assert code == 1 and [d["verdict"] for d in data][-2:] == ["correct", "incorrect"]  # BCE: delta = a - y


def test_notes_without_network_exit_2_with_one_line(tmp_path, capsys):
    path = _write(tmp_path, "n.md", "Just prose and $$\\delta = y - t$$\n")
    assert main(["check", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symbackprop: error:") and err.count("\n") == 1
    assert "forward pass" in err and "SPEC" in err


def test_bad_inputs_exit_2(tmp_path, capsys):
    assert main(["check", SEED, str(tmp_path / "missing.md")]) == 2
    assert main(["check", str(tmp_path / "missing.yaml"), NOTES0]) == 2
    assert main(["check", SEED]) == 2
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(line.startswith("symbackprop: error:") for line in err.splitlines())


def test_claim_option_still_works(capsys):
    assert main(["check", SEED, "--claim", r"\frac{\partial E}{\partial W^{(2)}_{11}} = \delta^{(2)}_1 a^{(1)}_1"]) == 0
    assert main(["check", SEED, "--claim", r"\frac{\partial E}{\partial W^{(2)}_{11}} = a^{(1)}_1"]) == 1


def test_standard_input(monkeypatch, capsys):
    import io

    text = Path(NOTES0).read_text(encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8"))))
    code, data = run_json(capsys, ["check", SEED, "-"])
    assert code == 0 and [d["line"] for d in data if d["verdict"] == "correct"] == SEED0_CHECKED_LINES


def test_notebook_lines_and_cells(tmp_path, capsys):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": [line + "\n" for line in FORWARD.splitlines()]},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": ["delta = '$\\\\delta^{(2)} = 7$'\n"]},
             {"cell_type": "markdown", "metadata": {}, "source": ["Output layer:\n",
                                                                   "$$\\delta^{(2)} = a^{(2)} - y$$"]}]
    text = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)
    path = _write(tmp_path, "n.ipynb", text)
    code, data = run_json(capsys, ["check", SEED, path])
    file_line = next(i for i, s in enumerate(text.split("\n"), 1) if "a^{(2)} - y" in s)
    last = data[-1]
    assert (last["line"], last["cell"], last["cell_line"]) == (file_line, 3, 2)
    assert last["verdict"] == "incorrect" and code == 1  # sigma'(z) is missing (half squared error)
    assert len([d for d in data if "= 7" in d["claim"]]) == 0  # code cells are not read


def test_plain_claim_file_one_claim_per_line(tmp_path, capsys):
    path = _write(tmp_path, "c.txt", "# claims\ndE/dW2[1,1] = delta2[1]*a1[1]\n\ndE/dW2[1,1] = a1[1]\n")
    code, data = run_json(capsys, ["check", SEED, path])
    assert code == 1 and [(d["line"], d["verdict"]) for d in data] == [(2, "correct"), (4, "incorrect")]


def test_prose_without_formulas_reports_nothing(tmp_path, capsys):
    path = _write(tmp_path, "p.md", "Prose = prose\nand more prose\n")
    assert main(["check", SEED, path]) == 0
    captured = capsys.readouterr()
    assert "0 claims" in captured.out and "no formulas found" in captured.err


def _grid(rows):
    return [[Verdict("c", kind) for kind in row] for row in rows]


def test_combine_across_widths_and_open_choices():
    choices = [["loss A", "loss B"]] * 2
    assert combine(_grid([["correct", "correct"], ["correct", "correct"]]), choices).verdict == "correct"
    assert combine(_grid([["correct", "correct"], ["incorrect", "incorrect"]]), choices).verdict == "incorrect"
    mixed = combine(_grid([["correct", "incorrect"], ["correct", "incorrect"]]), choices)
    assert mixed.verdict == "cannot-check" and "correct with loss A, not with loss B" in mixed.reason
    assert combine(_grid([["correct", "cannot-check"], ["correct", "correct"]]), choices).verdict == "cannot-check"
    assert combine(_grid([["correct", "correct"], ["skipped", "skipped"]]), choices).verdict == "correct"
    # wrong at one width under one choice only, right under the other: depends on the choice
    assert combine(_grid([["correct", "correct"], ["incorrect", "correct"]]), choices).verdict == "cannot-check"


def test_a_note_is_shown_once_per_section(capsys):
    main(["check", WIKI_NET, NOTES1])
    out = capsys.readouterr().out
    assert out.count("note: read for the output layer only, as the prose before it says") == 1


def test_a_document_that_declares_its_profile_is_read_in_it():
    """symbackprop's documents end their summary with "Notation: the bishop profile."; in bishop,
    z is the activation and a the weighted sum, which the seed profile reads the other way round."""
    from symbackprop.claims.notes import declared_profile

    text = "A net. Notation: the bishop profile.\n\n## Forward\n\n$$z^{(1)}_{j} = h(a^{(1)}_{j})$$\n"
    assert declared_profile(text) == "bishop"
    assert declared_profile("Notation: the bishop profile. Notation: the aima profile.") is None
    assert declared_profile("Notation: the nosuch profile.") is None
    d = derive(str(Path(__file__).resolve().parents[2] / "examples" / "seed_2_3_1.yaml"), verify=False)
    declared, _ = check_notes(Notes("n.md", "markdown", text, scan(text, "markdown")),
                              [[Option(d, (), "the spec")]], "auto", "seed")
    undeclared = text.replace("Notation: the bishop profile.", "")
    seed, _ = check_notes(Notes("n.md", "markdown", undeclared, scan(undeclared, "markdown")),
                          [[Option(d, (), "the spec")]], "auto", "seed")
    assert [c.verdict.verdict for c in declared] == ["correct"]
    assert [c.verdict.verdict for c in seed] == ["incorrect"]
