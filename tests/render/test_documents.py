"""Derivation documents: acceptance formulas per profile, derived forms checked against
independent truths, per-weight policy, escaping, CLI outputs and compiled PDFs."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symbackprop.cli import main
from symbackprop.engine import general, matrixform
from symbackprop.engine.derive import derive
from symbackprop.render import documents

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "seed_2_3_1.yaml"
HAS_TEX = shutil.which("pdflatex") is not None and shutil.which("pdftoppm") is not None


@pytest.fixture(scope="module")
def seed():
    return derive(SEED)


@pytest.fixture(scope="module")
def docs(seed):
    return {name: documents.tex(seed, name) for name in ("seed", "wikipedia", "aima")}


def representatives(tex: str) -> int:
    """How many parameters the section "One weight per layer, concretely" works through (one chain each)."""
    part = tex[tex.index("One weight per layer, concretely"):]
    return part[:part.index(r"\end{align*}")].count("chain rule, definition of delta")


def contains(text: str, formula: str) -> bool:
    """Whitespace-insensitive substring test."""
    squash = lambda s: re.sub(r"\s+", "", s)
    return squash(formula) in squash(text)


# ----------------------------------------------------------------------------- acceptance: seed profile


def test_seed_output_delta_is_dL_da_times_sigma_prime(docs):
    assert contains(docs["seed"], r"\delta^{(2)} &= \frac{\partial L}{\partial a^{(2)}} \odot \sigma'\bigl(z^{(2)}\bigr)")


def test_seed_gradients_of_output_layer(docs):
    assert contains(docs["seed"], r"\frac{\partial L}{\partial W^{(2)}} &= \delta^{(2)} a^{(1)T}")
    assert contains(docs["seed"], r"\frac{\partial L}{\partial b^{(2)}} &= \delta^{(2)}")


def test_seed_hidden_delta_and_input_gradient(docs):
    assert contains(docs["seed"], r"\delta^{(1)} &= \bigl(W^{(2)}\bigr)^{T} \delta^{(2)} \odot \sigma'\bigl(z^{(1)}\bigr)")
    assert contains(docs["seed"], r"\frac{\partial L}{\partial W^{(1)}} &= \delta^{(1)} x^{T}")
    assert contains(docs["seed"], r"\frac{\partial L}{\partial b^{(1)}} &= \delta^{(1)}")


def test_seed_four_sgd_updates(docs):
    for name in ("W^{(2)}", "b^{(2)}", "W^{(1)}", "b^{(1)}"):
        assert contains(docs["seed"], rf"{name} &\leftarrow {name} - \alpha \frac{{\partial L}}{{\partial {name}}}")


def test_seed_sigmoid_convenient_derivative_as_the_seed_shows_it(seed, docs):
    assert contains(docs["seed"], r"&= a^{(1)}_{j} \left(1 - a^{(1)}_{j}\right)")  # derived once, in index form
    listing = documents.render_tex(documents.build_per_weight(seed))
    assert contains(listing, r"&= \sigma(z^{(1)}_{1}) \left(1 - \sigma(z^{(1)}_{1})\right)")
    assert contains(listing, r"&= a^{(1)}_{1} \left(1 - a^{(1)}_{1}\right)")


def test_every_parameter_has_its_chain_rule_in_the_per_weight_listing(seed):
    listing = documents.build_per_weight(seed)
    assert listing is not None  # 13 parameters: more than fit the document's appendix
    tex = documents.render_tex(listing)
    assert tex.count("Parameter $") == len(seed.parameters) == 13
    for rule in ("chain rule", "sum rule", "constant factor rule", "derivative of the activation",
                 "definition of delta"):
        assert rule in tex
    assert "product rule" not in tex  # d(W_jk a_k)/dW_jk: a_k does not depend on W_jk (issue 12)


def test_document_derives_each_equation_once_then_one_weight_per_layer(docs):
    tex = docs["seed"]
    assert representatives(tex) == 2  # W2_11 and W1_11, after the general derivations
    for title in ("The output error term", "The error-term recursion", "The weight and bias gradients"):
        assert tex.count(title) == 1, title


def test_tiny_net_lists_every_parameter_in_its_appendix():
    d = derive({"inputs": 1, "layers": [{"units": 2, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
                "loss": "half_sse"}, verify=False)
    assert len(d.parameters) == 7 and documents.build_per_weight(d) is None
    tex = documents.tex(d)
    assert "Appendix: the chain rule for every parameter" in tex
    appendix = tex[tex.index("Appendix: the chain rule"):]
    assert appendix.count("Parameter $") == 7


def test_step_labels_name_the_rule_that_applies(docs):
    """d(W a)/dW = a is a constant factor, not the product rule; db/db = 1 is not a second sum rule."""
    tex = docs["seed"]
    lines = [ln for ln in tex.splitlines() if "text{" in ln]
    for ln in lines:
        if "product rule" in ln:
            raise AssertionError(f"product rule label on a linear term: {ln}")
    both = tex[tex.index("The weight and bias gradients"):]
    both = both[:both.index(r"\end{align*}")]
    rows = both.split(r"\\")
    bias = [r for r in rows if "b^{(2)}_{j}}" in r.split("&")[0] or r"\partial b^{(2)}_{j}}{\partial b" in r
            or "variable by itself" in r]
    assert sum("sum rule" in r for r in bias) == 1 and any("derivative of a variable by itself" in r for r in bias)
    assert both.count("sum rule") == 2  # once for dz/dW_jk, once for dz/db_j: derived in one block


def test_results_come_before_the_derivations(docs):
    tex = docs["seed"]
    order = [tex.index(mark) for mark in
             (r"\section{Results}", "Verification passed", "tikzpicture", r"\textbf{Forward pass.}",
              r"\textbf{Backpropagation.}", r"\leftarrow", r"\section{Derivations}", r"\section{Appendix: verification}")]
    assert order == sorted(order)


def test_one_unit_layer_reads_naturally(docs):
    assert r"j = 1, \dots, 1" not in docs["seed"] and "output layer, $j = 1$" in docs["seed"]


def test_notation_tables_use_the_profiles_own_symbols(docs):
    for name in ("aima", "wikipedia"):
        table = docs[name][docs[name].index(r"\section{Appendix: notation}"):docs[name].index(r"\section{Appendix: batch")]
        assert "z^{(l)}" not in table, name


# ----------------------------------------------------------------------------- acceptance: other profiles


def test_aima_monash_rules(docs):
    tex = docs["aima"]
    assert contains(tex, r"&= \left(y_{k} - a_{k}\right) g'(\mathrm{in}_{k})")
    assert re.search(r"\\Delta_\{k\} &= ", tex)
    assert contains(tex, r"&= w_{j,k} + \alpha a_{j} \Delta_{k}")
    assert contains(tex, r"\Delta_{j} &= g'(\mathrm{in}_{j}) \sum_{k=1}^{n_{2}} w_{j,k} \Delta_{k}")
    assert contains(tex, r"w_{i,j} &\leftarrow w_{i,j} + \alpha a_{i} \Delta_{j}")


def test_wikipedia_rules(docs):
    tex = docs["wikipedia"]
    assert contains(tex, r"\frac{\partial E}{\partial w^{(2)}_{ij}} &= \delta^{(2)}_{j} o^{(1)}_{i}")
    assert contains(tex, r"\left(o^{(2)}_{j} - t_{j}\right) o^{(2)}_{j} \left(1 - o^{(2)}_{j}\right)")
    assert r"\varphi" in tex and r"\mathrm{net}" in tex


# ----------------------------------------------------------------------------- derived, not pasted


def test_printed_matrix_recursion_matches_sympy_diff(seed):
    """(W2^T delta2) ⊙ sigma'(z1), with sigma' from sympy.diff of the sigmoid, equals delta1 of the graph."""
    g = seed.graph
    u = sp.Symbol("u", real=True)
    sigma = 1 / (1 + sp.exp(-u))
    sigma_prime = sp.diff(sigma, u)
    delta2 = sp.Matrix([seed.delta_symbol(2, 1)])
    W2 = sp.Matrix(g.W[2])
    fp = sp.Matrix([sigma_prime.subs(u, z) for z in g.z[1]])
    recursion = sp.matrix_multiply_elementwise(W2.T * delta2, fp)
    closed_a = {a: sigma.subs(u, z) for a, z in zip(g.a[1], g.z[1])}
    for j in range(3):
        assert sp.simplify(recursion[j] - seed.delta(1, j + 1).xreplace(closed_a)) == 0
    # and the document's own vector form, made explicit, is the same
    form = seed.general.layers[1]
    vector = matrixform.to_matrix(form.delta, seed.L, general.size(1))
    explicit = matrixform.explicit(vector, seed)
    for j in range(3):
        assert sp.simplify(explicit[j].xreplace(closed_a) - recursion[j]) == 0


def test_matrix_form_of_the_derivation_checks(seed):
    assert seed.matrix.check() == []


def test_output_error_derivative_is_dE_da(seed):
    """The document's dE/da (general delta / f') equals sympy.diff of the loss."""
    builder = documents.Builder(seed, documents.notation_profile("seed"))
    general_dE_da = builder.output_error_derivative()
    a, t = seed.graph.a[2][0], seed.graph.t[0]
    instance = general_dE_da.xreplace({general.base("a", 2)[general.J]: a, general.base("t")[general.J]: t})
    assert sp.expand(instance - sp.diff(seed.graph.loss_def, a)) == 0


# ----------------------------------------------------------------------------- policy, escaping, determinism


def test_per_weight_policy():
    spec = {"inputs": 8, "layers": [{"units": 8, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
            "loss": "half_sse"}
    d = derive(spec, verify=False)
    assert len(d.parameters) == 81
    assert representatives(documents.tex(d)) == 2  # one weight per layer
    assert documents.build_per_weight(d) is None  # representatives only, no separate listing
    listing = documents.build_per_weight(d, per_weight="all")
    assert documents.render_tex(listing).count("Parameter $") == 81


def test_names_are_escaped_and_nothing_can_be_injected():
    spec = {"name": r"evil \input{/etc/passwd} \write18{ls} 100% $x$ #_&", "inputs": 1,
            "layers": [{"units": 1, "activation": "sigmoid"}], "loss": "half_sse"}
    d = derive(spec, verify=False)
    tex, md = documents.tex(d), documents.markdown(d)
    assert "\\input" not in tex and "\\write18" not in tex and "\\include" not in tex
    assert r"100\%" in tex and r"\#\_\&" in tex
    # Markdown: every backslash of the name is escaped, so no TeX command survives in a math renderer,
    # and un-escaping the title gives the name back exactly.
    assert re.search(r"(?<!\\)\\(input|write18)", md) is None, md
    title = next(ln for ln in md.splitlines() if ln.startswith("# Backpropagation for "))
    assert re.sub(r"\\(.)", r"\1", title.removeprefix("# Backpropagation for ")) == spec["name"]


def test_outputs_are_deterministic_across_processes():
    """Renders in this process equal renders in a fresh process with another hash seed (set order, caches)."""
    code = ("import sys; from symbackprop import derive; from symbackprop.render import documents; d = derive(sys.argv[1], verify=False); "
            "sys.stdout.write(documents.tex(d) + '\\0' + documents.markdown(d, 'aima'))")
    env = dict(os.environ, PYTHONHASHSEED="4242")
    out = subprocess.run([sys.executable, "-c", code, str(SEED)], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    here = derive(SEED, verify=False)
    assert out == documents.tex(here) + "\0" + documents.markdown(here, "aima")


def test_markdown_uses_display_math(seed):
    md = documents.markdown(seed)
    assert md.count("$$") % 2 == 0 and "\\begin{aligned}" in md and "tikzpicture" not in md
    assert md.startswith("<!--") and "# Backpropagation for seed-one-hidden" in md
    assert "appendix.md" in md and "Appendix: notation" not in md  # the appendix is the companion file's
    companion = documents.markdown_appendix(seed)
    assert companion.count("$$") % 2 == 0 and "## Appendix: notation" in companion
    assert "## Appendix: batch form" in companion and "## Appendix: verification" in companion
    rows = [ln for ln in companion.splitlines() if ln.startswith("|")]
    assert rows and all(ln.replace("\\|", "").count("|") == 4 for ln in rows)  # three columns, no stray pipes


def test_jupyter_reprs(seed):
    assert seed._repr_markdown_().count("$$") >= 2
    latex = seed._repr_latex_()
    assert latex.startswith("$$") and latex.endswith("$$") and r"\delta" in latex
    aima = derive({"inputs": 1, "layers": [{"units": 2, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
                   "loss": "half_sse", "notation": "aima"}, verify=False)
    assert aima._repr_latex_().count("$") == 4  # labels with math stay inside the one display


def test_notation_override_from_spec():
    d = derive({"inputs": 1, "layers": [{"units": 1, "activation": "sigmoid"}], "loss": "half_sse",
                "notation": {"profile": "seed", "loss": "C"}}, verify=False)
    tex = documents.tex(d)
    assert r"\frac{\partial C}{\partial W^{(1)}}" in tex and r"\partial L" not in tex


# ----------------------------------------------------------------------------- CLI


def test_cli_writes_documents_without_pdf(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["derive", str(SEED), "-o", str(out), "--no-pdf", "--no-verify"]) == 0
    assert (out / "derivation.tex").is_file() and (out / "derivation.md").is_file()
    assert not (out / "derivation.pdf").exists()


def test_cli_pdf_required_without_engine_fails_clearly(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(documents, "PDFLATEX", "no-such-pdflatex-engine")
    code = main(["derive", str(SEED), "-o", str(tmp_path / "o"), "--pdf", "--no-verify"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("symbackprop: error:") and "pdflatex" in err[0]
    assert not (tmp_path / "o" / "derivation.tex").exists()


def test_cli_notation_flag(tmp_path):
    out = tmp_path / "aima"
    assert main(["derive", str(SEED), "-o", str(out), "--no-pdf", "--no-verify", "--notation", "aima"]) == 0
    assert r"\Delta_{k}" in (out / "derivation.tex").read_text()


# ----------------------------------------------------------------------------- PDF


def ink_on_page_one(pdf: bytes, tmp_path: Path) -> float:
    """Fraction of non-white pixels on page 1 (rendered by pdftoppm as PGM, read with NumPy)."""
    src = tmp_path / "doc.pdf"
    src.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-gray", "-r", "40", "-f", "1", "-l", "1", str(src), str(tmp_path / "page")],
                   check=True)
    page = next(tmp_path.glob("page*.pgm")).read_bytes()
    fields = page.split(maxsplit=4)  # P5 width height maxval pixels
    assert fields[0] == b"P5"
    width, height = int(fields[1]), int(fields[2])
    pixels = np.frombuffer(fields[4][-width * height:], dtype=np.uint8)
    return float(np.mean(pixels < 200))


@pytest.mark.pdf
@pytest.mark.skipif(not HAS_TEX, reason="pdflatex/pdftoppm not installed")
@pytest.mark.parametrize("example", ["seed_2_3_1.yaml", "classifier_4_5_3.yaml", "xor.yaml", "deep_mixed.toml"])
def test_examples_compile_to_pdf_with_ink_and_no_overfull_boxes(example, tmp_path):
    d = derive(ROOT / "examples" / example, verify=False)
    pdf, log = documents.compile_pdf_with_log(documents.tex(d))
    assert pdf.startswith(b"%PDF")
    assert "Overfull" not in log, [ln for ln in log.splitlines() if "Overfull" in ln]
    assert ink_on_page_one(pdf, tmp_path) > 0.005


@pytest.mark.pdf
@pytest.mark.skipif(not HAS_TEX, reason="pdflatex not installed")
def test_pdf_is_reproducible(seed):
    source = documents.tex(seed, "aima")
    assert documents.compile_pdf(source) == documents.compile_pdf(source)


@pytest.mark.pdf
@pytest.mark.skipif(not HAS_TEX, reason="pdflatex not installed")
def test_blank_page_is_detected(tmp_path):
    """The ink check can fail: an empty document has (almost) no ink."""
    pdf = documents.compile_pdf("\\documentclass{article}\\begin{document}\\mbox{}\\end{document}\n")
    assert ink_on_page_one(pdf, tmp_path) < 0.001


WIDE = {"name": "wide", "inputs": 16, "layers": [{"units": 32, "activation": "relu"},
                                                  {"units": 10, "activation": "softmax"}],
        "loss": "categorical_cross_entropy"}


def test_diagram_shows_ellipses_for_wide_layers_and_labels_only_small_nets(seed):
    wide = documents.tex(derive(WIDE, verify=False))
    diagram = wide[wide.index(r"\begin{tikzpicture}"):wide.index(r"\end{tikzpicture}")]
    assert diagram.count(r"\vdots") == 3 and "node[weight" not in diagram
    assert diagram.count("node[unit]") == 5 * 3  # first three and last two units of each layer
    small = documents.tex(seed)
    assert small.count("node[weight") == 9  # every weight of the 2-3-1 net is labelled


@pytest.mark.pdf
@pytest.mark.skipif(not HAS_TEX, reason="pdflatex not installed")
def test_wide_network_document_compiles_without_overfull_boxes(tmp_path):
    d = derive(WIDE, verify=False)
    source = documents.tex(d)
    assert representatives(source) == 2 and "Parameter $" not in source  # 874 parameters: representatives only
    pdf, log = documents.compile_pdf_with_log(source)
    assert "Overfull" not in log
    assert ink_on_page_one(pdf, tmp_path) > 0.005
