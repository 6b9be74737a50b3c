"""Spec loading: formats, API forms, and malformed specs (one clear line, exit code 2)."""

import json
import subprocess
import sys

import pytest
import sympy as sp

from symbackprop import Network, SpecError, load
from symbackprop.cli import main

GOOD = {"inputs": 2, "layers": [{"units": 3, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
        "loss": "half_sse"}


def with_(**changes):
    spec = json.loads(json.dumps(GOOD))
    spec.update(changes)
    return spec


def layer0(**changes):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][0].update(changes)
    return spec


# (spec, text the error line must contain: the field)
BAD = [
    (layer0(activation="sigmod"), "layers[0].activation"),
    (layer0(activation="swish2"), "unknown activation"),
    (layer0(units=0), "layers[0].units"),
    (layer0(units=-3), "layers[0].units"),
    (layer0(units=2.5), "layers[0].units"),
    (layer0(units="three"), "layers[0].units"),
    (layer0(units=True), "layers[0].units"),
    (with_(layers=[{"units": 3, "activation": "softmax"}, {"units": 1, "activation": "sigmoid"}]),
     "softmax is allowed only in the output layer"),
    ({k: v for k, v in GOOD.items() if k != "loss"}, "loss"),
    (with_(loss="cross_entropy"), "unknown loss"),
    (with_(loss=3), "loss"),
    (with_(inputs="2"), "inputs"),
    ({k: v for k, v in GOOD.items() if k != "inputs"}, "inputs"),
    (with_(layers=[]), "layers"),
    (with_(layers={"units": 3}), "layers"),
    (with_(layers=[3, 1]), "layers[0]"),
    (layer0(activation={"expr": "x*sigmoid(x"}), "layers[0].activation.expr"),
    (layer0(activation={"expr": "__import__('os').system('touch /tmp/pwned')"}), "layers[0].activation.expr"),
    (layer0(activation={"expr": "x.__class__.__mro__"}), "layers[0].activation.expr"),
    (layer0(activation={"expr": "9**9**9**9"}), "layers[0].activation.expr"),
    (layer0(activation={"expr": "y*2"}), "layers[0].activation.expr"),
    (layer0(activation={"name": "leaky_relu", "beta": 2}), "layers[0].activation"),
    (layer0(bias="no"), "layers[0].bias"),
    (layer0(unit=3), "layers[0].unit"),
    (with_(inputs=10**9), "inputs"),
    (with_(layers=[{"units": 100000, "activation": "relu"}] * 3), "parameters"),
    (with_(layers=[{"units": 1, "activation": "identity"}], loss="binary_cross_entropy"), "loss"),
    (with_(layers=[{"units": 3, "activation": "sigmoid"}], loss="categorical_cross_entropy"), "loss"),
    (with_(optimizer={"name": "rmsprop"}), "optimizer.name"),
    (with_(optimizer={"name": "sgd", "learning_rate": -1}), "optimizer.learning_rate"),
    (with_(optimizer={"name": "momentum", "momentum": 1.5}), "optimizer.momentum"),
    (with_(notation={"profile": "bourbaki"}), "notation.profile"),
    (with_(notation={"loss": "\\input{/etc/passwd}"}), "notation.loss"),
    (with_(notation={"loss": "\\write18{rm -rf /}"}), "notation.loss"),
    (with_(name=""), "name"),
    (with_(colour="blue"), "colour"),
]


@pytest.mark.parametrize("spec,field", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_malformed_spec_gives_one_line_and_exit_2(refused, spec, field):
    assert field in refused(spec)


@pytest.mark.parametrize("text,suffix,field", [
    ("inputs: [2\nlayers: -", ".yaml", "invalid YAML"),
    ("inputs = ", ".toml", "invalid TOML"),
    ("{\"inputs\": 2,}", ".json", "invalid JSON"),
    ("inputs: 2", ".txt", "unknown spec format"),
    ("- 1\n- 2", ".yaml", "must be a mapping"),
])
def test_unreadable_files(tmp_path, capsys, text, suffix, field):
    path = tmp_path / f"spec{suffix}"
    path.write_text(text)
    assert main(["derive", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0]


def test_no_traceback_in_a_real_process(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("inputs: 2\nlayers:\n  - {units: 3, activation: sigmod}\nloss: half_sse\n")
    res = subprocess.run([sys.executable, "-m", "symbackprop", "derive", str(path)], capture_output=True, text=True, check=False)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1
    assert "did you mean 'sigmoid'" in res.stderr
    missing = subprocess.run([sys.executable, "-m", "symbackprop", "derive", str(tmp_path / "nope.yaml")],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_formats_and_api_forms_agree(tmp_path):
    yaml_path = tmp_path / "n.yaml"
    yaml_path.write_text("inputs: 2\nlayers:\n  - {units: 3, activation: sigmoid}\n"
                         "  - {units: 1, activation: sigmoid}\nloss: half_sse\n")
    toml_path = tmp_path / "n.toml"
    toml_path.write_text('inputs = 2\nloss = "half_sse"\n[[layers]]\nunits = 3\nactivation = "sigmoid"\n'
                         '[[layers]]\nunits = 1\nactivation = "sigmoid"\n')
    json_path = tmp_path / "n.json"
    json_path.write_text(json.dumps(GOOD))
    nets = [load(yaml_path), load(toml_path), load(json_path), load(GOOD)]
    assert all(n == nets[0] for n in nets)
    assert load(nets[0]) is nets[0] and isinstance(nets[0], Network)
    assert nets[0].parameter_count == 13 and nets[0].architecture == "2-3-1"


def test_activation_parameters_and_custom():
    net = load(with_(layers=[{"units": 2, "activation": {"name": "leaky_relu", "alpha": 0.2}},
                             {"units": 1, "activation": {"expr": "x*tanh(x) + sqrt(1 + x**2)"}, "bias": False}]))
    assert net.layers[0].activation.params[0][1] == sp.Rational(1, 5)
    assert net.layers[1].activation.name == "custom" and net.layers[1].bias is False


def test_network_built_in_python_is_validated():
    from symbackprop import Layer
    from symbackprop.registry import ops
    with pytest.raises(SpecError, match="softmax"):
        Network("n", 2, (Layer(2, ops.activation("softmax")), Layer(1, ops.activation("sigmoid"))),
                ops.LOSSES["half_sse"])
