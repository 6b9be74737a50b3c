"""Verification: each tier catches a planted wrong derivative, and reports what it covered.

The truths are independent of the derivation: ``sympy.diff`` of the concrete graph
(local tier), ``sympy.diff`` of the closed-form E (closed-form tier), and central
finite differences of a forward pass that knows no derivatives (numeric tier).
"""

import numpy as np
import pytest
import sympy as sp

from symbackprop import derive
from symbackprop.engine import general
from symbackprop.engine.derive import Derivation
from symbackprop.engine.verify import Verification, _closed_form, _local, _numeric, closed_form_plan, verify

SEED = "examples/seed_2_3_1.yaml"
DEEP = {"inputs": 5, "layers": [{"units": 6, "activation": "relu"}, {"units": 4, "activation": "tanh"},
                                {"units": 3, "activation": "softmax"}], "loss": "categorical_cross_entropy"}


def test_examples_pass_every_tier(examples):
    """The dense examples (graphs of layers have their own tiers: tests/engine/test_layerverify.py)."""
    from symbackprop.spec import Network, load

    for path in [p for p in examples if isinstance(load(p), Network)]:
        report = derive(path).verification
        assert report.passed, report.failures
        assert [t.name for t in report.tiers] == ["local", "closed form", "numeric"]
        assert report.numeric_points == 3 and report.numeric_directions == 9
        assert report.tier("local").checked > 0 and report.tier("local").equal == report.tier("local").checked


@pytest.fixture
def flipped_unit(monkeypatch):
    """Plant a sign flip in the concrete delta of one hidden unit (layer 1, unit ``j``)."""
    original = Derivation._delta.__wrapped__

    def plant(j):
        def broken(self, l, jj):
            value = original(self, l, jj)
            return -value if l == 1 and jj == j else value
        monkeypatch.setattr(Derivation, "_delta", broken)

    return plant


def test_closed_form_tier_catches_a_wrong_representative(flipped_unit):
    flipped_unit(1)  # W1_1_1 and b1_1 are layer 1's representatives
    d = derive(SEED, verify=False)
    report = Verification(parameters=len(d.parameters))
    _closed_form(d, report, full=False)
    assert any("W1_1_1" in f and "symbolically" in f for f in report.failures)


def test_full_closed_form_catches_any_unit(flipped_unit):
    flipped_unit(2)
    d = derive(SEED, verify=False)
    report = Verification(parameters=len(d.parameters))
    _closed_form(d, report, full=True)
    assert {f.split(":")[0] for f in report.failures} == {"W1_2_1", "W1_2_2", "b1_2"}


def test_numeric_tier_catches_a_wrong_template():
    from dataclasses import replace

    d = derive(SEED, verify=False)
    d.general.layers = dict(d.general.layers)
    d.general.layers[1] = replace(d.general.layers[1], delta=-d.general.layers[1].delta)  # the recursion, negated
    report = Verification(parameters=len(d.parameters))
    _numeric(d, report, np.random.default_rng(0))
    assert any(f.startswith("W1_2_1") and "reference" in f for f in report.failures)  # against finite differences


def test_numeric_spot_check_catches_a_wrong_concrete_delta(flipped_unit):
    flipped_unit(2)
    d = derive(SEED, verify=False)
    report = Verification(parameters=len(d.parameters))
    _numeric(d, report, np.random.default_rng(0))
    assert any(f.startswith("delta1_2 (concrete expression)") for f in report.failures)


@pytest.mark.parametrize("plant", ["output", "recursion"])
def test_local_tier_catches_a_wrong_template(monkeypatch, plant):
    if plant == "output":
        original = general.output_delta
        monkeypatch.setattr(general, "output_delta", lambda L, act, loss: 2 * original(L, act, loss))
    else:  # the recursion without the activation's derivative
        original = general.layer_form.__wrapped__

        def no_fprime(l, output, act, bias, loss):
            form = original(l, output, act, bias, loss)
            if not output:
                form.delta = form.delta.subs(form.fprime, 1)
            return form
        monkeypatch.setattr(general, "layer_form", no_fprime)
    general.layer_form.cache_clear() if hasattr(general.layer_form, "cache_clear") else None
    try:
        d = derive(SEED, verify=False)
        report = Verification(parameters=len(d.parameters))
        _local(d, report)
        wanted = "output delta" if plant == "output" else "recursion"
        assert any(f.startswith("local, layer") and wanted in f for f in report.failures), report.failures
    finally:
        monkeypatch.undo()
        general.layer_form.cache_clear()


def test_auto_reports_each_tier_in_words_and_is_deterministic():
    first, second = derive(DEEP).verification, derive(DEEP).verification
    assert first.passed and first.as_dict() == second.as_dict()
    closed = first.tier("closed form")
    assert closed.checked == 0 and "kinks" in closed.not_covered and "--verify full" in closed.not_covered
    assert first.tier("local").checked > 0
    text = first.summary()
    assert "local:" in text and "closed form: skipped; not checked:" in text and "numeric:" in text


def test_closed_form_plan_covers_small_nets_and_names_the_rest():
    d = derive(SEED, verify=False)
    chosen, rest = closed_form_plan(d)
    assert [p.name for p in chosen] == ["W2_1_1", "b2_1", "W1_1_1", "b1_1"]
    assert "9 other parameters" in rest
    assert closed_form_plan(d, full=True) == (d.parameters, "")


def test_large_net_is_verified_numerically_only():
    spec = {"inputs": 20, "layers": [{"units": 8, "activation": "sigmoid"}, {"units": 3, "activation": "sigmoid"}],
            "loss": "half_sse"}
    report = derive(spec).verification
    assert report.passed and report.tier("closed form").checked == 0
    assert "195 parameters is more than 100" in report.tier("closed form").not_covered
    assert report.numeric_per_parameter == 96  # a random sample; random directions cover all 195


def test_modes():
    assert derive(SEED, verify="none").verification is None
    numeric = derive(SEED, verify="numeric").verification
    assert [t.run for t in numeric.tiers] == [False, False, True]
    full = derive(SEED, verify="full").verification
    assert full.passed and full.tier("closed form").checked == 13 and full.tier("general form").checked > 0
    with pytest.raises(ValueError):
        verify(derive(SEED, verify=False), mode="fast")


def test_closed_form_gradient_is_in_inputs_targets_parameters_only():
    d = derive("examples/xor.yaml", verify=False)
    allowed = set(d.parameters) | set(d.inputs) | set(d.targets)
    for p in d.parameters:
        assert d.gradient(p).free_symbols <= allowed
    assert isinstance(d.loss, sp.Expr) and d.loss.free_symbols <= allowed


def test_repr_is_a_one_line_summary():
    text = repr(derive(SEED))
    assert "\n" not in text and "2-3-1" in text and "13 parameters" in text and "verification passed" in text
    assert "not verified" in repr(derive(SEED, verify=False))


@pytest.mark.parametrize("derived, reference", [(float("nan"), 1.0), (float("inf"), 1.0), (1.0, float("nan")),
                                                (1.0, 1.0 + 1e-3)])
def test_a_non_finite_or_distant_value_is_a_failure(derived, reference):
    """The numeric comparison never lets NaN or inf pass (NaN compares false with every tolerance)."""
    from symbackprop.engine.verify import _compare

    report = Verification(parameters=1)
    _compare(report, "dE/dp", derived, reference)
    assert len(report.failures) == 1 and "dE/dp" in report.failures[0]
    ok = Verification(parameters=1)
    _compare(ok, "dE/dp", 1.0, 1.0)
    assert ok.failures == []


def test_headline_states_the_verdict_and_every_tier():
    """The one-line verdict the documents print: "passed" only when no check failed, "FAILED" when the numeric
    tier finds the negated recursion (against finite differences), and each tier's result in order (mutation
    survivors ``Verification.headline`` 3, 6)."""
    from dataclasses import replace

    good = derive(SEED).verification
    assert good.passed
    assert good.headline().startswith("Verification passed (--verify auto): ")
    assert [part.split(" ")[0] for part in good.headline().split(": ", 1)[1].rstrip(".").split("; ")] == [
        "local", "closed", "numeric"]

    d = derive(SEED, verify=False)
    d.general.layers = dict(d.general.layers)
    d.general.layers[1] = replace(d.general.layers[1], delta=-d.general.layers[1].delta)
    bad = Verification(parameters=len(d.parameters))
    _numeric(d, bad, np.random.default_rng(0))
    assert not bad.passed
    assert bad.headline().startswith("Verification FAILED (--verify auto): numeric ")
    assert "passed" not in bad.headline()


def test_a_tier_that_was_not_run_is_none():
    """``Verification.tier(name)`` is None for a tier the report does not hold (a report of the numeric tier only
    has no local tier), never an exception (mutation survivor ``Verification.tier`` 3)."""
    d = derive(SEED, verify=False)
    report = Verification(parameters=len(d.parameters))
    _numeric(d, report, np.random.default_rng(0))
    assert report.tier("numeric") is not None
    assert report.tier("local") is None and report.tier("closed form") is None
