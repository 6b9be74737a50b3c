"""``symbackprop derive`` as a new user meets it: tiers, progress, early refusals, stale files, sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from symbackprop import cli, derive
from symbackprop.render.documents import tex_engine

ROOT = Path(__file__).resolve().parents[1]
SEED = str(ROOT / "examples" / "seed_2_3_1.yaml")
DEEP = """\
name: deep 5-6-4-3
inputs: 5
layers:
  - {units: 6, activation: relu}
  - {units: 4, activation: tanh}
  - {units: 3, activation: softmax}
loss: categorical_cross_entropy
"""


def _forbid_derivation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the derivation ran before the refusal")
    monkeypatch.setattr(cli, "derive", refuse)


def test_verify_modes_are_named_in_the_report(tmp_path, capsys):
    spec = tmp_path / "deep.yaml"
    spec.write_text(DEEP)
    assert cli.main(["derive", str(spec), "--verify", "auto"]) == 0
    out = capsys.readouterr().out
    assert "verification PASSED (--verify auto)" in out
    for tier in ("local:", "closed form:", "numeric:"):
        assert tier in out
    assert cli.main(["derive", SEED, "--verify", "numeric"]) == 0
    assert "local: not run" in capsys.readouterr().out
    assert cli.main(["derive", SEED, "--verify", "none"]) == 0
    assert "verification skipped" in capsys.readouterr().out


def test_foreign_file_is_refused_before_the_derivation(tmp_path, monkeypatch, capsys):
    (tmp_path / "model.py").write_text("# mine\n")
    _forbid_derivation(monkeypatch)
    assert cli.main(["derive", SEED, "-o", str(tmp_path)]) == 2
    assert "model.py exists and was not written by symbackprop" in capsys.readouterr().err
    assert (tmp_path / "model.py").read_text() == "# mine\n"


def test_pdf_without_tex_is_refused_before_the_derivation(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("symbackprop.render.documents.tex_engine", lambda: None)
    _forbid_derivation(monkeypatch)
    assert cli.main(["derive", SEED, "-o", str(tmp_path / "o"), "--pdf"]) == 2
    assert "--pdf needs pdflatex" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bad_spec_is_refused_before_the_folder_is_touched(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: 2\nlayers: [{units: 1, activation: sigmod}]\nloss: half_sse\n")
    assert cli.main(["derive", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "did you mean 'sigmoid'" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_rerun_removes_what_it_no_longer_writes(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli.main(["derive", SEED, "-o", str(out), "--verify", "none"]) == 0
    stale = out / "derivation.pdf"
    if not stale.exists():  # without TeX, plant an earlier run's PDF through the manifest
        from symbackprop.output import write_outputs
        write_outputs(out, {"derivation.pdf": b"%PDF old"})
    assert cli.main(["derive", SEED, "-o", str(out), "--verify", "none", "--no-pdf"]) == 0
    assert not stale.exists()
    assert "removed derivation.pdf" in capsys.readouterr().out
    manifest = json.loads((out / ".symbackprop-manifest.json").read_text())
    assert "derivation.pdf" not in manifest["files"]


def test_edited_stale_output_is_kept(tmp_path):
    from symbackprop.output import write_outputs
    write_outputs(tmp_path, {"a.txt": b"1", "b.txt": b"2"})
    (tmp_path / "b.txt").write_text("my edit")
    write_outputs(tmp_path, {"a.txt": b"1"})
    assert (tmp_path / "b.txt").read_text() == "my edit"


def test_no_progress_noise_when_stderr_is_not_a_terminal(tmp_path):
    spec = tmp_path / "deep.yaml"
    spec.write_text(DEEP)
    run = subprocess.run([sys.executable, "-m", "symbackprop", "derive", str(spec), "--json"],
                         check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0 and run.stderr == ""
    json.loads(run.stdout)
    run = subprocess.run([sys.executable, "-m", "symbackprop", "derive", SEED, "-o", str(tmp_path / "o")],
                         check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0
    assert "\r" not in run.stderr and "compiling" not in run.stderr and "stages" not in run.stderr
    no_tex = "note: derivation.pdf skipped, pdflatex is not installed (texlive-latex-base, texlive-pictures)\n"
    assert run.stderr in ("", no_tex)


def test_progress_is_shown_on_a_terminal(capsys, monkeypatch):
    from symbackprop.progress import Stages

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with Stages(3) as stage:
        stage("derive")
        stage("verify: numeric")
    err = capsys.readouterr().err
    assert "verify: numeric" in err
    with Stages(3, enabled=False) as stage:  # --json
        stage("derive")
    assert capsys.readouterr().err == ""


def test_big_net_lists_layers_not_parameters(tmp_path):
    spec = {"inputs": 30, "layers": [{"units": 20, "activation": "relu"}, {"units": 4, "activation": "softmax"}],
            "loss": "categorical_cross_entropy"}
    d = derive(spec, verify=False)
    data = d.as_dict()
    assert "gradients" not in data and len(data["layers"]) == 2
    first = data["layers"][0]
    assert first["weight"] == "dE/dW1[j, k] = delta1[j]*x[k]" and first["ranges"] == "j = 1..20, k = 1..30"
    assert [r["parameter"] for r in first["representatives"]] == ["W1_1_1", "W1_20_30", "b1_1"]
    every = d.as_dict(steps=False, per_weight="all")
    assert len(every["gradients"]) == len(d.parameters) == 30 * 20 + 20 + 20 * 4 + 4


def test_unknown_layer_key_names_what_is_supported(tmp_path, capsys):
    spec = tmp_path / "bn.yaml"
    spec.write_text("inputs: 2\nlayers:\n  - {units: 3, activation: relu, batchnorm: true}\n"
                    "  - {units: 1, activation: sigmoid}\nloss: half_sse\n")
    assert cli.main(["derive", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "units, activation, bias" in err and "README's 'Layer kinds'" in err
    assert "Layer kinds" in (ROOT / "README.md").read_text()


NASTY = 'net \\alpha "q" """ {x} 100% $5 #1 a_b & ~ ^ \u03b4'


def test_any_name_gives_clean_code_and_latex(tmp_path):
    spec = {"name": NASTY, "inputs": 2, "layers": [{"units": 2, "activation": "tanh"},
                                                   {"units": 1, "activation": "sigmoid"}], "loss": "half_sse"}
    from symbackprop.codegen import numpy_code as codegen
    from symbackprop.render import documents

    d = derive(spec, verify=False)
    for name, text in {"model.py": codegen.numpy_model(d), "test_model.py": codegen.generated_test(d),
                       "scalar.py": codegen.scalar_model(d)}.items():
        (tmp_path / name).write_text(text)
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "-q", str(tmp_path)],
                          check=False, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    compile(codegen.numpy_model(d), "model.py", "exec")
    source = documents.tex(d)
    if tex_engine() is not None:
        documents.compile_pdf(source)  # raises on a LaTeX error


def test_generated_test_counts_its_samples():
    from symbackprop.codegen import numpy_code as codegen

    text = codegen.generated_test(derive(SEED, verify=False))
    assert "a batch of 3 samples" in text


@pytest.mark.slow
def test_big_net_generated_test_is_small_and_passes(tmp_path):
    spec = {"inputs": 784, "layers": [{"units": 128, "activation": "relu"}, {"units": 10, "activation": "softmax"}],
            "loss": "categorical_cross_entropy"}
    out = tmp_path / "o"
    assert cli.main(["derive", json_spec(tmp_path, spec), "-o", str(out), "--no-pdf", "--verify", "none"]) == 0
    assert (out / "test_model.py").stat().st_size < 100_000
    assert (out / "gradients.json").stat().st_size < 100_000
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_model.py"],
                         check=False, cwd=out, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:]


def json_spec(folder: Path, spec: dict) -> str:
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


def test_repr_markdown_is_short_with_an_inline_diagram():
    d = derive(SEED)
    text = d._repr_markdown_()
    assert len(text) < 8000
    assert "data:image/svg+xml;base64," in text and "derivation.pdf`" not in text.split("](")[0]
    assert "Verification passed" in text and r"\delta^{(1)}" in text


def test_appendix_says_in_words_what_was_not_checked():
    from symbackprop.render import documents

    md = documents.markdown_appendix(derive(ROOT / "examples" / "deep_mixed.toml"))  # appendix.md
    appendix = md.split("## Appendix: verification")[1]
    assert "skipped: depth" not in appendix and "| equal |" not in appendix
    assert "not checked: the 5 other parameters of the layers covered" in appendix
    assert "the parameters of layers 1, 2: their closed forms nest up to 2 layers through 4 kinks" in appendix
