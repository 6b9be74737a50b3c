"""The corpus of backprop formulas as people write them (tests/data/claims_corpus/).

(a) The data: every file names a network that builds and a notation profile, every entry
has a claim, an expected verdict, a source, and a mistake category exactly when it is
wrong.  (b) The checker on the corpus: no claim makes judge() raise, and the number of
right verdicts never falls below the recorded floor.  (c) Spot checks of the expected
verdicts themselves against finite differences, in plain NumPy.  (d) The fixes suggested for
some wrong entries: each is the textbook formula written here by hand, and finite differences
agree with that formula and not with the entry.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from symbackprop.spec import load

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("claims_corpus", ROOT / "benchmarks" / "claims_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

FILES = corpus.load()
PROFILES = ("seed", "wikipedia", "aima", "bishop")

# Right verdicts of the checker on this corpus: 119 of 289 at the baseline (2026-11-30, the
# checker before issue 9), 287 of 289 once issue 9's claim language landed (same day).
# The floor only ever goes up: raise it when the checker improves, never lower it.
RIGHT_VERDICTS_FLOOR = 287


def test_corpus_size():
    entries = [e for f in FILES for e in f["entries"]]
    assert len(FILES) >= 8
    assert len(entries) >= 120
    assert sum(e["expect"] == "incorrect" for e in entries) >= 45
    assert sum(e["expect"] == "correct" for e in entries) >= 45


@pytest.mark.parametrize("data", FILES, ids=[f["family"] for f in FILES])
def test_file_schema(data):
    assert set(data) >= {"family", "profile", "network", "entries", "path"}
    assert data["profile"] in PROFILES
    load(data["network"])  # raises SpecError when the spec does not build
    claims = [e["claim"] for e in data["entries"]]
    assert len(claims) == len(set(claims)), "a claim appears twice in one file"
    for entry in data["entries"]:
        assert set(entry) == {"claim", "expect", "mistake", "source"}, entry
        assert isinstance(entry["claim"], str) and entry["claim"].strip(), entry
        assert entry["expect"] in corpus.EXPECTS, entry
        assert isinstance(entry["source"], str) and len(entry["source"]) > 5, entry
        if entry["expect"] == "incorrect":
            assert entry["mistake"] in corpus.CATEGORIES, entry
        else:
            assert entry["mistake"] is None, entry


def test_names_mistake_matches_diagnose_labels():
    from symbackprop.claims import diagnose

    assert corpus.names_mistake("sign", diagnose.SIGN)
    assert corpus.names_mistake("ascent", diagnose.ASCENT)
    assert corpus.names_mistake("wrong-layer", diagnose.LAYER)
    assert corpus.names_mistake("index", diagnose.INDEX)
    assert corpus.names_mistake("sum", diagnose.SUM)
    assert corpus.names_mistake("bias", diagnose.BIAS)
    assert corpus.names_mistake("missing-activation-derivative", diagnose.ACT_FACTOR)
    assert corpus.names_mistake("prime-at-a", diagnose.PRIME_AT_A)
    assert corpus.names_mistake("factor", diagnose.FACTOR + " (2 times the true value)")
    assert not corpus.names_mistake("sign", diagnose.LAYER)
    assert not corpus.names_mistake("ascent", None)


@pytest.fixture(scope="module")
def results():
    return corpus.run()


def test_no_claim_crashes(results):
    crashed = [(r["family"], r["claim"], r["reason"]) for r in results if r["verdict"] == "crash"]
    assert crashed == []


def test_verdicts_are_known_and_right_count_at_least_floor(results):
    assert len(results) == sum(len(f["entries"]) for f in FILES)
    assert {r["verdict"] for r in results} <= set(corpus.VERDICTS) | {"crash"}
    right = corpus.summarize(results)["total"]["right"]
    assert right >= RIGHT_VERDICTS_FLOOR


# --- (c) the expectations themselves, spot-checked against finite differences ---------------
# A few entries of each family, hand-translated to NumPy on the file's own network, with the
# true gradients and deltas taken by central finite differences (no symbackprop code).

ACT = {
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    "softmax": (lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum(), None),
}
LOSS = {
    "half_sse": lambda a, t: 0.5 * np.sum((a - t) ** 2),
    "binary_cross_entropy": lambda a, t: -np.sum(t * np.log(a) + (1 - t) * np.log(1 - a)),
    "categorical_cross_entropy": lambda a, t: -np.sum(t * np.log(a)),
}


class Net:
    """A random instance of a corpus file's network: W[l], b[l], z[l], a[l] (a[0] = x), deltas by FD."""

    def __init__(self, family, seed=3):
        data = next(f for f in FILES if f["family"] == family)["network"]
        rng = np.random.default_rng(seed)
        self.sizes = [data["inputs"]] + [layer["units"] for layer in data["layers"]]
        self.acts = [layer["activation"] for layer in data["layers"]]
        self.loss_name = data["loss"]
        self.L = len(self.acts)
        self.W = {l: rng.normal(size=(self.sizes[l], self.sizes[l - 1])) for l in range(1, self.L + 1)}
        self.b = {l: (rng.normal(size=self.sizes[l]) if layer.get("bias", True) else np.zeros(self.sizes[l]))
                  for l, layer in enumerate(data["layers"], start=1)}
        self.x = rng.normal(size=self.sizes[0])
        if self.loss_name == "categorical_cross_entropy":
            self.t = np.eye(self.sizes[-1])[1]
        else:
            self.t = rng.uniform(0.1, 0.9, size=self.sizes[-1])
        self.z, self.a = self.forward()

    def forward(self, shift=None):
        a, zs, As = self.x, {}, {0: self.x}
        for l in range(1, self.L + 1):
            z = self.W[l] @ a + self.b[l]
            if shift and shift[0] == l:
                z = z + shift[1]
            zs[l], a = z, ACT[self.acts[l - 1]][0](z)
            As[l] = a
        return zs, As

    def loss(self, shift=None):
        return LOSS[self.loss_name](self.forward(shift)[1][self.L], self.t)

    def delta(self, l, h=1e-6):
        """dE/dz^l by central differences."""
        out = np.zeros(self.sizes[l])
        for j in range(self.sizes[l]):
            e = np.zeros(self.sizes[l])
            e[j] = h
            out[j] = (self.loss((l, e)) - self.loss((l, -e))) / (2 * h)
        return out

    def grad_W(self, l, h=1e-6):
        g = np.zeros_like(self.W[l])
        for idx in np.ndindex(g.shape):
            old = self.W[l][idx]
            self.W[l][idx] = old + h
            up = self.loss()
            self.W[l][idx] = old - h
            down = self.loss()
            self.W[l][idx] = old
            g[idx] = (up - down) / (2 * h)
        return g

    def fprime(self, l):
        return ACT[self.acts[l - 1]][1](self.z[l])


def _softmax_jacobian(n):
    y = n.a[n.L]
    return np.diag(y) - np.outer(y, y)


def _fd_output_jacobian(n, h=1e-6):
    """d a^L_i / d z^L_j by central differences of the forward pass (shifting z^L)."""
    L, m = n.L, n.sizes[n.L]
    out = np.zeros((m, m))
    for j in range(m):
        e = np.zeros(m)
        e[j] = h
        out[:, j] = (n.forward((L, e))[1][L] - n.forward((L, -e))[1][L]) / (2 * h)
    return out


# Wrong entries whose fix the checker proposes: (family, wrong claim) -> (the fix, written here by hand as the
# textbook formula in the file's notation; a function of a Net returning (truth by finite differences, the
# wrong right side, the fix's right side)).
FIX_CHECKS = {
    ("softmax-classifier", r"\frac{\partial \hat y_i}{\partial z^{(2)}_j} = \hat y_i (1 - \hat y_j)"): (
        r"\frac{\partial \hat{y}_i}{\partial z^{(2)}_j} = \hat{y}_i (\delta_{ij} - \hat{y}_j)",
        lambda n: (_fd_output_jacobian(n), np.outer(n.a[2], 1 - n.a[2]),
                   np.diag(n.a[2]) - np.outer(n.a[2], n.a[2]))),
    ("softmax-classifier", r"\frac{\partial L_i }{ \partial f_k } = p_k"): (  # CS231n: p_k - 1(y_i = k)
        r"\frac{\partial L_i}{\partial f_k} = p_k - y_k",
        lambda n: (n.delta(2), n.a[2], n.a[2] - n.t)),
    ("wikipedia", (r"\delta_j = \left(\sum_{\ell\in L} w_{j \ell} \delta_\ell\right)o_\ell(1-o_\ell) \text{ if } j "
                   r"\text{ is an inner neuron}")): (  # Wikipedia's inner-neuron case; w_{j l}: j -> l
        r"\delta_j = (\sum_\ell w_{j\ell} \delta_\ell) o_j (1 - o_j) \text{ if } j \text{ is an inner neuron}",
        lambda n: (n.delta(1), (n.W[2].T @ n.delta(2)) * n.a[2] * (1 - n.a[2]),
                   (n.W[2].T @ n.delta(2)) * n.a[1] * (1 - n.a[1]))),
    # a constant factor: the coefficient as written is divided, not the whole side multiplied back
    ("nielsen", r"\delta^L = 2(a^L-y) \odot \sigma'(z^L)"): (  # Nielsen's BP1 for the quadratic cost
        r"\delta^L = (a^L - y) \odot \sigma'(z^L)",
        lambda n: (n.delta(3), 2 * (n.a[3] - n.t) * n.fprime(3), (n.a[3] - n.t) * n.fprime(3))),
    ("aima", r"\frac{\partial Loss_k}{\partial w_{j,k}} = -2(y_k - a_k) g'(in_k) a_j"): (  # AIMA with Loss = SSE/2
        r"\frac{\partial Loss_k}{\partial w_{j,k}} = -(y_k - a_k) g'(\mathrm{in}_k) a_j",
        lambda n: (n.grad_W(2), -2 * np.outer((n.t - n.a[2]) * n.fprime(2), n.a[1]),
                   -np.outer((n.t - n.a[2]) * n.fprime(2), n.a[1]))),
    ("seed-000", r"\frac{\partial L}{\partial W^{(2)}} = \frac{1}{2}\delta^{(2)} a^{(1)T}"): (
        r"\frac{\partial L}{\partial W^{(2)}} = \delta^{(2)} a^{(1)T}",
        lambda n: (n.grad_W(2), 0.5 * np.outer(n.delta(2), n.a[1]), np.outer(n.delta(2), n.a[1]))),
    ("seed-000", r"\frac{\partial L}{\partial a^{(2)}} = 2(a^{(2)} - y)"): (  # half SSE: no 2, no parentheses
        r"\frac{\partial L}{\partial a^{(2)}} = a^{(2)} - y",
        lambda n: (n.delta(2) / n.fprime(2), 2 * (n.a[2] - n.t), n.a[2] - n.t)),
    ("softmax-classifier", r"\frac{\partial L}{\partial z^{(2)}_k} = \frac{1}{3}(\hat{y}_k - y_k)"): (
        r"\frac{\partial L}{\partial z^{(2)}_k} = \hat{y}_k - y_k",
        lambda n: (n.delta(2), (n.a[2] - n.t) / 3, n.a[2] - n.t)),
    ("bishop", r"E_n = \sum_{k=1}^{K}(y_k - t_k)^2"): (  # Bishop's sum-of-squares error has the 1/2
        r"E_n = \frac{1}{2} \sum_{k=1}^{K} (y_k - t_k)^{2}",
        lambda n: (n.loss(), np.sum((n.a[2] - n.t) ** 2), 0.5 * np.sum((n.a[2] - n.t) ** 2))),
    # tanh' = 1 - a^2 (not 1 - z^2), with the power of a layered symbol in parentheses and g's layer kept
    ("ng", r"g^{[1]\prime}(z^{[1]}) = 1 - (z^{[1]})^2"): (
        r"g^{[1]\prime}(z^{[1]}) = 1 - (a^{[1]})^{2}",  # the layer on g as Ng writes it
        lambda n: ((np.tanh(n.z[1] + 1e-6) - np.tanh(n.z[1] - 1e-6)) / 2e-6, 1 - n.z[1] ** 2, 1 - n.a[1] ** 2)),
}


@pytest.mark.parametrize("key", list(FIX_CHECKS), ids=[f"{f}:{c[:40]}" for f, c in FIX_CHECKS])
def test_fix_of_a_wrong_entry_is_the_textbook_formula(key):
    """The fix suggested for a wrong entry is the textbook formula (written above by hand), and finite
    differences agree with that formula and not with the entry (o_l(1 - o_l) is read at l = the output unit)."""
    from symbackprop import derive
    from symbackprop.claims.judge import judge, new_context

    family, claim = key
    fix, sides = FIX_CHECKS[key]
    truth, wrong, fixed = sides(Net(family))
    assert not np.allclose(truth, wrong, rtol=1e-5, atol=1e-7)
    assert np.allclose(truth, fixed, rtol=1e-5, atol=1e-7)
    data = next(f for f in FILES if f["family"] == family)
    v = judge(claim, new_context(derive(data["network"], verify=False), data["profile"]))
    assert v.verdict == "incorrect" and v.expected, v.as_dict()
    assert v.expected.replace(" ", "") == fix.replace(" ", ""), v.expected
    assert corpus.names_mistake(next(e for e in data["entries"] if e["claim"] == claim)["mistake"], v.diagnosis)


# (family, claim) -> function of a Net returning (left side, right side) as printed.
SPOT_CHECKS = {
    ("seed-000", r"\delta^{(1)} = (W^{(2)})^T \cdot \delta^{(2)} \cdot \sigma'(z^{(1)})"):
        lambda n: (n.delta(1), (n.W[2].T @ n.delta(2)) * n.fprime(1)),
    ("seed-000", r"\frac{\partial L}{\partial a^{(2)}} = 2(a^{(2)} - y)"):
        lambda n: (n.delta(2) / n.fprime(2), 2 * (n.a[2] - n.t)),
    ("seed-000", r"\sigma'(z^{(1)}) = z^{(1)} \odot (1 - z^{(1)})"):
        lambda n: (n.fprime(1), n.z[1] * (1 - n.z[1])),
    ("nielsen", r"\delta^l_j = \sum_k w^{l+1}_{kj} \delta^{l+1}_k \sigma'(z^l_j)"):
        lambda n: (np.concatenate([n.delta(1), n.delta(2)]),
                   np.concatenate([(n.W[2].T @ n.delta(2)) * n.fprime(1), (n.W[3].T @ n.delta(3)) * n.fprime(2)])),
    ("nielsen", r"\delta^l = ((w^{l+1})^T \delta^{l+1}) \odot \sigma'(z^{l+1})"):
        lambda n: (n.delta(1), (n.W[2].T @ n.delta(2)) * n.fprime(2)),
    ("aima", r"\frac{\partial Loss}{\partial w_{j,k}} = -a_j\Delta_k"):
        lambda n: (n.grad_W(2), -np.outer((n.t - n.a[2]) * n.fprime(2), n.a[1])),
    ("aima", r"\frac{\partial Loss_k}{\partial w_{j,k}} = -2(y_k - a_k) g'(in_k) a_j"):
        lambda n: (n.grad_W(2), -2 * np.outer((n.t - n.a[2]) * n.fprime(2), n.a[1])),
    ("ng", r"dz^{[2]} = a^{[2]} - y"):
        lambda n: (n.delta(2), n.a[2] - n.t),
    ("ng", r"dz^{[2]} = (a^{[2]} - y) a^{[2]}(1 - a^{[2]})"):
        lambda n: (n.delta(2), (n.a[2] - n.t) * n.a[2] * (1 - n.a[2])),
    ("ng", r"g^{[1]\prime}(z^{[1]}) = 1 - (a^{[1]})^2"):
        lambda n: (n.fprime(1), 1 - n.a[1] ** 2),
    ("bishop", r"\delta_j = h'(a_j)\sum_k w_{kj}\delta_k"):
        lambda n: (n.delta(1), n.fprime(1) * (n.W[2].T @ n.delta(2))),
    ("bishop", r"\delta_k = y_k - t_k"):
        lambda n: (n.delta(2), n.a[2] - n.t),
    ("bishop", r"\delta_k = (y_k - t_k) h'(a_k)"):
        lambda n: (n.delta(2), (n.a[2] - n.t) * (1 - np.tanh(n.z[2]) ** 2)),
    ("softmax-classifier", r"\delta^{(2)} = \hat{y} - y"):
        lambda n: (n.delta(2), n.a[2] - n.t),
    ("softmax-classifier", r"\delta^{(2)} = (\hat{y} - y) \odot \hat{y} \odot (1 - \hat{y})"):
        lambda n: (n.delta(2), (n.a[2] - n.t) * n.a[2] * (1 - n.a[2])),
    ("softmax-classifier", r"\frac{\partial \hat y_i}{\partial z^{(2)}_j} = \hat y_i (1 - \hat y_j)"):
        lambda n: (_softmax_jacobian(n), np.outer(n.a[2], 1 - n.a[2])),
    ("softmax-classifier", r"\delta^{(1)} = (W^{(2)})^T\delta^{(2)} \odot \mathbb{1}[z^{(1)} > 0]"):
        lambda n: (n.delta(1), (n.W[2].T @ n.delta(2)) * (n.z[1] > 0)),
    ("lectures", r"\delta_j^L = a_j^L(1-a_j^L)\left(t_j - a_j^L\right)"):
        lambda n: (n.delta(3), n.a[3] * (1 - n.a[3]) * (n.t - n.a[3])),
    ("goodfellow", r"\nabla_{h^{(k-1)}} J = W^{(k)\top} \nabla_{a^{(k)}} J"):
        lambda n: (n.delta(1) / n.fprime(1), n.W[2].T @ n.delta(2)),
    ("wikipedia", r"\Delta w_{ij} = -\eta \frac{\partial E}{\partial w_{ij}} = - \eta o_i \delta_j"):
        lambda n: (-0.5 * n.grad_W(2), -0.5 * np.outer(n.delta(2), n.a[1])),
}


@pytest.mark.parametrize("key", list(SPOT_CHECKS), ids=[f"{f}:{c[:40]}" for f, c in SPOT_CHECKS])
def test_expectation_agrees_with_finite_differences(key):
    family, claim = key
    entry = next(e for f in FILES if f["family"] == family for e in f["entries"] if e["claim"] == claim)
    lhs, rhs = SPOT_CHECKS[key](Net(family))
    holds = np.shape(lhs) == np.shape(rhs) and np.allclose(lhs, rhs, rtol=1e-5, atol=1e-7)
    assert holds == (entry["expect"] == "correct"), (lhs, rhs)
