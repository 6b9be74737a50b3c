"""The notation people use (issue 9, item 4), read in every profile.

Each claim is a formula as printed in its source (Nielsen ch. 2, Ng's deep-learning course,
Goodfellow et al. 6.5, Bishop PRML 5.3, AIMA 18.7, Wikipedia "Backpropagation"); a correct
one must be judged correct, and ambiguous names must be read the profile's way with a note.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from symbackprop import derive
from symbackprop.claims.judge import judge, new_context

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed_2_3_1.yaml")
WIKI_NET = str(ROOT / "examples" / "claims" / "wikipedia_net.yaml")
NIELSEN = {"name": "nielsen-2-3-3-2", "inputs": 2, "loss": "half_sse", "optimizer": {"name": "sgd", "learning_rate": 0.5},
           "layers": [{"units": 3, "activation": "sigmoid"}, {"units": 3, "activation": "sigmoid"},
                      {"units": 2, "activation": "sigmoid"}]}
NG = {"name": "ng-2-4-1", "inputs": 2, "loss": "binary_cross_entropy",
      "layers": [{"units": 4, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
      "optimizer": {"name": "sgd", "learning_rate": 0.1}}
BISHOP = {"name": "bishop-2-3-2", "inputs": 2, "loss": "half_sse", "optimizer": {"name": "sgd", "learning_rate": 0.5},
          "layers": [{"units": 3, "activation": "tanh", "bias": False},
                     {"units": 2, "activation": "identity", "bias": False}]}
RELU_SOFTMAX = {"name": "relu-softmax", "inputs": 4, "loss": "categorical_cross_entropy",
                "layers": [{"units": 5, "activation": "relu"}, {"units": 3, "activation": "softmax"}],
                "optimizer": {"name": "sgd", "learning_rate": 0.1}}

_CACHE: dict = {}


def context(spec, notation):
    key = spec if isinstance(spec, str) else spec["name"]
    if key not in _CACHE:
        _CACHE[key] = derive(spec, verify=False)
    return new_context(_CACHE[key], notation)


CORRECT = [
    # gradients with nabla; definitions with \equiv, :=, \triangleq
    (NIELSEN, "seed", r"\delta^L = \nabla_a C \odot \sigma'(z^L)"),
    (NIELSEN, "seed", r"\nabla_{W^{(2)}} C = \delta^{(2)} (a^{(1)})^T"),
    (NIELSEN, "seed", r"z^l \equiv w^l a^{l-1} + b^l"),
    (NIELSEN, "seed", r"\delta^{(2)} := (W^{(3)})^T\delta^{(3)} \odot \sigma'(z^{(2)})"),
    (NIELSEN, "seed", r"\delta^{(2)} \triangleq \frac{\partial C}{\partial z^{(2)}}"),
    # loss names
    (SEED, "seed", r"\frac{\partial \mathcal{L}}{\partial b^{(1)}} = \delta^{(1)}"),
    (SEED, "seed", r"\frac{\partial \ell}{\partial b^{(1)}} = \delta^{(1)}"),
    (SEED, "seed", r"\frac{\partial J}{\partial b^{(1)}} = \delta^{(1)}"),
    (SEED, "seed", r"\frac{\partial C}{\partial b^{(1)}} = \delta^{(1)}"),
    # bold and arrows
    (NIELSEN, "seed", r"\boldsymbol{\delta}^{(3)} = (\mathbf{a}^{(3)} - \mathbf{y}) \odot \sigma'(\mathbf{z}^{(3)})"),
    (SEED, "seed", r"\vec{\delta}^{(1)} = (W^{(2)})^T \vec{\delta}^{(2)} \odot \sigma'(\vec z^{(1)})"),
    # Unicode
    (NIELSEN, "seed", "δ^L = ∇_a C ⊙ σ′(z^L)"),
    (SEED, "seed", "∂L/∂W^{(1)} = δ^{(1)} x^T"),
    (SEED, "seed", "∂L/∂W^{(2)} = δ^{(2)} a^{(1)ᵀ}"),
    (SEED, "seed", "W^{(1)} ← W^{(1)} − α ∂L/∂W^{(1)}"),
    (SEED, "seed", "δ^{(1)}_j = σ′(z^{(1)}_j) Σ_k W^{(2)}_{kj} δ^{(2)}_k"),
    # primes
    (SEED, "seed", r"\sigma'(z) = \sigma(z)(1-\sigma(z))"),
    (SEED, "seed", r"f'(z) = f(z)(1 - f(z))"),
    (NG, "seed", r"dZ^{[1]} = W^{[2]T} dZ^{[2]} * g^{[1]\prime}(Z^{[1]})"),
    (NG, "seed", r"g^{[1]\prime}(z) = 1 - \tanh^2(z)"),
    # Nielsen's layer letters, for every layer they stand for
    (NIELSEN, "seed", r"\delta^l = ((w^{l+1})^T \delta^{l+1}) \odot \sigma'(z^l)"),
    (NIELSEN, "seed", r"\frac{\partial C}{\partial w^l_{jk}} = a^{l-1}_k \delta^l_j"),
    (NIELSEN, "seed", r"a^l = \sigma(w^l a^{l-1} + b^l)"),
    (NIELSEN, "seed", r"w^l \rightarrow w^l-\eta \delta^{l} (a^{l-1})^T"),
    (NIELSEN, "seed", r"C = \frac{1}{2} \|y-a^L\|^2"),
    # Ng, one example and a batch
    (NG, "seed", r"dz^{[2]} = a^{[2]} - y"),
    (NG, "seed", r"dW^{[2]} = dz^{[2]} a^{[1]T}"),
    (NG, "seed", r"db^{[2]} = dz^{[2]}"),
    (NG, "seed", r"A^{[1]} = \tanh(Z^{[1]})"),
    (NG, "seed", r"dW^{[1]} = \frac{1}{m} dZ^{[1]} X^T"),
    (NG, "seed", r"db^{[1]} = \frac{1}{m}\sum_{i=1}^{m} dz^{[1](i)}"),
    (NG, "seed", r"dW^{[1]} = \frac{1}{m}\sum_{i=1}^m dz^{[1](i)} x^{(i)T}"),
    # Bishop: a is the pre-activation, z the activation, delta_k = y_k - t_k at linear outputs
    (BISHOP, "bishop", r"a_j = \sum_i w_{ji} x_i"),
    (BISHOP, "bishop", r"z_j = h(a_j)"),
    (BISHOP, "bishop", r"\delta_k = y_k - t_k"),
    (BISHOP, "bishop", r"\delta_j = h'(a_j) \sum_k w_{kj} \delta_k"),
    (BISHOP, "bishop", r"\delta_j = (1 - z_j^2)\sum_{k=1}^{K} w_{kj}\delta_k"),
    (BISHOP, "bishop", r"\frac{\partial E_n}{\partial w_{ji}} = \delta_j z_i"),
    # Wikipedia and AIMA names
    (WIKI_NET, "wikipedia", r"\text{net}_j = \sum_k w_{kj} o_k"),
    (WIKI_NET, "wikipedia", r"\Delta w_{ij} = -\eta \frac{\partial E}{\partial w_{ij}}"),
    (WIKI_NET, "wikipedia", r"\Delta w_{ij} = -\eta o_i \delta_j"),
    (WIKI_NET, "wikipedia", r"\delta_j = (o_j-t_j)o_j(1-o_j) \text{ if } j \text{ is an output neuron}"),
    (WIKI_NET, "wikipedia", (r"\delta_j = \left(\sum_{\ell\in L} w_{j \ell} \delta_\ell\right)o_j(1-o_j)"
                             r" \text{ if } j \text{ is an inner neuron}")),
    (SEED, "aima", r"Err_k = y_k - a_k"),
    (SEED, "aima", r"\Delta_k = Err_k \times g'(in_k)"),
    (SEED, "aima", r"\Delta w_{j,k} = \alpha a_j \Delta_k"),
    (SEED, "aima", r"\Delta[j] \leftarrow g'(in_j) \sum_k w_{j,k} \Delta[k]"),
    # as typeset in running text
    (SEED, "seed", r"\delta^{(1)} = (W^{(2)})^{\mathsf{T}} \delta^{(2)} \odot \sigma'(z^{(1)})."),
    (SEED, "seed", r"\frac{\mathrm{d}L}{\mathrm{d}b^{(1)}} = \delta^{(1)},"),
    (SEED, "seed", r"\delta^{(1)} = \Big[ (W^{(2)})^\intercal \delta^{(2)} \Big] \odot \sigma^{\prime}(z^{(1)})"),
    (SEED, "seed", r"\delta^{(1)}=\operatorname{diag}(\sigma'(z^{(1)}))(W^{(2)})^T\delta^{(2)}"),
    (SEED, "seed", r"\sigma(x) = \frac{1}{1 + \exp(-x)}"),
    (RELU_SOFTMAX, "seed", r"\text{ReLU}(z) = \max(0, z)"),
    (SEED, "seed", r"\frac{\partial L}{\partial x} = (W^{(1)})^T \delta^{(1)}"),
    (SEED, "seed", r"\frac{\partial L}{\partial a^{(1)}} = (W^{(2)})^T \delta^{(2)}"),
    # CS231n: f the class scores, p the probabilities
    (RELU_SOFTMAX, "seed", r"p_k = \frac{e^{f_k}}{ \sum_j e^{f_j} }"),
    (RELU_SOFTMAX, "seed", r"\frac{\partial L_i }{ \partial f_k } = p_k - \mathbb{1}(y_i = k)"),
    # indicators and the Kronecker delta
    (RELU_SOFTMAX, "seed", r"\delta^{(1)} = (W^{(2)})^T\delta^{(2)} \odot \mathbb{1}[z^{(1)} > 0]"),
    (RELU_SOFTMAX, "seed", r"\frac{\partial \hat{y}_i}{\partial z^{(2)}_j} = \hat{y}_i(\delta_{ij} - \hat{y}_j)"),
    (RELU_SOFTMAX, "seed", r"\delta^{(2)}_k = \hat{y}_k - \mathbb{1}(y = k)"),
]


@pytest.mark.parametrize("spec, notation, text", CORRECT)
def test_notation_is_read(spec, notation, text):
    v = judge(text, context(spec, notation))
    assert v.verdict == "correct", v.as_dict()


@pytest.mark.parametrize("text", [r"W^{(1)} \in \mathbb{R}^{3 \times 2}", r"x \in \mathbb{R}^n", "a^{(1)} ∈ ℝ^3"])
def test_shape_annotations_are_skipped(text):
    v = judge(text, context(SEED, "seed"))
    assert v.verdict == "skipped" and "annotation" in v.reason


def test_goodfellow_running_gradient_is_an_assignment_used_later():
    ctx = context(SEED, "seed")
    first = judge(r"g \leftarrow \nabla_{\hat y} J", ctx)
    assert first.verdict == "skipped" and "variable g" in first.reason
    assert judge(r"\nabla_{\hat y} J = g", ctx).verdict == "correct"
    assert judge(r"\nabla_{\hat y} J = -g", ctx).verdict == "incorrect"


def test_ng_gradient_names_are_never_d_times_z():
    v = judge(r"dz^{[2]} = a^{[2]} - y", context(NG, "seed"))
    assert v.verdict == "correct" and "not d times z" in v.note


def test_ambiguous_names_are_read_the_profiles_way_with_a_note():
    # sigma on a tanh layer: the seed profile writes sigma for any activation, and says so
    v = judge(r"a^{(1)} = \sigma(z^{(1)})", context(NG, "seed"))
    assert v.verdict == "correct" and "tanh" in v.note
    # elsewhere sigma is the sigmoid, which the tanh layer does not use
    assert judge(r"o^{(1)}_j = \sigma(net^{(1)}_j)", context(NG, "wikipedia")).verdict == "incorrect"
    # \Delta w is the update amount; \delta in a fraction is the partial sign
    assert "update amount" in judge(r"\Delta w_{ij} = -\eta o_i \delta_j", context(WIKI_NET, "wikipedia")).note
    assert "partial" in judge(r"\frac{\delta E}{\delta o_j} = o_j - t", context(WIKI_NET, "wikipedia")).note


def test_bishop_sign_convention_is_the_profiles():
    v = judge(r"\delta_k = t_k - y_k", context(BISHOP, "bishop"))
    assert v.verdict == "incorrect" and v.diagnosis.startswith("sign")


# ----------------------------------------------------------------------------- no traceback, ever

ALPHABET = [r"\frac", r"\partial", r"\delta", r"\sigma", "'", "^", "_", "{", "}", "(", ")", "[", "]", "=",
            r"\leftarrow", "+", "-", r"\odot", r"\cdot", "W", "w", "a", "z", "x", "y", "L", "E", "j", "k", "l",
            "1", "2", "(2)", "T", r"\sum", r"\nabla", r"\mathbb{1}", r"\hat", "δ", "∂", "⊙", " ", r"\text{if}",
            "dW", r"\Delta", r"\in", "|", ">", r"\|", "np.sum(", ",", r"\tanh", "g", "h", "m",
            "^{(i)}", "^{[1](i)}", r"\sum_{i=1}^m", "f_k", "p_k", "dz", "dZ", "A", r"\mathbb{1}[", "> 0]",
            r"\max(0,", r"\operatorname{diag}(", "Err_k", r"\Delta w_{ij}", r"\text{ if } j \text{ is an output neuron}",
            "E_n", "h(a)^2", "ŷ", "←", "ᵀ", "Σ", r"\ell", r"\cal C", ".", r"\partial E", "/"]


def test_random_texts_never_raise():
    rng = random.Random(9)
    ctx = context(SEED, "seed")
    for _ in range(400):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 14)))
        v = judge(text, ctx)
        assert v.verdict in ("correct", "incorrect", "skipped", "cannot-check"), text
        if v.verdict in ("skipped", "cannot-check"):
            assert v.reason and "\n" not in v.reason, (text, v.reason)
            assert not v.reason.startswith("could not judge"), (text, v.reason)  # no internal error
