"""The layer-graph verification catches a wrong derivative in every tier.

Each test plants one realistic bug (in a copy of a registry entry, never in the
registry itself) and checks that the tier meant to catch it reports it.  The
truths are SymPy's derivative of the entry's forward definition (local tier),
sympy.diff of the closed-form E (closed form) and finite differences (numeric).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sympy as sp

from symbackprop import derive
from symbackprop.engine import layerverify
from symbackprop.engine.layergraph import LayerDerivation
from symbackprop.registry.layers import batchnorm, dropout
from symbackprop.spec import load

SMALL_BN = {"name": "bn", "inputs": 2, "layers": [{"units": 2, "activation": "tanh"}, {"type": "batchnorm"},
                                                  {"units": 1, "activation": "sigmoid"}], "loss": "half_sse"}
DROPOUT = {"name": "drop", "inputs": 2, "layers": [{"units": 3, "activation": "relu"}, {"type": "dropout", "rate": 0.5},
                                                   {"units": 1, "activation": "identity"}], "loss": "mse"}
RESIDUAL = {"name": "res", "inputs": 2, "layers": [{"units": 2, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"},
                                                   {"type": "residual", "from": 1}, {"units": 1, "activation": "identity"}],
            "loss": "half_sse", "regularization": {"l2": 0.1}}


def with_kind(spec, index, **changes):
    """The network of ``spec`` with layer ``index``'s registry entry changed (a planted bug)."""
    net = load(spec)
    nodes = list(net.nodes)
    node = nodes[index - 1]
    nodes[index - 1] = dataclasses.replace(node, kind=dataclasses.replace(node.kind, **changes))
    return dataclasses.replace(net, nodes=tuple(nodes))


def test_correct_specs_pass_every_tier():
    for spec in (SMALL_BN, DROPOUT, RESIDUAL):
        report = derive(spec).verification
        assert report.passed, report.failures
        assert [t.name for t in report.tiers] == ["local", "closed form", "numeric"]
        assert all(t.checked and t.equal == t.checked for t in report.tiers)


def test_local_tier_catches_a_compact_form_without_the_mean_path():
    def no_mean_path(g, inputs, params, opts, aux=None):
        (dx,), grads = batchnorm.backward(g, inputs, params, opts, aux)
        gamma, B = params["gamma"], inputs[0].rows
        _, _, sig, _ = batchnorm._stats(inputs[0], opts["epsilon"])
        # forgets the "- sum_b g[b, j]" term, i.e. the mu_B path
        wrong = sp.Matrix(dx.rows, dx.cols, lambda i, j: dx[i, j] + gamma[j] / (B * sig[j]) * grads["beta"][j])
        return (wrong,), grads

    d = LayerDerivation(with_kind(SMALL_BN, 2, backward=no_mean_path))
    report = layerverify.verify(d)
    assert not report.passed
    assert any("batchnorm" in f and "SymPy" in f for f in report.failures)
    assert report.tier("local").equal < report.tier("local").checked


def test_local_tier_catches_the_paper_form_without_its_minus_one_half(monkeypatch):
    real = batchnorm.per_path

    def dropped_half(g, inputs, params, opts):
        dxhat, dvar, dmu, dx = real(g, inputs, params, opts)
        (x,) = inputs
        B = x.rows
        mu = [sp.Add(*x[:, j]) / B for j in range(x.cols)]
        # the student's version: (sigma^2 + eps)^(-3/2) without the factor -1/2 doubles dvar and flips it
        bad = sp.Matrix(x.rows, x.cols, lambda i, j: dx[i, j] + (-3 * dvar[j]) * 2 * (x[i, j] - mu[j]) / B)
        return dxhat, dvar, dmu, bad

    monkeypatch.setattr(batchnorm, "per_path", dropped_half)
    report = derive(SMALL_BN).verification
    assert any("per-path" in f for f in report.failures)


def test_numpy_code_is_checked_against_the_definition_and_by_finite_differences():
    def forgets_the_scale(g, mask, params, opts):
        return (g * mask,), {}  # inverted dropout's 1/(1 - p) missing

    d = LayerDerivation(with_kind(DROPOUT, 2, numpy_backward=forgets_the_scale))
    report = layerverify.verify(d)
    assert any("NumPy backward" in f for f in report.failures)
    numeric = report.tier("numeric")
    assert numeric.equal < numeric.checked  # finite differences disagree too


def test_closed_form_and_numeric_tiers_catch_a_gradient_that_misses_a_path(monkeypatch):
    # a residual that sends the gradient to one reader only: the local identity still holds
    # for the (wrong) compact form below, but the network gradient misses the skip path
    def one_path(g, inputs, params, opts, aux=None):
        return (g, sp.zeros(*g.shape)), {}

    def one_path_numpy(g, cache, params, opts):
        return (g, np.zeros_like(g)), {}

    d = LayerDerivation(with_kind(RESIDUAL, 3, backward=one_path, numpy_backward=one_path_numpy))
    report = layerverify.verify(d)
    assert report.tier("local").equal < report.tier("local").checked  # SymPy's diff has both paths
    assert report.tier("closed form").equal < report.tier("closed form").checked
    assert report.tier("numeric").equal < report.tier("numeric").checked


def test_closed_form_gradients_agree_with_finite_differences():
    d = LayerDerivation(load(RESIDUAL))
    rng = np.random.default_rng(3)
    params = d.init_params(1, spread=True)
    X, T = rng.normal(size=(2, 2)), rng.normal(size=(2, 1))
    closed = layerverify.closed_form_gradients(d, params, X, T, {})
    for name, value in params.items():
        for ix in np.ndindex(value.shape):
            hi = {k: v.copy() for k, v in params.items()}
            lo = {k: v.copy() for k, v in params.items()}
            hi[name][ix] += 1e-6
            lo[name][ix] -= 1e-6
            fd = (d.loss_value(hi, X, T) - d.loss_value(lo, X, T)) / 2e-6
            assert closed[name][ix] == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_report_is_deterministic_and_json_ready():
    import json

    a = derive(DROPOUT, seed=4).verification.as_dict()
    b = derive(DROPOUT, seed=4).verification.as_dict()
    assert a == b
    json.dumps(a)


def test_modes():
    assert derive(SMALL_BN, verify="none").verification is None
    numeric = derive(SMALL_BN, verify="numeric").verification
    assert [t.name for t in numeric.tiers] == ["numeric"]
    assert dropout.KIND.aux == ("mask",)


def test_numeric_tier_names_dropout_masks_only_for_a_net_with_dropout():
    """The numeric tier's coverage says its finite differences held dropout masks fixed exactly when the spec has
    a dropout layer (mutation survivor ``layerverify.verify`` 297)."""
    for spec in (SMALL_BN, DROPOUT, RESIDUAL):
        has_dropout = any(layer.get("type") == "dropout" for layer in spec["layers"])
        covered = derive(spec, verify="numeric").verification.tier("numeric").covered
        assert ("dropout masks" in covered) == has_dropout, (spec["name"], covered)
