"""The spec's optional ``example:`` block: accepted forms, and one clear line for each mistake."""

import json

import pytest

from symbackprop import SpecError, load
from symbackprop.spec import Example

NET = {"inputs": 2, "layers": [{"units": 3, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
       "loss": "half_sse"}
WEIGHTS = {"W1": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], "b1": [0.0, 0.1, 0.2], "W2": [[0.7, 0.8, 0.9]], "b2": [0.3]}


def spec(example, **changes):
    out = json.loads(json.dumps(NET))
    out.update(changes)
    out["example"] = example
    return out


def test_no_example_is_none():
    assert load(NET).example is None


def test_weights_are_kept_in_canonical_shapes():
    net = load(spec({"x": [1, 2], "t": [0.5], "weights": WEIGHTS}))
    assert net.example == Example(
        x=(1.0, 2.0), t=(0.5,), seed=None,
        weights=(("W1", ((0.1, 0.2), (0.3, 0.4), (0.5, 0.6))), ("b1", (0.0, 0.1, 0.2)),
                 ("W2", ((0.7, 0.8, 0.9),)), ("b2", (0.3,))))
    hash(net)  # the Network stays hashable


def test_seed_form():
    assert load(spec({"x": [1, 2], "t": [0.5], "seed": 3})).example == Example((1.0, 2.0), (0.5,), seed=3)


def test_layer_without_bias_takes_no_b():
    net = dict(NET, layers=[{"units": 3, "activation": "sigmoid", "bias": False}, {"units": 1, "activation": "sigmoid"}])
    weights = {k: v for k, v in WEIGHTS.items() if k != "b1"}
    assert load(spec({"x": [1, 2], "t": [0.5], "weights": weights}, layers=net["layers"])).example.weights[0][0] == "W1"
    with pytest.raises(SpecError, match="example.weights.b1: a layer without bias has no parameter b1"):
        load(spec({"x": [1, 2], "t": [0.5], "weights": WEIGHTS}, layers=net["layers"]))


def without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


# (example block, text the one error line must contain)
BAD = [
    ([0.05, 0.1], "example: must be a mapping"),
    ({"x": [1, 2], "t": [0.5], "seed": 0, "lr": 1}, "example.lr: is not a known key"),
    ({"t": [0.5], "seed": 0}, "example.x: is missing"),
    ({"x": [1, 2], "seed": 0}, "example.t: is missing"),
    ({"x": [1, 2, 3], "t": [0.5], "seed": 0}, "example.x: has 3 numbers, but the number of inputs is 2"),
    ({"x": 1, "t": [0.5], "seed": 0}, "example.x: must be a list of 2 numbers"),
    ({"x": [1, "2"], "t": [0.5], "seed": 0}, "example.x[1]: must be a finite number"),
    ({"x": [1, True], "t": [0.5], "seed": 0}, "example.x[1]: must be a finite number"),
    ({"x": [1, float("nan")], "t": [0.5], "seed": 0}, "example.x[1]: must be a finite number"),
    ({"x": [1, 2], "t": [0.5, 0.5], "seed": 0}, "example.t: has 2 numbers, but the number of outputs is 1"),
    ({"x": [1, 2], "t": [0.5]}, "example: needs either 'weights' or 'seed'"),
    ({"x": [1, 2], "t": [0.5], "seed": 0, "weights": WEIGHTS}, "example: needs either 'weights' or 'seed'"),
    ({"x": [1, 2], "t": [0.5], "seed": -1}, "example.seed: must be a whole number"),
    ({"x": [1, 2], "t": [0.5], "seed": 1.5}, "example.seed: must be a whole number"),
    ({"x": [1, 2], "t": [0.5], "weights": [1, 2]}, "example.weights: must be a mapping"),
    ({"x": [1, 2], "t": [0.5], "weights": without(WEIGHTS, "b2")}, "example.weights: is missing b2"),
    ({"x": [1, 2], "t": [0.5], "weights": dict(WEIGHTS, W3=[[1.0]])}, "example.weights.W3: this network has no"),
    ({"x": [1, 2], "t": [0.5], "weights": dict(WEIGHTS, W1=[[0.1, 0.2], [0.3, 0.4]])},
     "example.weights.W1: must be 3 x 2, got 2 rows"),
    ({"x": [1, 2], "t": [0.5], "weights": dict(WEIGHTS, W1=[[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]])},
     "example.weights.W1: must be 3 x 2, got 2 x 3, the transpose"),
    ({"x": [1, 2], "t": [0.5], "weights": dict(WEIGHTS, W2=[[0.7, 0.8]])},
     "example.weights.W2[0]: has 2 numbers, but the fan-in of layer 2 is 3"),
    ({"x": [1, 2], "t": [0.5], "weights": dict(WEIGHTS, b1=[0.0, 0.1])},
     "example.weights.b1: has 2 numbers, but the number of units of layer 1 is 3"),
    ({"x": [1, 2], "t": [0.5], "weights": dict(WEIGHTS, W2=0.5)}, "example.weights.W2: must be 1 x 3"),
]


@pytest.mark.parametrize("example,message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_example_gives_one_line_and_exit_2(refused, example, message):
    assert message in refused(spec(example))


def test_targets_must_fit_the_loss():
    classifier = {"inputs": 2, "layers": [{"units": 3, "activation": "softmax"}], "loss": "categorical_cross_entropy"}
    with pytest.raises(SpecError, match="example.t: .*sum to one"):
        load(dict(classifier, example={"x": [1, 2], "t": [0.5, 0.4, 0.3], "seed": 0}))
    with pytest.raises(SpecError, match=r"example.t: .*targets in \[0, 1\]"):
        load(spec({"x": [1, 2], "t": [1.5], "seed": 0}, loss="binary_cross_entropy"))
    assert load(dict(classifier, example={"x": [1, 2], "t": [0, 1, 0], "seed": 0})).example.t == (0.0, 1.0, 0.0)


def test_graph_specs_take_an_example_too():
    """A layer graph reads its own form of the block (a batch, masks): tests/spec/test_graph_example.py."""
    graph = {"inputs": 2, "layers": [{"type": "dense", "units": 2, "activation": "relu"}, {"type": "dropout", "rate": 0.5},
                                     {"type": "dense", "units": 1, "activation": "sigmoid"}], "loss": "half_sse"}
    assert load(dict(graph, example={"x": [1, 2], "t": [0.5], "seed": 0})).example.x == ((1.0, 2.0),)
