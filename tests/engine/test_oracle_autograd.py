"""A second, independent oracle: HIPS autograd on a forward pass written here.

Pass rule: |derived - autograd| <= 1e-9 * |autograd| + 1e-12 (float64) for every parameter.
"""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from symbackprop import derive
from symbackprop.engine.numeric import DerivedGradients
from symbackprop.registry import ops

ACT = {  # written independently of the registry
    "identity": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + anp.exp(-z)),
    "tanh": anp.tanh,
    "relu": lambda z: anp.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: anp.where(z > 0, z, 0.01 * z),
    "softplus": lambda z: anp.log1p(anp.exp(z)),
    "elu": lambda z: anp.where(z > 0, z, anp.exp(z) - 1),
    "silu": lambda z: z / (1 + anp.exp(-z)),
    "softmax": lambda z: anp.exp(z - anp.max(z)) / anp.sum(anp.exp(z - anp.max(z))),
}
LOSS = {
    "half_sse": lambda a, t: 0.5 * anp.sum((a - t) ** 2),
    "sse": lambda a, t: anp.sum((a - t) ** 2),
    "mse": lambda a, t: anp.mean((a - t) ** 2),
    "binary_cross_entropy": lambda a, t: -anp.sum(t * anp.log(a) + (1 - t) * anp.log(1 - a)),
    "categorical_cross_entropy": lambda a, t: -anp.sum(t * anp.log(a)),
}
HIDDEN = [n for n in ops.ACTIVATION_NAMES if n != "softmax"]


def random_spec(rng):
    out_act, loss = ops.allowed_pairs()[rng.integers(len(ops.allowed_pairs()))]
    depth = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 5)) for _ in range(depth + 1)]
    if out_act == "softmax":
        sizes[-1] = max(2, sizes[-1])
    layers = [{"units": n, "activation": str(rng.choice(HIDDEN)), "bias": bool(rng.integers(2))} for n in sizes[1:-1]]
    layers.append({"units": sizes[-1], "activation": out_act, "bias": bool(rng.integers(2))})
    return {"name": "random", "inputs": sizes[0], "layers": layers, "loss": loss}


def autograd_loss(spec, shapes):
    def loss(flat, x, t):
        a, start = x, 0
        for l, layer in enumerate(spec["layers"], start=1):
            n_out, n_in = shapes[f"W{l}"]
            W = flat[start:start + n_out * n_in].reshape(n_out, n_in)
            start += n_out * n_in
            z = anp.dot(W, a)
            if layer["bias"]:
                z = z + flat[start:start + n_out]
                start += n_out
            a = ACT[layer["activation"]](z)
        return LOSS[spec["loss"]](a, t)
    return loss


def assert_matches_autograd(spec, d, rng, points=3):
    """The derivation's gradients (numeric.DerivedGradients) against autograd at random points (pass rule above)."""
    ev = DerivedGradients(d)
    net = ev.numeric
    oracle = grad(autograd_loss(spec, net.shapes()))
    for _ in range(points):
        params, x, t = net.random_point(rng)
        ours = net.flatten(ev.gradients(params, x, t))
        ref = oracle(net.flatten(params), x, t)
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12, err_msg=str(spec))


@pytest.mark.parametrize("seed", range(24))
def test_random_architecture_matches_autograd(seed):
    rng = np.random.default_rng(1000 + seed)
    spec = random_spec(rng)
    assert_matches_autograd(spec, derive(spec, verify=False), rng)


def test_oracle_detects_a_wrong_derivation():
    """The comparison above can fail: a derivation whose hidden delta is off by a factor 2 is caught."""
    from dataclasses import replace

    spec = {"inputs": 2, "layers": [{"units": 3, "activation": "sigmoid", "bias": True},
                                    {"units": 1, "activation": "sigmoid", "bias": True}], "loss": "half_sse"}
    d = derive(spec, verify=False)
    assert_matches_autograd(spec, d, np.random.default_rng(7), points=1)
    d.general.layers[1] = replace(d.general.layers[1], delta=2 * d.general.layers[1].delta)
    with pytest.raises(AssertionError):
        assert_matches_autograd(spec, d, np.random.default_rng(7), points=1)
