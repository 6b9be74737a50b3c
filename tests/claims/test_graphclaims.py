"""claims.graphclaims: claims in the graph documents' notation, judged on the spec's whole network.

Truth: the engine's forward and gradients (LayerDerivation) at random points, checked here against
the staged forward and central finite differences; each claim below is a textbook identity (right)
or that identity with one typical mistake (wrong), written by hand, never copied from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from symbackprop.claims.graphclaims import GraphScene, graph_scenes
from symbackprop.claims.layers import claim_target, judge_layers, layer_context

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = ("batchnorm", "dropout", "layernorm", "mixed_layers", "residual", "weight_decay")


def _ctx(name: str, notation: str = "seed"):
    return layer_context(claim_target(str(ROOT / "examples" / f"{name}.yaml")), notation)


@pytest.mark.parametrize("name", GRAPHS)
def test_scenes_agree_with_the_engine(name):
    """Building a scene checks the staged forward and loss against the engine and the engine's
    parameter gradients against finite differences (GraphSceneError otherwise)."""
    scenes = graph_scenes(claim_target(str(ROOT / "examples" / f"{name}.yaml")).network)
    assert {s.B for s in scenes} == {3, 4} and all(isinstance(s, GraphScene) for s in scenes)


RIGHT_WRONG = [
    ("batchnorm",
     (r"\frac{\partial L}{\partial \sigma^2_{B,j}} = \sum_{i=1}^{B} \frac{\partial L}{\partial \hat{x}_{ij}} "
      r"\left(a^{(1)}_{ij} - \mu_{B,j}\right) \cdot \left(-\frac{1}{2}\right) \left(\sigma^2_{B,j} + \epsilon\right)^{-3/2}"),
     (r"\frac{\partial L}{\partial \sigma^2_{B,j}} = \sum_{i=1}^{B} \frac{\partial L}{\partial \hat{x}_{ij}} "
      r"\left(a^{(1)}_{ij} - \mu_{B,j}\right) \left(\sigma^2_{B,j} + \epsilon\right)^{-3/2}")),
    ("batchnorm", r"\frac{\partial L}{\partial \beta^{(2)}_j} = \sum_{b=1}^{B} g^{(2)}_{bj}",
     r"\frac{\partial L}{\partial \beta^{(2)}_j} = \frac{1}{B} \sum_{b=1}^{B} g^{(2)}_{bj}"),
    ("weight_decay", r"\frac{\partial L}{\partial W^{(1)}_{jk}} = \sum_{b=1}^{B} \delta^{(1)}_{bj} x_{bk} + \lambda W^{(1)}_{jk}",
     r"\frac{\partial L}{\partial W^{(1)}_{jk}} = \sum_{b=1}^{B} \delta^{(1)}_{bj} x_{bk}"),
    ("weight_decay", r"\frac{\partial L}{\partial W^{(1)}} = \boldsymbol{\delta}^{(1)\top} \, \mathbf{X} + \lambda \, W^{(1)}",
     r"\frac{\partial L}{\partial W^{(1)}} = \boldsymbol{\delta}^{(1)\top} \, \mathbf{X}"),
    ("dropout", r"g^{(1)}_{ij} = \frac{m_{ij}}{1 - p} \, g^{(2)}_{ij}", r"g^{(1)}_{ij} = m_{ij} \, g^{(2)}_{ij}"),
    ("mixed_layers", r"g^{(1)}_{ij} = g^{(1 \leftarrow 2)}_{ij} + g^{(1 \leftarrow 6)}_{ij}",
     r"g^{(1)}_{ij} = g^{(1 \leftarrow 2)}_{ij}"),
    ("mixed_layers", r"\frac{\partial a^{(6)}_{ij}}{\partial a^{(1)}_{ij}} = 1", r"\frac{\partial a^{(6)}_{ij}}{\partial a^{(1)}_{ij}} = 2"),
    ("layernorm", r"\mu_{i} = \frac{1}{n_{2}} \sum_{k=1}^{n_{2}} a^{(1)}_{ik}", r"\mu_{i} = \frac{1}{B} \sum_{b=1}^{B} a^{(1)}_{bi}"),
]


@pytest.mark.parametrize("name,right,wrong", RIGHT_WRONG, ids=lambda x: x[:40] if isinstance(x, str) else x)
def test_right_and_wrong(name, right, wrong):
    ctx = _ctx(name)
    assert judge_layers(right, ctx).verdict == "correct", judge_layers(right, ctx).reason
    v = judge_layers(wrong, ctx)
    assert v.verdict == "incorrect", v.reason


def test_profiles_read_their_own_letters():
    """wikipedia: o for outputs, net for pre-activations, w_{kj} from unit k to unit j, E, eta."""
    ctx = _ctx("weight_decay", "wikipedia")
    assert judge_layers(r"\mathrm{net}^{(1)}_{ij} = \sum_{k} w^{(1)}_{kj} x_{ik} + b^{(1)}_{j}", ctx).verdict == "correct"
    assert judge_layers(r"\mathrm{net}^{(1)}_{ij} = \sum_{k} w^{(1)}_{jk} x_{ik} + b^{(1)}_{j}", ctx).verdict \
        in ("incorrect", "cannot-check")


@pytest.mark.parametrize("wrong", [r"g^{(2)}_{ij} = a^{(2)}_{ij} - y_{ij}",
                                   (r"\frac{\partial L}{\partial W^{(1)}_{jk}} = \sum_{b=1}^{B} \delta^{(1)}_{bj} x_{bk} "
                                    r"- \lambda W^{(1)}_{jk}")])
def test_the_fix_of_a_wrong_claim_reads_back_correct(wrong):
    """A wrong claim gets a diagnosis and a fix; the fix, fed back, is correct and reads as written."""
    ctx = _ctx("weight_decay")
    v = judge_layers(wrong, ctx)
    assert v.verdict == "incorrect" and v.expected, v.diagnosis
    assert "--" not in v.expected and "+ -" not in v.expected
    assert judge_layers(v.expected, ctx).verdict == "correct", v.expected
