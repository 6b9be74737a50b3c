"""Verification catches a wrong derivation, symbolically and numerically."""

import sympy as sp

from symbackprop import derive
from symbackprop.derive import Derivation
from symbackprop.verify import verify


def test_examples_pass(examples):
    for path in examples:
        report = derive(path).verification
        assert report.passed, report.failures
        assert report.numeric_points == 3 and report.numeric_directions == 9


def test_broken_delta_is_caught(monkeypatch):
    original = Derivation._delta.__wrapped__

    def broken(self, l, j):
        value = original(self, l, j)
        return -value if l == 1 and j == 2 else value  # a sign flip in one hidden unit

    monkeypatch.setattr(Derivation, "_delta", broken)
    d = derive("examples/seed_2_3_1.yaml", verify=False)
    report = verify(d)
    assert not report.passed
    assert any("W1_2_1" in f and "symbolically" in f for f in report.failures)
    assert any("reference" in f for f in report.failures)  # and numerically, against finite differences


def test_large_net_is_verified_numerically_only():
    spec = {"inputs": 20, "layers": [{"units": 8, "activation": "sigmoid"}, {"units": 3, "activation": "sigmoid"}],
            "loss": "half_sse"}
    report = derive(spec).verification
    assert report.passed and report.symbolic_checked == 0 and "skipped" in report.symbolic
    assert report.numeric_per_parameter == 96  # a random sample; random directions cover all 195


def test_closed_form_gradient_is_in_inputs_targets_parameters_only():
    d = derive("examples/xor.yaml", verify=False)
    allowed = set(d.parameters) | set(d.inputs) | set(d.targets)
    for p in d.parameters:
        assert d.gradient(p).free_symbols <= allowed
    assert isinstance(d.loss, sp.Expr) and d.loss.free_symbols <= allowed
