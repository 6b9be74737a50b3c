"""No raw SymPy in any written file; the readable printer against textbook forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sympy as sp

from symbackprop.cli import main
from symbackprop.codegen.comments import Comments
from symbackprop.engine import general
from symbackprop.render.notation import profile
from symbackprop.render.plain import plain, unicode_math

ROOT = Path(__file__).resolve().parents[2]
RAW = re.compile(r"\b(Sum|Piecewise|KroneckerDelta|Derivative)\(")
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".yaml", ".yml", ".toml", ".json"))
DENSE = {"seed_2_3_1", "xor", "classifier_4_5_3", "deep_mixed"}

SPECS = {
    "relu": {"inputs": 2, "layers": [{"units": 3, "activation": "relu"}, {"units": 1, "activation": "identity"}],
             "loss": "mse", "notation": "wikipedia"},
    "leaky_relu": {"inputs": 2, "layers": [{"units": 2, "activation": "leaky_relu"},
                                           {"units": 2, "activation": "sigmoid"}],
                   "loss": "binary_cross_entropy", "notation": "aima"},
    "elu": {"inputs": 3, "layers": [{"units": 2, "activation": "elu"}, {"units": 1, "activation": "tanh"}],
            "loss": "half_sse", "notation": "bishop"},
    "custom": {"inputs": 2, "layers": [{"units": 2, "activation": {"expr": "x*sigmoid(x)"}},
                                       {"units": 1, "activation": "sigmoid"}], "loss": "mse"},
    "softmax": {"inputs": 3, "layers": [{"units": 4, "activation": "tanh"}, {"units": 3, "activation": "softmax"}],
                "loss": "categorical_cross_entropy"},
}


def _raw_in(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".pdf":  # compressed streams; its text is derivation.tex
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if RAW.search(line):
                found.append(f"{path.name}:{n}: {line.strip()[:120]}")
    return found


def _derive(spec, out: Path, *extra: str) -> None:
    assert main(["derive", str(spec), "-o", str(out), "--no-pdf", "--verify", "none", *extra]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("spec", [pytest.param(p, id=p.stem)
                                  for p in EXAMPLES])
def test_no_raw_sympy_in_any_file_of_an_example(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    _derive(spec.relative_to(ROOT), tmp_path / "out")
    assert _raw_in(tmp_path / "out") == []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("target", ["numpy", "scalar", "array-api"])
def test_no_raw_sympy_for_kinked_custom_and_softmax_specs(name, target, tmp_path):
    import yaml

    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({"name": name, **SPECS[name]}))
    _derive(spec, tmp_path / "out", "--target", target)
    assert _raw_in(tmp_path / "out") == []


def test_the_committed_generated_files_have_no_raw_sympy():
    for folder in sorted((ROOT / "generated").iterdir()):
        if folder.is_dir():
            assert _raw_in(folder) == [], folder.name


def test_readable_forms_of_sums_cases_derivatives_and_kronecker():
    k, j = general.K, general.J
    W, a = general.base("W", 2), general.base("a", 1)
    E, z = sp.Symbol("E"), sp.Symbol("z1_1")
    assert plain(sp.Sum(W[k, j] * a[k], (k, 1, 3))) == "Σ_{k=1..3} W2[k, j]*a1[k]"
    assert plain(sp.Piecewise((0, z <= 0), (1, True))) == "(0 if z1_1 <= 0 else 1)"
    assert plain(sp.Derivative(E, z)) == "∂E/∂z1_1"
    assert plain(sp.KroneckerDelta(j, k)) == "[j = k]"
    seed = profile("seed")
    assert unicode_math(sp.Sum(W[k, j] * a[k], (k, 1, 3)), seed) == "Σₖ W⁽²⁾ₖⱼ a⁽¹⁾ₖ"
    assert unicode_math(general.base("delta", 2)[j], seed) == "δ⁽²⁾ⱼ"


@pytest.mark.parametrize("name, z, a, weight", [
    ("seed", "z⁽¹⁾ⱼ", "a⁽¹⁾ⱼ", "W⁽²⁾ₖⱼ"),       # W^{(l)}_{jk}: to j from k
    ("wikipedia", "net⁽¹⁾ⱼ", "o⁽¹⁾ⱼ", "w⁽²⁾ⱼₖ"),  # net_j, o_j, w_{kj} from k to j (here from j to k)
    ("aima", "in⁽¹⁾ⱼ", "a⁽¹⁾ⱼ", "w⁽²⁾ⱼ,ₖ"),      # in_j, a_j, w_{j,k}
    ("bishop", "a⁽¹⁾ⱼ", "z⁽¹⁾ⱼ", "w⁽²⁾ₖⱼ"),      # PRML 5.3: a_j pre-activation, z_j = h(a_j)
])
def test_code_comments_speak_the_profile(name, z, a, weight):
    from symbackprop import derive

    d = derive({"name": "p", "inputs": 2, "layers": [{"units": 2, "activation": "tanh"},
                                                     {"units": 1, "activation": "sigmoid"}],
                "loss": "binary_cross_entropy"}, verify=False)
    c = Comments(d, name)
    assert c.equation("z", 1).startswith(f"{z} = ")
    assert c.equation("a", 1) == f"{a} = tanh({z})"
    assert weight in c.equation("delta", 1) and "Σₖ" in c.equation("delta", 1)
    header = "\n".join(c.header())
    assert "z{l}[:, j]" in header and z.replace("⁽¹⁾", "⁽ˡ⁾").replace("ⱼ", "ⱼ₊₁") in header
    assert ("Δ" in header) == (name == "aima")  # aima's Delta = -delta is spelled out


def test_gradients_txt_per_layer_entries_are_textbook_recursions():
    """Above the listing size gradients.txt gives each layer's index form: the Wikipedia recursion
    delta_j = phi'(net_j) sum_k w_{jk} delta_k (here tanh: 1 - o_j^2) and dE/dw_{kj} = o_k delta_j."""
    from symbackprop import derive
    from symbackprop.render.textreport import gradients_text

    d = derive({"name": "wide", "inputs": 8, "layers": [{"units": 8, "activation": "tanh"},
                                                         {"units": 2, "activation": "identity"}],
                "loss": "half_sse", "notation": "wikipedia"}, verify=False)
    text = gradients_text(d)
    assert "δ⁽¹⁾ⱼ = (1 - o⁽¹⁾ⱼ²) Σₖ w⁽²⁾ⱼₖ δ⁽²⁾ₖ" in text
    assert "∂E/∂w⁽²⁾ₖⱼ = o⁽¹⁾ₖ δ⁽²⁾ⱼ" in text and "δ⁽²⁾ⱼ = o⁽²⁾ⱼ - tⱼ" in text
    assert not RAW.search(text)
