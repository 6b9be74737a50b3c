"""Documents of layer graphs: every profile renders, batch normalization's two forms are shown equal.

The algebra from the batch-normalization paper's per-path equations to the
compact form is checked row by row with SymPy on concrete batches: each row
must equal ``sp.diff`` of the registry's forward definition (dE/dx), or the
paper's dE/dmu_B and dE/dsigma^2_B from the registry's ``per_path``.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import sympy as sp

from symbackprop.engine.layergraph import LayerDerivation
from symbackprop.registry.layers import KINDS
from symbackprop.registry.layers import batchnorm as bn
from symbackprop.render import documents, documents_graph
from symbackprop.render import documents_graph_bn as bn_algebra
from symbackprop.render.notation import PROFILE_NAMES
from symbackprop.spec import load

MIXED = {
    "inputs": 4,
    "layers": [
        {"units": 5, "activation": "relu"},
        {"type": "batchnorm", "epsilon": 1.0e-5},
        {"type": "dropout", "rate": 0.5},
        {"units": 5, "activation": "tanh"},
        {"type": "layernorm", "epsilon": 1.0e-5},
        {"type": "residual", "from": 1},
        {"units": 3, "activation": "softmax"},
    ],
    "loss": "categorical_cross_entropy",
    "regularization": {"l2": 1.0e-4},
}


def alone(kind: str) -> dict:
    """A small net with one layer of ``kind`` before a dense output layer."""
    first = [{"units": 3, "activation": "tanh"}]
    layer = {"batchnorm": {"type": "batchnorm"}, "layernorm": {"type": "layernorm"},
             "dropout": {"type": "dropout", "rate": 0.25}, "residual": {"type": "residual", "from": 0},
             "dense": {"units": 3, "activation": "sigmoid"}}[kind]
    return {"inputs": 3, "layers": [*first, layer, {"units": 2, "activation": "sigmoid"}],
            "loss": "binary_cross_entropy", "batch_size": 8}


SPECS = {"mixed": MIXED, **{k: alone(k) for k in KINDS},
         "one_unit": {"inputs": 1, "layers": [{"type": "batchnorm"}, {"units": 1, "activation": "identity"}],
                      "loss": "half_sse", "optimizer": {"name": "momentum"}, "batch_size": 4},
         "adam_mse": {"inputs": 2, "layers": [{"units": 2, "activation": "relu"}, {"type": "layernorm"},
                                              {"units": 2, "activation": "identity"}],
                      "loss": "mse", "optimizer": {"name": "adam"}, "regularization": {"l2": 0.01}},
         "odd": {"name": "odd_net #1 & {co} $x$", "inputs": 2,
                 "layers": [{"units": 2, "activation": {"name": "leaky_relu", "alpha": 0.2}},
                            {"type": "dropout", "rate": 0.1}, {"units": 2, "activation": {"expr": "x*sigmoid(x)"}},
                            {"units": 1, "activation": "sigmoid"}],
                 "loss": "binary_cross_entropy", "regularization": {"l2": 0.5}}}


def derivation(name: str) -> LayerDerivation:
    return LayerDerivation(load(SPECS[name]))


@pytest.fixture(scope="module")
def rendered():
    out = {}
    for name in SPECS:
        d = derivation(name)
        for prof in PROFILE_NAMES:
            out[name, prof] = (documents_graph.tex(d, prof), documents_graph.markdown(d, prof))
    return out


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("prof", PROFILE_NAMES)
def test_every_profile_renders(rendered, name, prof):
    tex, md = rendered[name, prof]
    for text in (tex, md):
        assert text.isascii()
        assert "Sum(" not in text and "Piecewise(" not in text
        assert not re.search(r"\{(delta|fprime|skip|gx)\}", text), "unfilled placeholder"
        assert "<x>" not in text and "<g>" not in text and "<B>" not in text
        assert "1,\\ldots,1" not in text and "j = 1,...,1" not in text
    assert tex.count(r"\begin{align*}") == tex.count(r"\end{align*}")
    assert tex.count("{") == tex.count("}")
    assert "```text" in md  # the plain-text diagram
    net = load(SPECS[name])
    for pname, *_ in net.parameter_shapes():  # W1, b1, gamma2, ... as in code and JSON
        assert re.search(rf"\b{pname}\b", tex) and re.search(rf"\b{pname}\b", md)


def test_results_come_first(rendered):
    tex, _ = rendered["mixed", "seed"]
    order = [tex.index(s) for s in (r"\begin{tikzpicture}", r"\section{Forward pass}", r"\section{Backpropagation}",
                                    r"\section{Updates}", r"\section{Verification}",
                                    r"\section{Derivation: batch normalization}")]
    assert order == sorted(order)


def test_profiles_use_their_symbols(rendered):
    wiki, _ = rendered["mixed", "wikipedia"]
    assert r"w^{(1)}_{kj}" in wiki and r"\mathrm{net}^{(1)}_{ij}" in wiki and r"\varphi_{1}" in wiki
    aima, _ = rendered["mixed", "aima"]
    assert r"w^{(1)}_{k,j}" in aima and "u^{(2)}_{ij}" in aima and "g^{(2)}_{ij}" not in aima
    bishop, _ = rendered["mixed", "bishop"]
    assert r"z^{(2)}_{ij} = \gamma^{(2)}_j" in bishop  # bishop's z is a layer's output
    seed, _ = rendered["mixed", "seed"]
    assert r"\operatorname{ReLU}'\left(z^{(1)}_{ij}\right)" in seed


def test_paths_add_where_a_layer_feeds_two(rendered):
    seed, _ = rendered["mixed", "seed"]
    assert r"g^{(1)}_{ij} &= g^{(1 \leftarrow 2)}_{ij} + g^{(1 \leftarrow 6)}_{ij}" in seed
    assert r"g^{(1 \leftarrow 6)}_{ij} &= g^{(6)}_{ij}" in seed


def test_weight_decay_shown(rendered):
    seed, _ = rendered["mixed", "seed"]
    assert r"\lambda \, W^{(1)}_{jk}" in seed and r"(1 - \alpha \lambda)" in seed
    plain, _ = rendered["batchnorm", "seed"]
    assert r"\lambda" not in plain


def filled(text: str, x="a^{(1)}", g="g^{(2)}") -> str:
    return bn_algebra.fill(text, x, g, "L", "B").replace(r"\gamma_j", r"\gamma^{(2)}_j")


def test_batchnorm_document_shows_both_forms_and_their_equality(rendered):
    seed, md = rendered["mixed", "seed"]
    doc = KINDS["batchnorm"].doc
    values = {"x": "a^{(1)}", "y": "a^{(2)}", "g": "g^{(2)}", "E": "L", "B": "B"}
    for eq in doc.backward:  # the paper's four equations and the compact form, as the registry writes them
        want = eq.format(**values).replace(r"\gamma_j", r"\gamma^{(2)}_j")
        for part in want.split(r", \quad "):
            assert part.split(" = ", 1)[1] in seed, part
    assert "per-path equations of the paper" in seed and "compact form" in seed
    assert "The two forms are equal" in seed and "The two forms are equal" in md
    for step in bn_algebra.STEPS:
        for piece in filled(step.rhs).split(r" \\ &\qquad "):
            assert piece in seed, step.rhs
    assert filled(bn_algebra.STEPS[-1].rhs) in seed


# ----------------------------------------------------------------------------- SymPy checks of the algebra


def _batch(B: int):
    x = sp.Matrix(B, 1, lambda i, j: sp.Symbol(f"x{i}", real=True))
    g = sp.Matrix(B, 1, lambda i, j: sp.Symbol(f"g{i}", real=True))
    gamma, eps = sp.Symbol("gamma", real=True), sp.Symbol("epsilon", positive=True)
    params = {"gamma": sp.Matrix([gamma]), "beta": sp.Matrix([sp.Symbol("beta", real=True)])}
    return x, g, gamma, eps, params


def _same(a: sp.Expr, b: sp.Expr, batch: bn_algebra.Batch) -> bool:
    """Equal as functions of the batch: with sigmahat = s (eps = s^2 - var), a rational identity."""
    s = sp.Symbol("s", positive=True)
    return sp.cancel(sp.sympify(a - b).subs(batch.eps, s ** 2 - batch.var)) == 0


def _references(B: int):
    x, g, gamma, eps, params = _batch(B)
    opts = {"epsilon": eps}
    y = bn.forward([x], params, opts)
    E = sp.Add(*(g[i] * y[i] for i in range(B)))  # dE/dy = g
    _, dvar, dmu, dx_paper = bn.per_path(g, [x], params, opts)
    (dx_compact,), _ = bn.backward(g, [x], params, opts)
    batch = bn_algebra.Batch(tuple(x), tuple(g), gamma, eps)
    truth = [sp.diff(E, x[i]) for i in range(B)]
    return batch, truth, dvar[0], dmu[0], dx_paper, dx_compact


@pytest.mark.parametrize("B", [3, 4])
def test_every_algebra_row_equals_its_left_hand_side(B):
    batch, truth, dvar, dmu, dx_paper, dx_compact = _references(B)
    reference = {"zero": lambda i: sp.Integer(0), "dvar": lambda i: dvar, "dmu": lambda i: dmu,
                 "dx": lambda i: truth[i]}
    for i in range(B):  # the registry's two forms are the derivative of its forward definition
        assert _same(dx_paper[i], truth[i], batch) and _same(dx_compact[i], truth[i], batch)
    for step in bn_algebra.STEPS:
        for i in range(B):
            assert _same(step.value(batch, i), reference[step.quantity](i), batch), (step.rhs, i)
    # the first rows are the paper's equations as the registry has them, the last is the compact form
    assert all(_same(bn_algebra.STEPS[n].value(batch, 0), v, batch)
               for n, v in ((2, dmu), (5, dvar)))
    assert all(_same(bn_algebra.STEPS[-1].value(batch, i), dx_compact[i], batch) for i in range(B))


def test_a_wrong_row_is_caught():
    """The check can fail: the variance path without its -1/2 differs from the derivative."""
    batch, truth, *_ = _references(3)
    wrong = bn_algebra.STEPS[5].value(batch, 0) * -2
    assert not _same(wrong, bn_algebra.STEPS[5].value(batch, 0), batch)
    row = bn_algebra.STEPS[-1].value(batch, 0)
    assert not _same(row + batch.g[1] * batch.gamma / batch.sig / 3, truth[0], batch)


def test_algebra_quantities_are_in_order():
    assert [s.quantity for s in bn_algebra.STEPS] == ["zero"] * 2 + ["dmu"] * 3 + ["dvar"] * 2 + ["dx"] * 4
    assert all(s.lhs for n, s in enumerate(bn_algebra.STEPS) if n in (0, 2, 5, 7))


# ----------------------------------------------------------------------------- dispatch and PDF


def test_document_outputs_dispatches_layer_graphs():
    args = SimpleNamespace(notation=None, per_weight="auto", pdf=False, progress=None)
    files = documents.document_outputs(derivation("mixed"), args)
    assert set(files) == {"derivation.tex", "derivation.md"}
    assert b"(a graph of layers)" in files["derivation.tex"]
    assert b"Derivation: batch normalization" in files["derivation.md"]


def test_verification_line_is_read_from_the_derivation():
    d = derivation("dropout")
    assert "Not verified" in documents_graph.markdown(d)
    d.verification = SimpleNamespace(headline=lambda: "Verified: 3 tiers passed on 31 checks.")
    md = documents_graph.markdown(d)
    assert "Verified: 3 tiers passed on 31 checks." in md and "Not verified" not in md


@pytest.mark.slow
def test_derive_of_the_issue_example_documents_its_verification():
    from pathlib import Path

    from symbackprop.engine.derive import derive

    d = derive(Path(__file__).resolve().parents[2] / "examples" / "mixed_layers.yaml")
    assert isinstance(d, LayerDerivation) and d.verification is not None
    md = documents_graph.markdown(d)
    assert md.count(d.verification.headline()) == 2  # in the summary and in its section
    assert "Backpropagation for mixed-layers" in md


@pytest.mark.slow
@pytest.mark.skipif(documents.tex_engine() is None, reason="pdflatex is not installed")
@pytest.mark.parametrize(("name", "prof"), [("mixed", "seed"), ("mixed", "aima"), ("one_unit", "wikipedia"),
                                            ("adam_mse", "bishop"), ("odd", "seed")])
def test_tex_compiles(rendered, name, prof):
    pdf, log = documents.compile_pdf_with_log(rendered[name, prof][0])
    assert pdf.startswith(b"%PDF")
    assert "Undefined control sequence" not in log


# ----------------------------------------------------------------------------- output layer rows


def test_softmax_cross_entropy_rows_hold():
    """Each printed row of the output-layer derivation, checked with SymPy for 3 outputs (one sample)."""
    n, B = 3, sp.Symbol("B", positive=True)
    z = sp.symbols("z1:4", real=True)
    t = list(sp.symbols("t1:3", positive=True))
    t.append(1 - t[0] - t[1])  # targets sum to one
    e = [sp.exp(zk) for zk in z]
    a = [ek / sp.Add(*e) for ek in e]
    A = sp.symbols("a1:4", positive=True)
    E_of_a = sp.Add(*(-tk * sp.log(ak) for tk, ak in zip(t, A))) / B
    for k in range(n):
        assert sp.simplify(sp.diff(E_of_a, A[k]) - (-t[k] / (B * A[k]))) == 0  # row 1
        for j in range(n):
            iverson = 1 if j == k else 0
            assert sp.simplify(sp.diff(a[k], z[j]) - a[k] * (iverson - a[j])) == 0  # row 2
    E = sp.Add(*(-tk * sp.log(ak) for tk, ak in zip(t, a))) / B
    for j in range(n):
        truth = sp.diff(E, z[j])
        rows = [sp.Add(*(-t[k] / (B * a[k]) * a[k] * ((1 if j == k else 0) - a[j]) for k in range(n))),
                -sp.Add(*(t[k] * ((1 if j == k else 0) - a[j]) for k in range(n))) / B,
                (-t[j] + a[j] * sp.Add(*t)) / B,
                (a[j] - t[j]) / B]
        for row in rows:
            assert sp.simplify(row - truth) == 0


def test_output_layer_section_names_the_steps(rendered):
    seed, _ = rendered["mixed", "seed"]
    for label in ("softmax Jacobian", "chain rule over every output", "only $k = j$ keeps $[j = k]$",
                  "targets sum to one"):
        assert label in seed
    bce, _ = rendered["batchnorm", "seed"]
    assert r"\sigma' = \sigma (1 - \sigma)" in bce


def test_sigmoid_binary_cross_entropy_rows_hold():
    B, z, t = sp.Symbol("B", positive=True), sp.Symbol("z", real=True), sp.Symbol("t", positive=True)
    A = sp.Symbol("a", positive=True)
    E_of_a = -(t * sp.log(A) + (1 - t) * sp.log(1 - A)) / B
    row1 = (-t / A + (1 - t) / (1 - A)) / B
    assert sp.simplify(sp.diff(E_of_a, A) - row1) == 0
    assert sp.simplify(row1 - (A - t) / (B * A * (1 - A))) == 0
    a = 1 / (1 + sp.exp(-z))
    assert sp.simplify(sp.diff(a, z) - a * (1 - a)) == 0
    assert sp.simplify(sp.diff(E_of_a.subs(A, a), z) - (a - t) / B) == 0
