"""Matrix (per-sample vector) and batch form of backpropagation, and the update rules.

Built from the derivation, then checked against it: ``MatrixForm.check()``
expands every matrix equation into explicit SymPy matrices over the network's
canonical symbols and compares each entry with the concrete per-unit result
(``Derivation.delta`` and ``Derivation.compact_gradient``).

Shapes (per sample, column vectors): ``W{l}`` is n_l x n_{l-1}; ``b{l}``,
``z{l}``, ``a{l}``, ``delta{l}`` and ``fprime{l}`` (= f_l'(z{l}) element-wise)
are n_l x 1; ``x = a0``.  Batch form: rows are samples, ``Z{l} = A{l-1} W{l}^T
+ 1 b{l}^T`` and ``dE/dW{l} = (1/B) Delta{l}^T A{l-1}`` for the batch-mean loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .derive import Derivation
from .general import size

ALPHA = sp.Symbol("alpha", positive=True)
MU = sp.Symbol("mu", positive=True)
BETA1 = sp.Symbol("beta1", positive=True)
BETA2 = sp.Symbol("beta2", positive=True)
EPSILON = sp.Symbol("epsilon", positive=True)
STEP = sp.Symbol("tau", integer=True, positive=True)
BATCH = sp.Symbol("B", integer=True, positive=True)


@dataclass(frozen=True)
class MatrixEquation:
    """``lhs = rhs`` between matrix expressions, with the rule that gives it."""

    lhs: sp.Expr
    rhs: sp.Expr
    rule: str


def vec(name: str, rows) -> sp.MatrixSymbol:
    return sp.MatrixSymbol(name, rows, 1)


class MatrixForm:
    """The backward pass of a derivation in matrix and batch form."""

    def __init__(self, derivation: Derivation):
        self.d = derivation
        L, n = derivation.L, [size(l) for l in range(derivation.L + 1)]
        self.W = [None] + [sp.MatrixSymbol(f"W{l}", n[l], n[l - 1]) for l in range(1, L + 1)]
        self.b = [None] + [vec(f"b{l}", n[l]) for l in range(1, L + 1)]
        self.z = [None] + [vec(f"z{l}", n[l]) for l in range(1, L + 1)]
        self.a = [vec("x", n[0])] + [vec(f"a{l}", n[l]) for l in range(1, L + 1)]
        self.delta = [None] + [vec(f"delta{l}", n[l]) for l in range(1, L + 1)]
        self.fprime = [None] + [vec(f"fprime{l}", n[l]) for l in range(1, L + 1)]
        self.t = vec("t", n[L])
        self.grad_a = vec("gradE", n[L])  # dE/da{L}

    def forward(self) -> list[MatrixEquation]:
        eqs = []
        for l in range(1, self.d.L + 1):
            rhs = self.W[l] * self.a[l - 1]
            if self.d.network.layers[l - 1].bias:
                rhs = rhs + self.b[l]
            eqs.append(MatrixEquation(self.z[l], rhs, "weighted sum"))
        return eqs

    def backward(self) -> list[MatrixEquation]:
        """Output delta, the delta recursion, and the gradients of every layer."""
        d, L = self.d, self.d.L
        out = self.d.network.layers[-1].activation
        if d.simplifies_to_error:
            head = MatrixEquation(self.delta[L], self.a[L] - self.t, "simplification")
        elif out.vector:
            jac = sp.MatrixSymbol("J", size(L), size(L))  # softmax Jacobian, J_kj = a_k (delta_kj - a_j)
            head = MatrixEquation(self.delta[L], jac.T * self.grad_a, "chain rule")
        else:
            head = MatrixEquation(self.delta[L], sp.HadamardProduct(self.grad_a, self.fprime[L]), "chain rule")
        eqs = [head]
        for l in range(L - 1, 0, -1):
            eqs.append(MatrixEquation(self.delta[l], sp.HadamardProduct(self.W[l + 1].T * self.delta[l + 1],
                                                                        self.fprime[l]), "delta recursion"))
        for l in range(L, 0, -1):
            eqs.append(MatrixEquation(sp.MatrixSymbol(f"dW{l}", size(l), size(l - 1)),
                                      self.delta[l] * self.a[l - 1].T, "outer product"))
            if d.network.layers[l - 1].bias:
                eqs.append(MatrixEquation(vec(f"db{l}", size(l)), self.delta[l], "bias gradient"))
        return eqs

    def batch(self) -> list[MatrixEquation]:
        """Batch form: rows are the B samples; gradients of the batch-mean loss."""
        L, eqs = self.d.L, []
        n = [size(l) for l in range(L + 1)]
        A = [sp.MatrixSymbol("X", BATCH, n[0])] + [sp.MatrixSymbol(f"A{l}", BATCH, n[l]) for l in range(1, L + 1)]
        Dl = [None] + [sp.MatrixSymbol(f"Delta{l}", BATCH, n[l]) for l in range(1, L + 1)]
        Fp = [None] + [sp.MatrixSymbol(f"Fprime{l}", BATCH, n[l]) for l in range(1, L + 1)]
        ones = sp.MatrixSymbol("1", BATCH, 1)
        for l in range(1, L + 1):
            rhs = A[l - 1] * self.W[l].T
            if self.d.network.layers[l - 1].bias:
                rhs = rhs + ones * self.b[l].T
            eqs.append(MatrixEquation(sp.MatrixSymbol(f"Z{l}", BATCH, n[l]), rhs, "weighted sum, per row"))
        for l in range(L - 1, 0, -1):
            eqs.append(MatrixEquation(Dl[l], sp.HadamardProduct(Dl[l + 1] * self.W[l + 1], Fp[l]), "delta recursion"))
        for l in range(L, 0, -1):
            eqs.append(MatrixEquation(sp.MatrixSymbol(f"dW{l}", n[l], n[l - 1]),
                                      (1 / BATCH) * Dl[l].T * A[l - 1], "mean over the batch"))
            if self.d.network.layers[l - 1].bias:
                eqs.append(MatrixEquation(vec(f"db{l}", n[l]), (1 / BATCH) * Dl[l].T * ones, "mean over the batch"))
        return eqs

    def updates(self) -> list[MatrixEquation]:
        """The spec's optimizer applied to every weight matrix and bias vector (lhs <- rhs)."""
        name, eqs = self.d.network.optimizer.name, []
        for l in range(1, self.d.L + 1):
            eqs += update_rules(name, self.W[l], sp.MatrixSymbol(f"dW{l}", *self.W[l].shape), f"W{l}")
            if self.d.network.layers[l - 1].bias:
                eqs += update_rules(name, self.b[l], vec(f"db{l}", self.b[l].shape[0]), f"b{l}")
        return eqs

    # --------------------------------------------------------------- check against the concrete derivation

    def explicit(self) -> dict[sp.MatrixSymbol, sp.Matrix]:
        """Each matrix symbol as an explicit matrix over the canonical symbols of the network."""
        g, d, sizes = self.d.graph, self.d, self.d.network.sizes
        out: dict[sp.MatrixSymbol, sp.Matrix] = {self.a[0]: sp.Matrix(g.x), self.t: sp.Matrix(g.t)}
        L = d.L
        out[self.grad_a] = sp.Matrix([sp.diff(g.loss_def, a) for a in g.a[L]])
        for l in range(1, L + 1):
            act = d.network.layers[l - 1].activation
            out[self.W[l]] = sp.Matrix(g.W[l])
            if g.b[l] is not None:
                out[self.b[l]] = sp.Matrix(g.b[l])
            out[self.z[l]] = sp.Matrix(g.z[l])
            out[self.a[l]] = sp.Matrix(g.a[l])
            out[self.delta[l]] = sp.Matrix([d.delta_symbol(l, j) for j in range(1, sizes[l] + 1)])
            if not act.vector:
                out[self.fprime[l]] = sp.Matrix([act.derivative_at(z, a) for z, a in zip(g.z[l], g.a[l])])
        if d.network.layers[-1].activation.vector:
            m = sizes[L]
            out[sp.MatrixSymbol("J", size(L), size(L))] = sp.Matrix(
                m, m, lambda k, j: d._softmax_jacobian(k + 1, j + 1))
        return out

    def check(self) -> list[str]:
        """Expand the per-sample equations; return the entries that disagree (empty when all agree)."""
        d, sizes, problems = self.d, self.d.network.sizes, []
        values = self.explicit()
        concrete = {size(l): n for l, n in enumerate(sizes)}
        sub = {}
        if d.network.loss.targets_sum_to_one:
            t = d.targets
            sub = {t[-1]: 1 - sp.Add(*t[:-1])}
        for eq in self.backward():
            name = str(eq.lhs)
            rhs = eq.rhs.subs(concrete).xreplace({k.subs(concrete): v for k, v in values.items()})
            rhs = sp.Matrix(rhs.as_explicit()) if not isinstance(rhs, sp.MatrixBase) else rhs
            for r in range(rhs.rows):
                for c in range(rhs.cols):
                    expected = self._expected(name, r + 1, c + 1)
                    got = sp.expand(rhs[r, c]).xreplace(sub)
                    if sp.expand(got - sp.expand(expected).xreplace(sub)) != 0:
                        problems.append(f"{name}[{r + 1},{c + 1}]: matrix form gives {got}, derivation {expected}")
        return problems

    def _expected(self, name: str, r: int, c: int) -> sp.Expr:
        d, g = self.d, self.d.graph
        if name.startswith("delta"):
            return d.delta(int(name[5:]), r)
        if name.startswith("dW"):
            return d.compact_gradient(g.W[int(name[2:])][r - 1][c - 1])
        if name.startswith("db"):
            return d.compact_gradient(g.b[int(name[2:])][r - 1])
        raise KeyError(name)


def update_rules(optimizer_name: str, parameter: sp.Expr, gradient: sp.Expr, index: str = "") -> list[MatrixEquation]:
    """Update rules for one parameter (SGD as in the seeds, momentum, Adam); ``<-`` is lhs <- rhs."""
    if optimizer_name == "sgd":
        return [MatrixEquation(parameter, parameter - ALPHA * gradient, "gradient descent")]
    shape = getattr(parameter, "shape", None)

    def state(stem: str) -> sp.Expr:
        name = f"{stem}_{index}" if index else stem
        return sp.MatrixSymbol(name, *shape) if shape else sp.Symbol(name)

    if optimizer_name == "momentum":
        v = state("v")
        return [MatrixEquation(v, MU * v - ALPHA * gradient, "velocity"),
                MatrixEquation(parameter, parameter + v, "momentum step")]
    if optimizer_name == "adam":
        m, v, m_hat, v_hat = state("m"), state("v"), state("mhat"), state("vhat")
        square = sp.HadamardPower(gradient, 2) if shape else gradient**2
        if shape:  # element-wise square root and division, written with Hadamard operations
            step = sp.HadamardProduct(m_hat, sp.HadamardPower(sp.HadamardPower(v_hat, sp.Rational(1, 2))
                                                              + EPSILON * sp.OneMatrix(*shape), -1))
        else:
            step = m_hat / (sp.sqrt(v_hat) + EPSILON)
        return [MatrixEquation(m, BETA1 * m + (1 - BETA1) * gradient, "first moment"),
                MatrixEquation(v, BETA2 * v + (1 - BETA2) * square, "second moment"),
                MatrixEquation(m_hat, m / (1 - BETA1**STEP), "bias correction"),
                MatrixEquation(v_hat, v / (1 - BETA2**STEP), "bias correction"),
                MatrixEquation(parameter, parameter - ALPHA * step, "Adam step")]
    raise ValueError(f"unknown optimizer {optimizer_name!r}")
