"""Notation profiles: symbols, overrides, sign conventions, and how documents pick them."""

import pytest

from symbackprop.engine.derive import derive
from symbackprop.errors import SpecError
from symbackprop.render import documents
from symbackprop.render.notation import PROFILE_NAMES, PROFILES, profile

ONE_UNIT = {"inputs": 1, "layers": [{"units": 1, "activation": "sigmoid"}], "loss": "half_sse"}


def test_four_profiles_with_the_seeds_and_bishops_symbols():
    assert set(PROFILE_NAMES) == {"seed", "wikipedia", "aima", "bishop"}
    bishop = PROFILES["bishop"]  # PRML 5.3: a_j = sum_i w_ji z_i, z_j = h(a_j), delta_k = y_k - t_k
    assert (bishop.preactivation, bishop.activation_value, bishop.activation, bishop.delta, bishop.target,
            bishop.output_value, bishop.weight_order) == ("a", "z", "h", r"\delta", "t", "y", "to_from")
    seed, wiki, aima = (PROFILES[n] for n in ("seed", "wikipedia", "aima"))
    assert (seed.weight, seed.preactivation, seed.activation, seed.delta, seed.target, seed.loss) == (
        "W", "z", r"\sigma", r"\delta", "y", "L")
    assert (wiki.weight, wiki.preactivation, wiki.activation_value, wiki.activation, wiki.target, wiki.loss) == (
        "w", r"\mathrm{net}", "o", r"\varphi", "t", "E")
    assert (aima.preactivation, aima.activation, aima.delta, aima.descent_sign) == (
        r"\mathrm{in}", "g", r"\Delta", "plus")


def test_gradient_delta_keeps_delta_where_updates_add():
    """aima writes Delta = -delta; dE/dz itself must not be printed as Delta there."""
    assert profile("aima").gradient_delta == r"\delta"
    assert profile("seed").gradient_delta == r"\delta"
    assert profile("seed", (("delta", r"\epsilon"),)).gradient_delta == r"\epsilon"


def test_overrides_and_defaults():
    assert profile().name == "seed"
    assert profile(None, (("profile", "wikipedia"),)).name == "wikipedia"
    assert profile("aima", (("profile", "wikipedia"),)).name == "aima"  # the CLI flag wins
    assert profile(None, (("profile", "seed"), ("loss", "C"))).loss == "C"
    with pytest.raises(SpecError):
        profile("textbook")


def test_words_follow_the_profile():
    assert profile("wikipedia").words["z"] == "net input"
    assert profile("seed").words["z"] == "pre-activation"


def test_documents_use_the_spec_profile_unless_the_flag_says_otherwise():
    d = derive({**ONE_UNIT, "notation": {"profile": "wikipedia"}}, verify=False)
    assert r"\mathrm{net}" in documents.tex(d)
    assert r"\mathrm{net}" not in documents.tex(d, "seed")


def test_activation_names_per_profile():
    d = derive({"inputs": 1, "layers": [{"units": 1, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
                "loss": "half_sse"}, verify=False)
    assert documents.activation_names(d, profile("seed")) == {1: r"\tanh", 2: r"\sigma"}
    assert documents.activation_names(d, profile("aima")) == {1: "g_{1}", 2: "g_{2}"}
    same = derive(ONE_UNIT, verify=False)
    assert documents.activation_names(same, profile("wikipedia")) == {1: r"\varphi"}
