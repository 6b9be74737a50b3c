"""The "Worked example" section of layer-graph documents (render/documents_graph_worked.py).

The numbers are read back from the rendered Markdown and LaTeX and compared with the
generated model.py's forward pass, loss, gradients and one train_step (generated into
tmp_path from the same spec, run with the same parameters and masks): the printed values
must agree to the 8 significant digits they are printed with.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from symbackprop.codegen.graph_code import graph_outputs
from symbackprop.engine.layergraph import LayerDerivation
from symbackprop.render import documents_graph
from symbackprop.render.documents_graph_worked import WIDE, matrix
from symbackprop.render.notation import PROFILE_NAMES
from symbackprop.spec import from_dict, load, read_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SEEDED = {"inputs": 3, "layers": [{"units": 4, "activation": "tanh"}, {"type": "dropout", "rate": 0.5},
                                  {"type": "layernorm"}, {"units": 2, "activation": "sigmoid"}],
          "loss": "binary_cross_entropy", "regularization": {"l2": 0.01},
          "example": {"x": [[0.1, 0.2, 0.3], [-1.0, 0.5, 2.0]], "t": [[1, 0], [0, 1]], "seed": 4}}

CASES = {"batchnorm": lambda: load(EXAMPLES / "batchnorm.yaml"),
         "dropout": lambda: load(EXAMPLES / "dropout.yaml"),
         "seeded": lambda: from_dict(SEEDED)}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    d = LayerDerivation(CASES[request.param]())
    folder = tmp_path_factory.mktemp(f"doc_worked_{request.param}")
    for name, data in graph_outputs(d).items():
        (folder / name).write_bytes(data)
    spec = importlib.util.spec_from_file_location(f"doc_worked_model_{request.param}", folder / "model.py")
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    return d, model


def section_of(text: str, start: str, end: str | None) -> str:
    body = text[text.index(start):]
    return body if end is None or end not in body else body[:body.index(end)]


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?: \\times 10\^\{-?\d+\})?")


def numbers(tex: str) -> np.ndarray:
    """The numbers of one printed matrix, row-major."""
    body = re.search(r"\\begin\{(?:p|small)matrix\}(.*?)\\end\{(?:p|small)matrix\}", tex).group(1)
    values = []
    for text in NUMBER.findall(body):
        mant, _, exp = text.partition(r" \times 10^")
        values.append(float(mant) * (10.0 ** int(exp.strip("{}")) if exp else 1.0))
    return np.array(values)


def printed(md: str, symbol: str) -> list[np.ndarray]:
    """Every matrix printed in a table row that starts with ``symbol`` (Markdown), in order."""
    rows = [line for line in md.splitlines() if line.startswith(f"| ${symbol}$ |")]
    return [numbers(row.split("|")[2]) for row in rows]


def close(a, b):
    """Agreement to the 8 significant digits printed."""
    np.testing.assert_allclose(np.ravel(a), np.ravel(b), rtol=6e-8, atol=1e-300)


def model_step(d, model):
    from symbackprop.engine.worked_graph import example_inputs

    X, T, params, masks = example_inputs(d)
    mm = {f"mask{i}": m for i, m in masks.items()} or None
    out, cache = model.forward(params, X, mm)
    grads = model.gradients(params, X, T, mm)
    loss = model.loss(params, X, T, mm)
    after, running = {k: v.copy() for k, v in params.items()}, model.init_running()
    model.train_step(after, X, T, mm, model.init_state(after), running)
    return X, params, masks, out, cache, grads, loss, after, running


def test_markdown_numbers_are_model_py_s(case):
    d, model = case
    X, params, masks, out, cache, grads, loss, after, running = model_step(d, model)
    md = documents_graph.markdown(d)
    worked = section_of(md, "## Worked example", None)
    assert worked.count("## ") == 1  # the last section
    L = d.network.depth
    close(printed(worked, r"\mathbf{X}")[0], X)
    close(printed(worked, rf"\mathbf{{a}}^{{({L})}}")[0], out)
    for i, mask in masks.items():
        assert printed(worked, rf"\mathbf{{m}}^{{({i})}}")[0].tolist() == mask.ravel().tolist()
    close(numbers(r"\begin{pmatrix}" + re.search(r"so \$L\$ is \$([^$]*)\$", worked).group(1) + r"\end{pmatrix}"), loss)
    for node in d.network.nodes:
        for p in node.params:
            name, stem = node.param_name(p), p.stem
            symbol = {"W": "W", "b": "b", "gamma": r"\gamma", "beta": r"\beta"}[stem] + f"^{{({node.index})}}"
            before, now = printed(worked, symbol)
            close(before, params[name])
            close(now, after[name])
            close(printed(worked, rf"\partial L / \partial {symbol}")[0], grads[name])
    for key, values in running.items():
        l = key.lstrip("meanvr")
        symbol = (rf"\mu^{{({l})}}_{{\text{{run}}}}" if key.startswith("mean")
                  else rf"\sigma^{{2\,({l})}}_{{\text{{run}}}}")
        close(printed(worked, symbol)[0], values)
    for l in range(1, L + 1):
        if f"z{l}" in cache:
            close(printed(worked, rf"\mathbf{{z}}^{{({l})}}")[0], cache[f"z{l}"])


def test_latex_prints_the_same_numbers_in_a_wide_table(case):
    d, _ = case
    md = section_of(documents_graph.markdown(d), "## Worked example", None)
    tex = section_of(documents_graph.tex(d), r"\section{Worked example}", r"\end{document}")
    assert tex.count(r"p{0.71\textwidth}") == 4  # four tables of numbers, the matrix column widened
    md_matrices = re.findall(r"\\begin\{(?:p|small)matrix\}.*?\\end\{(?:p|small)matrix\}", md)
    tex_matrices = re.findall(r"\\begin\{(?:p|small)matrix\}.*?\\end\{(?:p|small)matrix\}", tex)
    assert md_matrices == tex_matrices and len(md_matrices) > 10


@pytest.mark.parametrize("notation", PROFILE_NAMES)
def test_every_profile_renders_the_section(notation):
    d = LayerDerivation(load(EXAMPLES / "dropout.yaml"))
    md = documents_graph.markdown(d, notation)
    assert "## Worked example" in md and "-0 " not in md and "-0 &" not in md
    assert "The starting parameters are the spec's; the dropout mask of layer 2 is the spec's (1 keeps" in md


def test_no_example_no_section():
    d = LayerDerivation(load(EXAMPLES / "layernorm.yaml"))
    assert "Worked example" not in documents_graph.markdown(d)


def test_drawn_parameters_and_masks_say_how():
    md = documents_graph.markdown(LayerDerivation(from_dict(SEEDED))).replace("\\_", "_")
    assert "The starting parameters are those model.py's init_params(4) returns" in md
    assert "the dropout mask of layer 2 is the one model.py's draw_masks(np.random.default_rng(4), 2) draws" in md
    assert "the weight decay" in md


def test_matrix_text_and_small_when_wide():
    assert matrix([[1.0, -0.0], [0.5, 2.0]]) == r"\begin{pmatrix} 1 & 0 \\ 0.5 & 2 \end{pmatrix}"
    assert matrix([0.25, 1e-9]) == r"\begin{pmatrix} 0.25 & 1 \times 10^{-9} \end{pmatrix}"
    wide = matrix([[-0.012345678] * 6])
    assert wide.startswith(r"\left(\begin{smallmatrix}") and len("-0.012345678") * 6 > WIDE


def test_batchnorm_example_is_a_batch_of_three():
    ex = read_file(EXAMPLES / "batchnorm.yaml")["example"]
    assert len(ex["x"]) == 3 and len(ex["t"]) == 3
