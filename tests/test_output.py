"""Outputs: atomic writes, never over a user's file without --force, same spec -> same bytes."""

import json

import pytest

from symbackprop.cli import main
from symbackprop.errors import OutputError
from symbackprop.output import MANIFEST, write_atomic, write_outputs


def test_refuses_to_overwrite_a_user_file(tmp_path, capsys):
    (tmp_path / "gradients.txt").write_text("my notes")
    assert main(["derive", "--no-pdf", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0]
    assert (tmp_path / "gradients.txt").read_text() == "my notes"
    assert not (tmp_path / "gradients.json").exists()  # nothing written at all


def test_force_overwrites_and_regeneration_is_allowed(tmp_path):
    (tmp_path / "gradients.txt").write_text("my notes")
    assert main(["derive", "--no-pdf", "-o", str(tmp_path), "--force"]) == 0
    assert "dE/dW1_1_1" in (tmp_path / "gradients.txt").read_text()
    assert main(["derive", "--no-pdf", "-o", str(tmp_path)]) == 0  # its own files: fine


def test_edited_generated_file_is_protected(tmp_path):
    assert main(["derive", "--no-pdf", "-o", str(tmp_path)]) == 0
    (tmp_path / "gradients.txt").write_text("edited by hand")
    assert main(["derive", "--no-pdf", "-o", str(tmp_path)]) == 2
    assert (tmp_path / "gradients.txt").read_text() == "edited by hand"


def test_write_outputs_checks_everything_before_writing(tmp_path):
    (tmp_path / "b.txt").write_text("user")
    with pytest.raises(OutputError):
        write_outputs(tmp_path, {"a.txt": b"1", "b.txt": b"2"})
    assert not (tmp_path / "a.txt").exists()
    manifest = tmp_path / MANIFEST
    assert not manifest.exists()


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temp file left behind


def test_same_spec_same_bytes(tmp_path, examples):
    spec = str(examples[0])
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["derive", spec, "--no-pdf", "-o", str(a)]) == 0
    assert main(["derive", spec, "--no-pdf", "-o", str(b)]) == 0
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_json_output_is_complete(capsys):
    assert main(["derive", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["network"]["architecture"] == "2-3-1"
    assert len(data["gradients"]) == 13
    first = data["gradients"][0]
    assert first["parameter"] == "W1_1_1" and first["gradient"] == "delta1_1*x_1"
    assert {s["rule"] for s in first["steps"]} >= {"chain rule", "sum rule (only one term varies)",
                                                   "constant factor rule", "derivative of the activation"}
    assert data["verification"]["passed"] is True
    tiers = {t["name"]: t for t in data["verification"]["tiers"]}
    assert tiers["closed form"]["checked"] == tiers["closed form"]["equal"] == 4
    assert tiers["local"]["checked"] == tiers["local"]["equal"] > 0


def test_gradients_command_pretty_prints_every_parameter(capsys, monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).parent.parent)
    assert main(["gradients", "examples/classifier_4_5_3.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.count("∂E/∂") == 43
    assert "∂E/∂W⁽¹⁾₁,₁ = x₁⋅δ⁽¹⁾₁" in out  # delta1_1 * x_1, the textbook dE/dW = delta a^T
