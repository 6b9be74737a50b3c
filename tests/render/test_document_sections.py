"""The section modules of symbackprop.render.document: the worked example against a published
walkthrough, the general derivations' algebra as printed, and what no document may contain."""

import re
from pathlib import Path

import pytest
import sympy as sp

from symbackprop.engine.derive import derive
from symbackprop.render import documents
from symbackprop.render.document import worked
from symbackprop.render.latex import NotationPrinter
from symbackprop.render.notation import profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mazur_md():
    return documents.markdown(derive(ROOT / "examples" / "mazur_2_2_2.yaml", verify=False))


@pytest.fixture(scope="module")
def classifier_md():
    return documents.markdown(derive(ROOT / "examples" / "classifier_4_5_3.yaml", verify=False))


def test_worked_example_prints_the_published_walkthrough(mazur_md):
    """Mazur's 'A Step by Step Backpropagation Example': loss 0.298371109, w5+ 0.35891648, w1+ 0.149780716."""
    section = mazur_md[mazur_md.index("## Worked example"):]
    assert "$0.29837111$" in section
    assert re.search(r"\$W\^\{\(2\)\}_\{11\}\$ \| \$0\.4\$ \| \$[-0-9.]+\$ \| \$0\.35891648\$", section)
    assert re.search(r"\$W\^\{\(1\)\}_\{11\}\$ \| \$0\.15\$ \| \$[-0-9.]+\$ \| \$0\.14978072\$", section)


def test_numbers_have_eight_significant_digits():
    assert worked.num(0.298371109) == "0.29837111"
    assert worked.num(-0.0380982366) == "-0.038098237"
    assert worked.num(1.5e-12) == r"1.5 \times 10^{-12}"


def test_no_worked_example_without_an_example_block(classifier_md):
    assert "Worked example" not in classifier_md


def test_softmax_cross_entropy_derivation_shows_both_cases_down_to_a_minus_t(classifier_md):
    section = classifier_md[classifier_md.index("### The output error term"):classifier_md.index("### The error")]
    assert r"\quad (k \neq j)" in section  # the k != j case of the Jacobian, marked
    assert r"\sum_{k \neq j}" in section  # the split sum
    for rule in ("quotient rule", "split the sum at $k = j$", "sum of the targets is one"):
        assert rule in section
    assert r"&= a^{(2)}_{j} - y_{j} &&\text{sum of the targets is one}" in section  # the last step
    assert r"- a^{(2)}_{j} \left(a^{(2)}_{j} - 1\right)" not in classifier_md  # a (1 - a), not -a (a - 1)


@pytest.mark.parametrize("name", ["seed_2_3_1", "xor", "classifier_4_5_3", "deep_mixed", "mazur_2_2_2"])
def test_no_raw_sympy_in_any_generated_document(name):
    for path in (ROOT / "generated" / name).glob("*"):
        if path.suffix in (".md", ".tex"):
            text = path.read_text(encoding="utf-8")
            assert "Sum(" not in text and "Piecewise(" not in text, path


def test_sum_except_prints_as_a_sum_over_k_not_j():
    k, j, n = (sp.Symbol(s, integer=True, positive=True) for s in "kjn")
    t = sp.IndexedBase("t")
    expr = sp.Sum(t[k] * (1 - sp.KroneckerDelta(k, j)), (k, 1, n))
    printed = NotationPrinter(profile("seed"), {}).doprint(expr)
    assert printed.startswith(r"\sum_{k \neq j}") and "delta" not in printed.replace(r"\neq", "")
