"""The notation-aware LaTeX printer: symbols per profile, reading order, line breaks, escaping."""

import re

import sympy as sp

from symbackprop.engine import general
from symbackprop.render.latex import ActivationFn, NotationPrinter, escape_tex, rhs_lines
from symbackprop.render.notation import profile


def printer(name="seed", **kw):
    return NotationPrinter(profile(name), {1: r"\sigma", 2: r"\sigma"}, **kw)


def test_canonical_weight_follows_each_profiles_index_order():
    w = sp.Symbol("W1_2_3", real=True)  # from unit 3 of layer 0 to unit 2 of layer 1
    assert printer("seed").doprint(w) == "W^{(1)}_{23}"           # to, from
    assert printer("wikipedia").doprint(w) == "w^{(1)}_{32}"      # from, to
    assert printer("aima").doprint(w) == "w^{(1)}_{3,2}"          # from, to, with a comma


def test_quantities_use_profile_names():
    z, a, t = sp.Symbol("z2_1"), sp.Symbol("a2_1"), sp.Symbol("t_1")
    assert sorted(printer("seed").doprint(z + a + t).split(" + ")) == ["a^{(2)}_{1}", "y_{1}", "z^{(2)}_{1}"]
    wiki = printer("wikipedia").doprint(z + a + t)
    assert r"\mathrm{net}^{(2)}_{1}" in wiki and "o^{(2)}_{1}" in wiki and "t_{1}" in wiki
    assert r"\mathrm{in}_{1}" in printer("aima", layer_marks=False).doprint(z)


def test_two_digit_indices_are_separated():
    assert printer().doprint(sp.Symbol("W1_12_3")) == "W^{(1)}_{12,3}"


def test_indexed_general_form_and_inputs():
    W, x = general.base("W", 1), general.base("a", 0)
    j, k = general.J, general.K
    assert printer().doprint(W[j, k] * x[k]) == "W^{(1)}_{jk} x_{k}"
    assert printer("wikipedia").doprint(W[j, k]) == "w^{(1)}_{kj}"


def test_error_before_sigma_and_output_form_stays_together():
    a, t = general.base("a", 2), general.base("t")
    j = general.J
    expr = (1 - a[j]) * (a[j] - t[j]) * a[j]
    # the seed's reading order: (a - y) a (1 - a)
    assert printer().doprint(expr) == r"\left(a^{(2)}_{j} - y_{j}\right) a^{(2)}_{j} \left(1 - a^{(2)}_{j}\right)"


def test_printing_keeps_the_expression():
    """Reordering is cosmetic: the printed factors are exactly the expression's factors."""
    a, t = sp.symbols("a2_1 t_1", real=True)
    expr = sp.Rational(1, 2) * (a - t) ** 2
    assert printer().doprint(expr) == r"\frac{1}{2} \left(a^{(2)}_{1} - y_{1}\right)^{2}"


def test_activation_function_name_per_layer():
    z = sp.Symbol("z1_1", real=True)
    p = NotationPrinter(profile("seed"), {1: r"\tanh"})
    assert p.doprint(ActivationFn(1, z)) == r"\tanh(z^{(1)}_{1})"


def test_long_sums_are_broken_and_nothing_is_lost():
    terms = [sp.Symbol(f"W2_{k}_1") * sp.Symbol(f"delta2_{k}") for k in range(1, 13)]
    expr = sp.Add(*terms)
    lines = rhs_lines(expr, printer(), width=40)
    assert len(lines) > 2
    joined = " ".join(lines)
    for k in range(1, 13):
        assert f"W^{{(2)}}_{{{k},1}}" in joined or f"W^{{(2)}}_{{{k}1}}" in joined
    assert re.sub(r"\s", "", joined) == re.sub(r"\s", "", printer().doprint(expr))


def test_escape_tex_neutralises_commands():
    hostile = r"net \input{/etc/passwd} \write18{rm -rf /} $x$ 50% & #1 _^~ {}"
    out = escape_tex(hostile)
    assert "\\input" not in out and "\\write18" not in out
    assert not re.search(r"(?<!\\)[$%&#_{}]", out.replace(r"\{", "").replace(r"\}", "")
                         .replace("{}", ""))
    assert escape_tex("é") == "?"


def test_option_names_keep_their_double_dash():
    assert escape_tex("--per-weight all") == "-{}-per-weight all"
