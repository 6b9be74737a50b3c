"""The network read from a forward pass written in notes."""

from __future__ import annotations

import pytest

from symbackprop.claims.infer import Layer, NotesNetworkError, network_options, read_architecture

SEED_FORWARD = [r"z^{(1)} = W^{(1)}x + b^{(1)}", r"a^{(1)} = \sigma(z^{(1)})",
                r"z^{(2)} = W^{(2)}a^{(1)} + b^{(2)}", r"a^{(2)} = \sigma(z^{(2)})", r"\hat{y} = a^{(2)}"]


def test_seed_forward_pass_gives_two_sigmoid_layers_with_biases():
    arch = read_architecture(SEED_FORWARD)
    assert arch.layers == (Layer(True, "sigmoid"), Layer(True, "sigmoid"))


def test_activations_and_missing_biases_are_read():
    arch = read_architecture([r"z^{(1)} = W^{(1)} x", r"a^{(1)} = \tanh(z^{(1)})",
                              r"z^{(2)} = W^{(2)} a^{(1)} + b^{(2)}", r"a^{(2)} = \mathrm{ReLU}(z^{(2)})",
                              r"z^{(3)} = W^{(3)} a^{(2)}", r"a^{(3)} = f(z^{(3)})"])
    assert arch.layers == (Layer(False, "tanh"), Layer(True, "relu"), Layer(False, None))


def test_nothing_to_read_says_what_to_add():
    with pytest.raises(NotesNetworkError, match=r"no forward pass found.*pass a spec"):
        read_architecture([r"\delta = y - t", "not a claim {"])


def test_incomplete_forward_pass_names_the_missing_lines():
    with pytest.raises(NotesNetworkError, match=r"missing z\^\{\(1\)\}.*a\^\{\(2\)\}"):
        read_architecture([r"z^{(2)} = W^{(2)}a^{(1)} + b^{(2)}", r"a^{(1)} = \sigma(z^{(1)})"])


def test_a_forward_line_with_the_wrong_layer_is_not_taken_as_the_network():
    with pytest.raises(NotesNetworkError):
        read_architecture([r"z^{(1)} = W^{(2)}x + b^{(1)}", r"a^{(1)} = \sigma(z^{(1)})"])


def test_options_cover_widths_and_open_choices():
    arch = read_architecture(SEED_FORWARD)
    options = network_options(arch)
    assert len(options) >= 2 and len({row[0].widths for row in options}) == len(options)
    losses = {o.derivation.network.loss.name for o in options[0]}
    assert losses == {"half_sse", "binary_cross_entropy"}  # an undefined loss is tried in two forms
    generic = read_architecture([r"z^{(1)} = W^{(1)}x", r"a^{(1)} = g(z^{(1)})"])
    acts = {o.derivation.network.layers[0].activation.name for o in network_options(generic)[0]}
    assert acts == {"sigmoid", "tanh"}
