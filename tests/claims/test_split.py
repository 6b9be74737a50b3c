"""Splitting a formula into claim texts: rows, breaks, chains, remarks."""

from __future__ import annotations

from symbackprop.claims.split import ClaimText, links, rows, split_formula


def texts(formula: str) -> list[str]:
    return [c.text for c in split_formula(formula)]


def test_align_rows_with_ampersands_and_breaks():
    f = r"\begin{align*} & z^{(1)} = W^{(1)}x + b^{(1)} \\ & a^{(1)} = \sigma(z^{(1)}) \end{align*}"
    assert texts(f) == [r"z^{(1)} = W^{(1)}x + b^{(1)}", r"a^{(1)} = \sigma(z^{(1)})"]


def test_chain_is_split_link_by_link():
    assert texts("a = b = c = d") == ["a = b", "b = c", "c = d"]
    assert texts(r"w \leftarrow w - \alpha g = v") == [r"w \leftarrow w - \alpha g", r"w - \alpha g = v"]


def test_relations_inside_braces_do_not_split():
    assert texts(r"o_j = \varphi(\sum_{k=1}^n w_{kj} x_k)") == [r"o_j = \varphi(\sum_{k=1}^n w_{kj} x_k)"]
    assert links(r"\frac{a=b}{c} = d") == ([r"\frac{a=b}{c}", "d"], ["="])


def test_continuation_rows_chain_from_the_previous_side():
    f = "\\begin{aligned}\na &= b + c \\\\\n  &= d \\\\[2pt]\n e &\\leftarrow f\n\\end{aligned}"
    assert split_formula(f) == [ClaimText("a = b + c", 1), ClaimText("b + c = d", 2), ClaimText(r"e \leftarrow f", 3)]


def test_remarks_dropped_but_layer_remarks_kept_on_every_link():
    assert texts(r"a^{(1)} = \sigma(z^{(1)}) \text{ (Apply activation function)}") == [r"a^{(1)} = \sigma(z^{(1)})"]
    assert texts(r"\frac{\delta E}{\delta o_j} = \frac{\delta E}{\delta y} = y - t \text{ (output layer)}") == [
        r"\frac{\delta E}{\delta o_j} = \frac{\delta E}{\delta y} \text{(output layer)}",
        r"\frac{\delta E}{\delta y} = y - t \text{(output layer)}"]
    # a remark that merely mentions a layer is prose, not a restriction
    assert texts(r"W^{(1)} \text{ - Weights of the hidden layer}") == ["W^{(1)}"]


def test_labels_tags_and_trailing_punctuation_go():
    assert texts(r"\begin{equation} E = \frac12 (y - t)^2 \label{eq:loss} \tag{3}, \end{equation}") == [
        r"E = \frac12 (y - t)^2"]
    assert texts(r"a = b \nonumber \\ c = d.") == ["a = b", "c = d"]


def test_rows_without_relation_are_kept_as_non_claims():
    assert rows(r"x \\ y") == [("x", 0), ("y", 0)]
    assert texts("") == [] and texts(r"\\ & \\") == []


def test_a_broken_line_continues_the_row_before():
    f = "\\begin{multline}\na = b \\\\\n + c \\\\\n - d\n\\end{multline}"
    assert split_formula(f) == [ClaimText("a = b + c - d", 1)]
    assert texts(r"a = b \\ -c = d") == ["a = b", "-c = d"]  # a row with its own relation is its own claim


def test_two_case_piecewise_is_one_claim_read_with_a_step():
    f = (r"\operatorname{ReLU}(u) &= \begin{cases} 0 & \text{for}\: u \leq 0 \\u & \text{otherwise} "
         r"\end{cases} &&\text{ReLU} \\ a &= b")
    claims = [c.text for c in split_formula(f)]
    relu = (r"\operatorname{ReLU}(u) = \left(\left(0\right) \left(1 - \mathrm{step}\left(u\right)\right) "
            r"+ \left(u\right) \mathrm{step}\left(u\right)\right)")
    assert claims == [relu, "a = b"]


def test_other_piecewise_definitions_stay_one_unreadable_claim():
    f = r"f(u) = \begin{cases} 0 & \text{for}\: u \leq -1 \\ u & \text{for}\: u < 1 \\ 1 & \text{otherwise} \end{cases}"
    assert [c.text for c in split_formula(f)] == [r"f(u) = \piecewise"]


def test_equations_listed_with_commas_are_separate_claims():
    assert [c.text for c in split_formula(r"n_{0} = 2, n_{1} = 3, n_{2} = 1")] == ["n_{0} = 2", "n_{1} = 3",
                                                                                  "n_{2} = 1"]
    assert [c.text for c in split_formula(r"L(t, y) = w_{j,k}")] == ["L(t, y) = w_{j,k}"]


def test_a_with_clause_is_its_own_claim():
    f = r"g'\bigl(z^{(1)}\bigr) &= \text{element-wise, with } g'(u) = 1 - u^{2}"
    assert [c.text for c in split_formula(f)] == [r"g'\bigl(z^{(1)}\bigr) = \withclause", "g'(u) = 1 - u^{2}"]
