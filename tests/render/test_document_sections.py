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


# ----------------------------------------------------------------------------- labels and parentheses, every profile

DENSE = ("seed_2_3_1.yaml", "xor.yaml", "classifier_4_5_3.yaml", "deep_mixed.toml", "mazur_2_2_2.yaml")
NOTATIONS = ("seed", "wikipedia", "aima", "bishop")
TALL = re.compile(r"\\frac|\\sum|\\prod|\\sqrt|\\begin\{cases\}")
SIZER = re.compile(r"\\(?:left|bigl|Bigl|biggl|Biggl)\s*$")


def unsized_parentheses(math: str) -> list[str]:
    """Every ``( ... )`` around a fraction, sum, root or cases that is not sized (\\left, \\bigl, ...)."""
    found, stack, i = [], [], 0
    while i < len(math):
        if math[i] == "\\":
            i += len(re.match(r"\\[A-Za-z]+|\\.?", math[i:]).group())
            continue
        if math[i] == "(":
            stack.append((i, bool(SIZER.search(math[:i]))))
        elif math[i] == ")" and stack:
            start, sized = stack.pop()
            if not sized and TALL.search(math[start:i]):
                found.append(math[max(0, start - 40):i + 1])
        i += 1
    return found


def maths(text: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None) for m in
            re.finditer(r"\$\$(.*?)\$\$|\\begin\{align\*\}(.*?)\\end\{align\*\}|\$(.*?)\$", text, re.DOTALL)]


@pytest.fixture(scope="module")
def dense():
    return {name: derive(ROOT / "examples" / name, verify=False) for name in DENSE}


def test_the_parenthesis_check_can_fail():
    assert unsized_parentheses(r"a = (\frac{1}{2}) + \left(\sum_k x_k\right) + \bigl(\frac{1}{x}\bigr) + (x)") \
        == [r"a = (\frac{1}{2})"]
    assert unsized_parentheses(r"f = (\begin{cases} 0 & z \le 0 \\ 1 & z > 0 \end{cases}) W")


@pytest.mark.slow
@pytest.mark.parametrize("notation", NOTATIONS)
def test_every_tall_parenthesis_is_sized(dense, notation):
    """Document, Markdown appendix and per-weight listing (every parameter), in every profile (issue 12)."""
    for name, d in dense.items():
        listing = documents.build_per_weight(d, notation, "all")
        texts = [documents.tex(d, notation), documents.markdown(d, notation), documents.markdown_appendix(d, notation),
                 documents.render_markdown(listing) if listing else ""]
        bad = [u for text in texts for math in maths(text) for u in unsized_parentheses(math)]
        assert not bad, f"{name} ({notation}): unsized parentheses: {bad[:3]}"


@pytest.mark.parametrize("notation", NOTATIONS)
def test_activation_labels_name_the_layers_function_the_right_way_round(dense, notation):
    """Each "written with f" row of the chain rules (the per-weight listing and the tiny nets' appendix)
    names the function the layer has, as the profile writes it; the row before it (SymPy's f') does
    not use that name and the row does, so the label reads from f' to f, not backwards; and the
    identity it states holds (sympy.diff of the registry's definition).  The results' "f' written
    with the output" labels name the layer's own function."""
    from symbackprop.registry.ops import X
    from symbackprop.render.document import derivations, equations
    from symbackprop.render.document.build import context
    from symbackprop.render.document.context import label_math
    from symbackprop.render.document.model import Display

    for name, d in dense.items():
        ctx = context(d, notation, "all")
        index = equations._index_rows(ctx)
        for l in range(1, d.L + 1):
            act, fn = d.network.layers[l - 1].activation, ctx.functions[l]
            others = {f for f in ctx.functions.values() if f != fn}
            mine = label_math(fn + "'") or act.name
            if len(index[("delta", l)]) == 2 and not (l == d.L and d.simplifies_to_error):
                label = index[("delta", l)][1][2]
                assert label.startswith(mine) and not any(label_math(f + "'") in label for f in others
                                                          if label_math(f + "'")), (name, notation, l, label)
            rows = [(r, lb) for b in derivations.unit_blocks(ctx, l, 1, []) if isinstance(b, Display)
                    for r, lb in zip(b.rows, b.labels)]
            written = [i for i, (_, lb) in enumerate(rows) if lb.startswith("written with") and "output" not in lb]
            if not act.uses_output or isinstance(act.expr, sp.Function) and fn == act.latex:
                assert not written, (name, notation, l, rows)  # nothing to rewrite (or already in its own name)
                continue
            assert len(written) == 1, (name, notation, l, rows)
            (row, label), (before, _) = rows[written[0]], rows[written[0] - 1]
            assert label == f"written with {label_math(fn) or act.name}", (name, notation, l, label)
            applied = re.compile(rf"(?<![A-Za-z\\]){re.escape(fn)}(?:\^\{{\d\}})?\(")  # g_{1}(, g_{1}^{2}(
            assert applied.search(row) and not applied.search(before.split("&=", 1)[-1]), (name, notation, l, before, row)
            z = sp.Symbol("z", real=True)
            f = act.expr.subs(X, z)
            assert sp.simplify(act.derivative_at(z, f) - sp.diff(f, z)) == 0
