"""A layer graph's ``example:`` block (spec/graph_example.py): the accepted forms, and one clear line
(exit code 2, ``symbackprop: error: FIELD: problem; fix``, nothing written) for each mistake."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from symbackprop import SpecError, load
from symbackprop.spec.graph_example import MAX_EXAMPLE_BATCH, GraphExample


def dense(units, activation, **kw):
    return {"units": units, "activation": activation, **kw}


# 2 inputs -> dense 3 relu (W1 3x2, b1) -> batchnorm (gamma2, beta2) -> dropout -> dense 2 softmax, no bias (W4 2x3)
NET = {"inputs": 2, "layers": [dense(3, "relu"), {"type": "batchnorm"}, {"type": "dropout", "rate": 0.5},
                               dense(2, "softmax", bias=False)], "loss": "categorical_cross_entropy"}
X = [[0.5, -1.0], [1.0, 2.0], [0.0, 0.3]]
T = [[1, 0], [0, 1], [1, 0]]
WEIGHTS = {"W1": [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]], "b1": [0.0, 0.1, 0.2], "gamma2": [1.0, 1.0, 1.0],
           "beta2": [0.0, 0.0, 0.0], "W4": [[0.7, 0.8, -0.9], [0.1, 0.2, 0.3]]}
MASK = [[1, 0, 1], [1, 1, 0], [0, 1, 1]]
GOOD = {"x": X, "t": T, "weights": WEIGHTS, "masks": {3: MASK}}


def spec(**example):
    out = copy.deepcopy(NET)
    out["example"] = {**copy.deepcopy(GOOD), **example}
    return {**out, "example": {k: v for k, v in out["example"].items() if v is not None}}


def test_batch_weights_and_masks_are_kept_as_rows():
    ex = load(spec()).example
    assert isinstance(ex, GraphExample)
    assert ex.batch == 3 and ex.batched and ex.x[1] == (1.0, 2.0) and ex.t[0] == (1.0, 0.0)
    assert [name for name, _ in ex.weights] == ["W1", "b1", "gamma2", "beta2", "W4"]
    assert dict(ex.weights)["W4"] == ((0.7, 0.8, -0.9), (0.1, 0.2, 0.3))
    assert ex.masks == ((3, ((1.0, 0.0, 1.0), (1.0, 1.0, 0.0), (0.0, 1.0, 1.0))),)
    hash(load(spec()))  # the network stays hashable


def test_seed_draws_parameters_and_masks():
    ex = load(spec(weights=None, masks=None, seed=7)).example
    assert (ex.seed, ex.weights, ex.masks) == (7, None, ())


def test_mask_keys_as_text_from_json_or_toml():
    assert load(spec(masks={"3": MASK})).example.masks[0][0] == 3


def test_one_sample_without_batch_normalization():
    net = {"inputs": 2, "layers": [dense(2, "tanh"), {"type": "dropout", "rate": 0.5}, dense(1, "sigmoid")],
           "loss": "binary_cross_entropy",
           "example": {"x": [0.5, -1.0], "t": [1], "seed": 0, "masks": {2: [1, 0]}}}
    ex = load(net).example
    assert (ex.x, ex.t, ex.batched, ex.masks) == (((0.5, -1.0),), ((1.0,),), False, ((2, ((1.0, 0.0),)),))


def without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


# (changes to the good example, text the one error line must contain)
BAD = [
    ({"x": [0.5, -1.0], "t": [1, 0]}, "example.x: is one sample, but batch normalization (layer 2) needs a batch"),
    ({"x": [[0.5, -1.0]], "t": [[1, 0]], "masks": {3: [[1, 0, 1]]}}, "needs a batch of at least 2"),
    ({"x": [[0.5, -1.0, 2.0], [1, 2, 3], [0, 0, 0]]}, "example.x[0]: has 3 numbers, but the number of inputs is 2"),
    ({"x": [[0.5, -1.0], 3, [0, 0]]}, "example.x: mixes numbers and lists"),
    ({"x": []}, "example.x: is an empty list"),
    ({"x": "0.5 1.0"}, "example.x: must be a list of 2 numbers or a list of such rows"),
    ({"x": [[0.5, "a"], [1, 2], [0, 0]]}, "example.x[0][1]: must be a finite number"),
    ({"x": [[0.5, -1.0]] * (MAX_EXAMPLE_BATCH + 1)}, f"example.x: has {MAX_EXAMPLE_BATCH + 1} rows"),
    ({"t": [[1, 0], [0, 1]]}, "example.t: has 2 target rows, but example.x has 3 samples"),
    ({"t": [[1, 0], [0.5, 0.6], [1, 0]]}, "example.t[1]: categorical_cross_entropy needs targets that sum to one"),
    ({"t": [[1, 0], [0, 1], [2, -1]]}, r"example.t[2]: categorical_cross_entropy needs targets in [0, 1]"),
    ({"weights": None}, "example: needs either 'weights' or 'seed'"),
    ({"seed": 1}, "example: needs either 'weights' or 'seed'"),
    ({"weights": None, "seed": -1, "masks": None}, "example.seed: must be a whole number"),
    ({"weights": [1, 2]}, "example.weights: must be a mapping"),
    ({"weights": dict(WEIGHTS, b4=[0.0, 0.0])}, "example.weights.b4: this network has no parameter b4"),
    ({"weights": dict(WEIGHTS, gamma3=[1.0, 1.0, 1.0])}, "example.weights.gamma3: this network has no parameter"),
    ({"weights": without(WEIGHTS, "beta2")}, "example.weights: is missing beta2"),
    ({"weights": dict(WEIGHTS, gamma2=[1.0, 1.0])},
     "example.weights.gamma2: has 2 numbers, but the number of units of layer 2 is 3"),
    ({"weights": dict(WEIGHTS, W1=[[0.1, 0.3, 0.5], [0.2, -0.4, 0.6]])},
     "example.weights.W1: must be 3 x 2, got 2 x 3, the transpose"),
    ({"weights": dict(WEIGHTS, W4=[[0.7, 0.8], [0.1, 0.2]])}, "example.weights.W4[0]: has 2 numbers, but the fan-in of layer 4 is 3"),
    ({"masks": None}, "example.masks: is missing: layer 3 is dropout and needs a 0/1 mask"),
    ({"masks": [MASK]}, "example.masks: must be a mapping from layer number to mask"),
    ({"masks": {2: MASK}}, "example.masks.2: layer 2 is not a dropout layer"),
    ({"masks": {3: MASK[:2]}}, "example.masks.3: has 2 rows, but the example has 3 samples"),
    ({"masks": {3: [[1, 0], [1, 1], [0, 1]]}}, "example.masks.3[0]: has 2 numbers, but the width of the layer is 3"),
    ({"masks": {3: [[1, 0.5, 1], [1, 1, 0], [0, 1, 1]]}}, "example.masks.3[0][1]: must be 0 or 1, got 0.5"),
    ({"masks": {3: [[1, 0, 1], [1, 2, 0], [0, 1, 1]]}}, "example.masks.3[1][1]: must be 0 or 1, got 2"),
    ({"masks": {3: [[1, 0, 1], [1, True, 0], [0, 1, 1]]}}, "example.masks.3[1][1]: must be a finite number"),
    ({"lr": 0.1}, "example.lr: is not a known key"),
]


@pytest.mark.parametrize("changes,message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_graph_example_gives_one_line_and_exit_2(refused, changes, message):
    line = refused(spec(**changes))
    assert message in line, line


def test_masks_on_a_network_without_dropout():
    net = {"inputs": 2, "layers": [dense(2, "tanh"), {"type": "layernorm"}, dense(1, "sigmoid")],
           "loss": "binary_cross_entropy", "example": {"x": [0.5, -1.0], "t": [1], "seed": 0, "masks": {2: [1, 0]}}}
    with pytest.raises(SpecError, match="example.masks: this network has no dropout layer; remove masks"):
        load(net)


def test_refused_by_the_real_command(tmp_path):
    """``python -m symbackprop derive SPEC``: exit code 2, one stderr line, no traceback."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec(masks={3: [[1, 0, 1], [1, 1, 0], [0, 1, 9]]})))
    run = subprocess.run([sys.executable, "-m", "symbackprop", "derive", str(path)], check=False,
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip() == ("symbackprop: error: example.masks.3[2][2]: must be 0 or 1, got 9; "
                                  "write 1 to keep a unit and 0 to drop it")
