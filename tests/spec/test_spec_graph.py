"""Specs with layer kinds (spec.graph): bad ones refused up front, good ones read as the issue writes them.

Refusals go through the CLI: exit code 2, one stderr line ``symbackprop: error: ...``
that names the field and the fix, no traceback, and nothing of the user's touched.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from symbackprop import SpecError
from symbackprop.cli import main
from symbackprop.engine.layergraph import LayerDerivation
from symbackprop.spec import Network, load
from symbackprop.spec.graph import GraphNetwork

# The issue's mixed spec, as printed there (comments included).
ISSUE_YAML = """\
inputs: 4
layers:
  - {units: 5, activation: relu}                 # dense, as today (type: dense is implied)
  - {type: batchnorm, epsilon: 1.0e-5}           # gamma, beta per unit; training-mode batch statistics
  - {type: dropout, rate: 0.5}                   # inverted dropout; the mask is an input of the step
  - {units: 5, activation: tanh}
  - {type: layernorm, epsilon: 1.0e-5}           # per-sample statistics over units
  - {type: residual, from: 1}                    # adds layer 1's output to the previous layer's output
  - {units: 3, activation: softmax}
loss: categorical_cross_entropy
regularization: {l2: 1.0e-4}                     # adds (lambda/2) sum W^2 to the loss; biases excluded
"""

MIX = {"inputs": 4, "layers": [
    {"units": 5, "activation": "relu"}, {"type": "batchnorm", "epsilon": 1e-5}, {"type": "dropout", "rate": 0.5},
    {"units": 5, "activation": "tanh"}, {"type": "layernorm", "epsilon": 1e-5}, {"type": "residual", "from": 1},
    {"units": 3, "activation": "softmax"}], "loss": "categorical_cross_entropy", "regularization": {"l2": 1e-4}}


def layer(i, **item):
    spec = copy.deepcopy(MIX)
    spec["layers"][i] = item
    return spec


def top(**changes):
    spec = copy.deepcopy(MIX)
    spec.update(changes)
    return spec


def small(*layers, inputs=4, loss="mse"):
    return {"inputs": inputs, "layers": list(layers), "loss": loss}


DENSE5 = {"units": 5, "activation": "relu"}
OUT = {"units": 1, "activation": "identity"}

# (id, spec, what the one line must name (the field), words of the problem or the fix)
BAD = [
    ("residual-widths", small(DENSE5, {"units": 3, "activation": "relu"}, {"type": "residual", "from": 1}, OUT),
     "layers[2].from", ["5 units", "3 units", "equal widths"]),
    ("residual-widths-inputs", small(DENSE5, {"type": "residual", "from": 0}, OUT),
     "layers[1].from", ["4 units", "5 units", "equal widths"]),
    ("residual-first-layer", small({"type": "residual", "from": 0}, OUT), "layers[0]",
     ["cannot be the first layer", "from: 0"]),
    ("batchnorm-batch-of-one", top(batch_size=1), "batch_size", ["batch normalization", "2 or more"]),
    ("dropout-rate-1", layer(2, type="dropout", rate=1), "layers[2].rate", ["outside [0, 1)", "0.5"]),
    ("dropout-rate-negative", layer(2, type="dropout", rate=-0.1), "layers[2].rate", ["-0.1", "outside [0, 1)"]),
    ("dropout-rate-1.5", layer(2, type="dropout", rate=1.5), "layers[2].rate", ["1.5", "outside [0, 1)"]),
    ("dropout-rate-text", layer(2, type="dropout", rate="half"), "layers[2].rate",
     ["must be a number", "'half'", "probability"]),
    ("dropout-rate-bool", layer(2, type="dropout", rate=True), "layers[2].rate", ["must be a number"]),
    ("dropout-rate-missing", layer(2, type="dropout"), "layers[2].rate", ["is missing", "rate:"]),
    ("from-self", layer(5, type="residual", **{"from": 6}), "layers[5].from", ["cycle", "below 6"]),
    ("from-forward", layer(5, type="residual", **{"from": 7}), "layers[5].from", ["cycle", "below 6"]),
    ("from-previous", layer(5, type="residual", **{"from": 5}), "layers[5].from", ["already reads", "below 5"]),
    ("from-negative", layer(5, type="residual", **{"from": -1}), "layers[5].from", ["layer number", "from: 1"]),
    ("from-text", layer(5, type="residual", **{"from": "one"}), "layers[5].from", ["layer number"]),
    ("from-missing", layer(5, type="residual"), "layers[5].from", ["is missing"]),
    ("unknown-type", layer(1, type="batchnorn"), "layers[1].type",
     ["unknown layer type 'batchnorn'", "did you mean 'batchnorm'?"]),
    ("unknown-type-typo", layer(2, type="drop_out", rate=0.5), "layers[2].type", ["did you mean 'dropout'?"]),
    ("type-not-text", layer(1, type=["batchnorm"]), "layers[1].type", ["name of a layer kind", "batchnorm"]),
    ("batchnorm-unknown-key", layer(1, type="batchnorm", rate=0.5), "layers[1].rate",
     ["not a key of a batchnorm layer", "epsilon, momentum"]),
    ("batchnorm-units", layer(1, type="batchnorm", units=5), "layers[1].units", ["not a key of a batchnorm layer"]),
    ("dense-dropout-key", layer(0, units=5, activation="relu", rate=0.5), "layers[0].rate",
     ["not a key of a dense layer", "type:"]),
    ("batchnorm-epsilon", layer(1, type="batchnorm", epsilon=0), "layers[1].epsilon", ["outside (0, 1)"]),
    ("batchnorm-momentum", layer(1, type="batchnorm", momentum=1), "layers[1].momentum", ["outside [0, 1)"]),
    ("layer-not-mapping", layer(1, type="batchnorm") | {"layers": [DENSE5, "batchnorm", MIX["layers"][-1]]},
     "layers[1]", ["must be a mapping", "{type: batchnorm}"]),
    ("last-not-dense", top(layers=MIX["layers"][:-1] + [{"type": "batchnorm"}]), "layers[6]",
     ["last layer is batchnorm", "end the layers with"]),
    ("last-residual", small(DENSE5, {"units": 5, "activation": "tanh"}, {"type": "residual", "from": 1}),
     "layers[2]", ["last layer is residual"]),
    ("softmax-hidden", layer(0, units=5, activation="softmax"), "layers[0].activation",
     ["softmax is allowed only in the output layer"]),
    ("loss-output-mismatch", top(loss="binary_cross_entropy"), "loss", ["binary_cross_entropy", "softmax"]),
    ("l2-negative", top(regularization={"l2": -1}), "regularization.l2", ["got -1", "l2: 1.0e-4"]),
    ("l2-text", top(regularization={"l2": "big"}), "regularization.l2", ["'big'"]),
    ("l2-huge", top(regularization={"l2": 1e6}), "regularization.l2", ["below 1000"]),
    ("regularization-unknown-key", top(regularization={"l1": 0.1}), "regularization.l1",
     ["not a known key", "l2: 1.0e-4"]),
    ("regularization-not-mapping", top(regularization=[0.1]), "regularization", ["mapping", "l2: 1.0e-4"]),
    ("too-many-parameters", small(*[{"units": 100_000, "activation": "relu"}] * 3, {"type": "batchnorm"}, OUT),
     "layers", ["parameters (at most", "fewer or narrower"]),
    ("yaml-epsilon-text", layer(1, type="batchnorm", epsilon="1e-5"), "layers[1].epsilon",
     ["got '1e-5'", "YAML reads 1e-5 as text", "1.0e-5"]),
    ("yaml-l2-text", top(regularization={"l2": "1e-4"}), "regularization.l2", ["YAML reads 1e-4 as text"]),
    ("batch-size-zero", top(batch_size=0), "batch_size", ["whole number", "got 0"]),
    ("batch-size-text", top(batch_size="32"), "batch_size", ["whole number"]),
]


def _write(tmp_path, spec, name="spec.json"):
    path = tmp_path / name
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_graph_spec_is_one_clear_line_via_the_cli(case, tmp_path, capsys):
    _, spec, field, words = case
    path = _write(tmp_path, spec)
    assert main(["derive", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"symbackprop: error: {field}: "), line
    assert "; " in line, f"no fix in {line!r}"
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    assert "Traceback" not in err


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_graph_spec_is_a_spec_error_from_load(case):
    _, spec, field, _ = case
    with pytest.raises(SpecError) as info:
        load(spec)
    assert info.value.field == field


@pytest.mark.parametrize("case", [BAD[0], BAD[3]], ids=[BAD[0][0], BAD[3][0]])
def test_bad_graph_spec_refused_by_the_real_command(case, tmp_path):
    """``python -m symbackprop derive SPEC``: exit code 2, one stderr line, no traceback."""
    path = _write(tmp_path, case[1])
    run = subprocess.run([sys.executable, "-m", "symbackprop", "derive", str(path)],
                         check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and run.stderr.startswith(f"symbackprop: error: {case[2]}: ")
    assert "Traceback" not in run.stderr and run.stdout == ""


@pytest.mark.parametrize("force", [False, True])
def test_a_refused_spec_touches_nothing_of_the_users(tmp_path, capsys, force):
    """Even with ``-o DIR --force``, a bad spec is refused before any file is written or replaced."""
    path = _write(tmp_path, top(batch_size=1))
    spec_text = path.read_text(encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    mine = {"gradients.json": "my notes\n", "gradients.txt": "my text\n", "model.py": "print('mine')\n"}
    for name, text in mine.items():
        (out / name).write_text(text, encoding="utf-8")
    argv = ["derive", str(path), "-o", str(out)] + (["--force"] if force else [])
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("symbackprop: error: batch_size: ")
    assert path.read_text(encoding="utf-8") == spec_text
    assert sorted(p.name for p in out.iterdir()) == sorted(mine)
    for name, text in mine.items():
        assert (out / name).read_text(encoding="utf-8") == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "spec.json"]


# ----------------------------------------------------------------------------- good specs

# Written out by hand from the issue: W{l}, b{l} per dense layer (W is units x fan_in),
# gamma{l}, beta{l} per normalization layer (one per unit), nothing for dropout and residual.
ISSUE_PARAMETERS = [
    ("W1", (5, 4)), ("b1", (5,)),
    ("gamma2", (5,)), ("beta2", (5,)),
    ("W4", (5, 5)), ("b4", (5,)),
    ("gamma5", (5,)), ("beta5", (5,)),
    ("W7", (3, 5)), ("b7", (3,)),
]


def test_issue_spec_from_yaml_as_printed(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(ISSUE_YAML, encoding="utf-8")
    net = load(path)
    assert isinstance(net, GraphNetwork)
    assert net == load(MIX)
    assert [n.kind.name for n in net.nodes] == ["dense", "batchnorm", "dropout", "dense", "layernorm",
                                                "residual", "dense"]
    assert [n.units for n in net.nodes] == [5, 5, 5, 5, 5, 5, 3]
    assert [n.inputs for n in net.nodes] == [(0,), (1,), (2,), (3,), (4,), (5, 1), (6,)]
    assert [n.index for n in net.consumers(1)] == [2, 6]
    assert net.l2 == 1e-4
    assert net.loss.name == "categorical_cross_entropy"
    opts = [n.opts for n in net.nodes]
    assert opts[1]["epsilon"] == 1e-5 and opts[1]["momentum"] == 0.9  # the issue's default momentum
    assert opts[2]["rate"] == 0.5 and opts[5]["from"] == 1 and opts[4]["epsilon"] == 1e-5
    assert opts[0]["activation"].name == "relu" and opts[6]["activation"].name == "softmax"


def test_yaml_exponent_without_a_dot_is_explained(tmp_path, capsys):
    """YAML 1.1 reads ``1e-5`` as text: the one line says so and how to write it."""
    path = tmp_path / "eps.yaml"
    path.write_text(ISSUE_YAML.replace("epsilon: 1.0e-5}           # gamma", "epsilon: 1e-5}  # gamma"),
                    encoding="utf-8")
    assert main(["derive", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symbackprop: error: layers[1].epsilon: must be a number, got '1e-5'; ")
    assert "write the mantissa with a dot" in err and err.count("\n") == 1


def test_issue_spec_parameter_names_and_shapes_in_layer_order():
    net = load(MIX)
    assert [(name, shape) for name, _, _, shape in net.parameter_shapes()] == ISSUE_PARAMETERS
    assert [(p.name, p.shape) for p in LayerDerivation(net).parameters] == ISSUE_PARAMETERS
    assert net.parameter_count == 20 + 5 + 5 + 5 + 25 + 5 + 5 + 5 + 15 + 3
    decayed = [name for name, _, p, _ in net.parameter_shapes() if p.decay]
    assert decayed == ["W1", "W4", "W7"]  # biases and norm scales are not decayed


def test_bias_false_drops_the_bias_name():
    net = load(layer(3, units=5, activation="tanh", bias=False))
    names = [name for name, *_ in net.parameter_shapes()]
    assert "W4" in names and "b4" not in names and "gamma5" in names


def test_explicit_type_dense_is_the_same_network():
    explicit = copy.deepcopy(MIX)
    for item in explicit["layers"]:
        item.setdefault("type", "dense")
    assert explicit != MIX
    assert load(explicit) == load(MIX)
    stack = small(DENSE5, {"units": 2, "activation": "sigmoid"}, loss="binary_cross_entropy")
    typed = small(DENSE5 | {"type": "dense"}, {"units": 2, "activation": "sigmoid", "type": "dense"},
                  loss="binary_cross_entropy")
    assert isinstance(load(stack), Network) and not isinstance(load(stack), GraphNetwork)
    assert load(typed) == load(stack)


def test_accepted_edge_cases():
    # a residual from the inputs (layer 0) when the widths match
    net = load(small({"units": 4, "activation": "tanh"}, {"type": "residual", "from": 0}, OUT))
    assert net.nodes[1].inputs == (1, 0) and net.nodes[1].units == 4
    # a dropout rate of 0 is in [0, 1)
    assert load(layer(2, type="dropout", rate=0)).nodes[2].opts["rate"] == 0
    # a batch of one is fine without batch normalization
    no_bn = small({"type": "layernorm"}, {"type": "dropout", "rate": 0.2}, OUT)
    assert load(no_bn | {"batch_size": 1}).batch_size == 1
    # a batch of two is enough for batch normalization
    assert load(top(batch_size=2)).batch_size == 2
    # regularization alone makes a dense stack a graph network
    assert isinstance(load(small(DENSE5, OUT) | {"regularization": {"l2": 0.01}}), GraphNetwork)


def test_issue_spec_derives_via_the_cli_with_its_parameter_names(tmp_path, capsys):
    """``derive SPEC --json``: the parameter names and shapes of the issue's spec, in layer order."""
    path = tmp_path / "mixed.yaml"
    path.write_text(ISSUE_YAML, encoding="utf-8")
    assert main(["derive", str(path), "--json", "--verify", "none"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(p["name"], tuple(p["shape"])) for p in report["parameters"]] == ISSUE_PARAMETERS
    assert [p["name"] for p in report["parameters"] if p["weight_decay"]] == ["W1", "W4", "W7"]
