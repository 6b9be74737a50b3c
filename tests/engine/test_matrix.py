"""The matrix, batch and update forms printed in every document (symbackprop/engine/matrix.py).

Two independent truths:

* symbolic: ``MatrixForm.check()`` expands each form over the canonical symbols and compares it with the
  per-neuron derivation (per-sample deltas and gradients averaged over a batch) and with the textbook update
  rules; the planted-bug tests below show that it fails when a form is wrong;
* numeric: the batch and update equations are evaluated with plain numbers and compared with central finite
  differences of a batch-mean loss and with SGD, momentum and Adam steps written here in NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symbackprop import derive
from symbackprop.engine import matrix as matrix_module
from symbackprop.engine.general import size
from symbackprop.engine.matrix import ALPHA, BATCH, BETA1, BETA2, EPSILON, MU, STEP, MatrixEquation, MatrixForm

SQUARE = {"inputs": 2, "layers": [{"units": 2, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"}],
          "loss": "half_sse"}


@pytest.fixture(scope="module")
def square():
    return derive(SQUARE, verify=False)


def test_every_form_agrees_with_the_derivation(square):
    """Per-sample, batch and SGD/momentum/Adam forms against the per-neuron derivation and textbook rules.

    (tests/engine/test_general.py runs check() on every example too.)
    """
    m = square.matrix
    assert m.check_backward() == []
    assert m.check_batch() == []
    assert m.check_updates() == []


def test_check_runs_every_form(square, monkeypatch):
    """check() is the union of the three checks (a planted batch bug shows up in check() itself)."""
    monkeypatch.setattr(MatrixForm, "check_batch", lambda self, samples=2: ["planted"])
    assert square.matrix.check() == ["planted"]


class TransposedBatchGradient(MatrixForm):
    """dW{l} = (1/B) A{l-1}^T Delta{l}: the transposed batch gradient (same shape in a square network)."""

    def batch(self):
        return [MatrixEquation(e.lhs, e.rhs.T, e.rule) if str(e.lhs).startswith("dW") else e
                for e in super().batch()]


class UntransposedBatchRecursion(MatrixForm):
    """Delta1 = (Delta2 W2^T) o Fprime1: the weight matrix transposed in the batch delta recursion."""

    def batch(self):
        return [MatrixEquation(e.lhs, e.rhs.xreplace({self.W[2]: self.W[2].T}), e.rule)
                if str(e.lhs) == "Delta1" else e for e in super().batch()]


@pytest.mark.parametrize("planted", [TransposedBatchGradient, UntransposedBatchRecursion])
def test_a_planted_transpose_in_the_batch_form_is_caught(square, planted):
    problems = planted(square).check_batch()
    assert problems and all("batch form" in p for p in problems)


def test_a_batch_gradient_without_the_mean_is_caught(square):
    class Summed(MatrixForm):
        def batch(self):
            return [MatrixEquation(e.lhs, BATCH * e.rhs, e.rule) if str(e.lhs).startswith("d") else e
                    for e in super().batch()]

    assert Summed(square).check_batch()


def _wrong_rules(kind):
    right = matrix_module.update_rules

    def rules(name, parameter, gradient, index=""):
        eqs = right(name, parameter, gradient, index)
        if kind == "momentum sign" and name == "momentum":
            return [MatrixEquation(e.lhs, e.rhs.xreplace({ALPHA: -ALPHA}), e.rule) for e in eqs]
        if kind == "adam no bias power" and name == "adam":
            return [MatrixEquation(e.lhs, e.rhs.xreplace({STEP: 1}), e.rule) for e in eqs]
        if kind == "adam betas swapped" and name == "adam":
            return [MatrixEquation(e.lhs, e.rhs.xreplace({BETA1: BETA2, BETA2: BETA1}), e.rule) for e in eqs]
        if kind == "momentum step uses gradient" and name == "momentum":
            return [eqs[0], MatrixEquation(eqs[1].lhs, parameter - ALPHA * gradient, eqs[1].rule)]
        return eqs

    return rules


@pytest.mark.parametrize("kind, optimizer", [("momentum sign", "momentum"), ("adam no bias power", "adam"),
                                             ("adam betas swapped", "adam"),
                                             ("momentum step uses gradient", "momentum")])
def test_a_wrong_update_rule_is_caught(square, monkeypatch, kind, optimizer):
    monkeypatch.setattr(matrix_module, "update_rules", _wrong_rules(kind))
    problems = square.matrix.check_updates()
    assert problems and all(p.startswith(optimizer) for p in problems)


# ------------------------------------------------------------------ numeric: plain NumPy truths

RNG = np.random.default_rng(14)
B = 3
PARAMS = {"W1": RNG.normal(size=(2, 2)), "b1": RNG.normal(size=(2, 1)),
          "W2": RNG.normal(size=(2, 2)), "b2": RNG.normal(size=(2, 1))}
X = RNG.normal(size=(B, 2))
T = RNG.uniform(size=(B, 2))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def batch_loss(p, z2_shift=None):
    """Mean over the batch of 0.5 * sum (sigmoid(W2 tanh(W1 x + b1) + b2) - t)^2, one sample per row."""
    a1 = np.tanh(X @ p["W1"].T + p["b1"].T)
    z2 = a1 @ p["W2"].T + p["b2"].T
    if z2_shift is not None:
        z2 = z2 + z2_shift
    return np.mean(0.5 * np.sum((sigmoid(z2) - T) ** 2, axis=1))


def central_difference(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def evaluate(expr, values, d):
    """A matrix expression of MatrixForm with numbers put in for its matrices and scalars."""
    concrete = {size(l): n for l, n in enumerate(d.network.sizes)} | {BATCH: B}
    expr = expr.subs(concrete)
    subs = {}
    for name, v in values.items():
        if isinstance(v, np.ndarray):
            subs[sp.MatrixSymbol(name, *v.shape)] = sp.Matrix(v)
        else:
            subs[sp.Symbol(name, **SCALAR_ASSUMPTIONS.get(name, {}))] = v
    out = expr.xreplace(subs)
    out = out.as_explicit() if not isinstance(out, sp.MatrixBase) else out
    return np.array(out.evalf(), dtype=float)


SCALAR_ASSUMPTIONS = {s.name: s.assumptions0 for s in (ALPHA, MU, BETA1, BETA2, EPSILON, STEP)}


def test_the_batch_form_gives_the_finite_difference_gradient_of_the_batch_mean_loss(square):
    """Evaluate Z, Delta and dW, db of batch() with numbers; compare dW, db with central differences.

    Delta2 (one row per sample) is itself a central difference: B * dE_batch/dZ2.
    """
    d, m = square, square.matrix
    eqs = {str(e.lhs): e.rhs for e in m.batch()}
    values = dict(PARAMS, X=X, **{"1": np.ones((B, 1))})
    z1 = evaluate(eqs["Z1"], values, d)
    np.testing.assert_allclose(z1, X @ PARAMS["W1"].T + PARAMS["b1"].T, atol=1e-12)
    values["A1"] = np.tanh(z1)
    values["Fprime1"] = 1 - np.tanh(z1) ** 2
    values["Delta2"] = B * central_difference(lambda s: batch_loss(PARAMS, s), np.zeros((B, 2)))
    values["Delta1"] = evaluate(eqs["Delta1"], values, d)
    for name, value in PARAMS.items():
        fd = central_difference(lambda v, name=name: batch_loss({**PARAMS, name: v}), value)
        got = evaluate(eqs[f"d{name}"], values, d)
        np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-8, err_msg=f"d{name}")


def numpy_steps(optimizer, p, g, state, hyper):
    """One step of a textbook optimizer in NumPy; returns the new parameter and state."""
    a = hyper["alpha"]
    if optimizer == "sgd":
        return p - a * g, state
    if optimizer == "momentum":
        v = hyper["mu"] * state["v"] - a * g
        return p + v, {"v": v}
    b1, b2, eps, tau = hyper["beta1"], hyper["beta2"], hyper["epsilon"], hyper["tau"]
    m = b1 * state["m"] + (1 - b1) * g
    v = b2 * state["v"] + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1 ** tau), v / (1 - b2 ** tau)  # Kingma & Ba (2015), Algorithm 1
    return p - a * m_hat / (np.sqrt(v_hat) + eps), {"m": m, "v": v}


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_each_update_rule_takes_the_numpy_step(square, optimizer):
    """The printed update equations, applied in order with numbers, equal a NumPy step of the optimizer."""
    hyper = {"alpha": 0.1, "mu": 0.9, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "tau": 3}
    grads = {f"d{k}": RNG.normal(size=v.shape) for k, v in PARAMS.items()}
    state0 = {f"{s}_{k}": RNG.uniform(0.1, 1, size=v.shape) for k, v in PARAMS.items() for s in ("v", "m")}
    env = dict(PARAMS, **grads, **state0, **hyper)
    for eq in square.matrix.updates(optimizer):
        env[str(eq.lhs)] = evaluate(eq.rhs, env, square)
    for k, p in PARAMS.items():
        state = {s: state0[f"{s}_{k}"] for s in ("v", "m")}
        want, _ = numpy_steps(optimizer, p, grads[f"d{k}"], state, hyper)
        np.testing.assert_allclose(env[k], want, rtol=1e-10, err_msg=f"{optimizer} {k}")


def test_rules_name_how_each_equation_follows(square):
    """The rule printed beside each equation: chain rule for the output delta, the mean for batch gradients."""
    softmax = derive({"inputs": 2, "layers": [{"units": 3, "activation": "softmax"}], "loss": "half_sse"},
                     verify=False)
    assert softmax.matrix.backward()[0].rule == "chain rule"
    rules = {str(e.lhs): e.rule for e in square.matrix.batch()}
    assert all(rules[k] == "mean over the batch" for k in ("dW1", "db1", "dW2", "db2"))
    assert rules["Delta1"] == "delta recursion" and rules["Z1"] == "weighted sum, per row"


def test_every_matrix_equation_has_sides_of_one_shape():
    """A matrix equation is dimensionally consistent, and dE/dW^(l) has the shape of W^(l), n_l x n_(l-1), in the
    per-sample and the batch form (widths 3-4-2, all different; mutation survivor ``MatrixForm.backward`` 104)."""
    d = derive({"inputs": 3, "layers": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"}],
                "loss": "half_sse"}, verify=False)
    m = d.matrix
    n = {0: 3, 1: 4, 2: 2}
    sizes = {size(l): n[l] for l in n}
    for eq in m.forward() + m.backward() + m.batch():
        lhs, rhs = (tuple(sp.sympify(x).subs(sizes) for x in side.shape) for side in (eq.lhs, eq.rhs))
        assert lhs == rhs, (eq.lhs, eq.rhs)
    shapes = {str(eq.lhs): tuple(sp.sympify(x).subs(sizes) for x in eq.lhs.shape) for eq in m.backward()}
    assert shapes["dW1"] == (4, 3) and shapes["dW2"] == (2, 4)


def test_output_delta_prints_the_loss_gradient_as_a_partial_derivative(square):
    """BP1, delta^(L) = dE/da^(L) * f'(z^(L)): the vector dE/da^(L) of the matrix form is the one the LaTeX printer
    writes as a partial derivative of the loss (mutation survivor ``MatrixForm.__init__`` 110)."""
    from symbackprop.render.latex import NotationPrinter, latex
    from symbackprop.render.notation import profile

    seed = profile("seed")
    head = square.matrix.backward()[0]
    text = latex(head.rhs, NotationPrinter(seed))
    assert rf"\frac{{\partial {seed.loss}}}{{\partial a^{{(2)}}}}" in text, text
