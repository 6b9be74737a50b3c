"""Matrix (per-sample vector) and batch form of backpropagation, and the update rules.

Built from the derivation, then checked against it: ``MatrixForm.check()``
expands every matrix equation into explicit SymPy matrices over the network's
canonical symbols and compares each entry with the concrete per-unit result
(``Derivation.delta`` and ``Derivation.compact_gradient``): the per-sample
backward pass, the batch form (against per-sample results averaged over a
batch of distinct samples) and the SGD, momentum and Adam updates (against
the textbook rules written out per parameter).

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

    def updates(self, optimizer: str | None = None) -> list[MatrixEquation]:
        """An optimizer (default: the spec's) applied to every weight matrix and bias vector (lhs <- rhs)."""
        name, eqs = optimizer or self.d.network.optimizer.name, []
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
        """Expand every printed form; return the entries that disagree with the derivation (empty when all agree).

        The per-sample backward pass (:meth:`backward`), the batch form (:meth:`check_batch`) and the
        update rules of every optimizer (:meth:`check_updates`).
        """
        return self.check_backward() + self.check_batch() + self.check_updates()

    def check_backward(self) -> list[str]:
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

    def check_batch(self, samples: int = 2) -> list[str]:
        """Expand :meth:`batch` for ``samples`` rows and compare it with the per-sample derivation.

        Row s of ``X``, ``A{l}``, ``Delta{l}``, ``Fprime{l}`` holds sample s's own copy of the per-neuron
        symbols (parameters are shared).  ``Z{l}`` must give each sample's weighted sums, ``Delta{l}``
        each sample's delta (:meth:`Derivation.delta`), and ``dW{l}``, ``db{l}`` the mean over the samples of
        the per-sample gradients (:meth:`Derivation.compact_gradient`).
        """
        d, g, L, problems = self.d, self.d.graph, self.d.L, []
        sizes = d.network.sizes
        shared = set(g.parameters)
        copies = [self._sample_renaming(s, shared) for s in range(1, samples + 1)]

        def rows(per_sample) -> sp.Matrix:
            return sp.Matrix([[v.xreplace(c) for v in per_sample] for c in copies])

        values = {sp.MatrixSymbol("X", samples, sizes[0]): rows(g.x),
                  sp.MatrixSymbol("1", samples, 1): sp.ones(samples, 1)}
        for l in range(1, L + 1):
            act = d.network.layers[l - 1].activation
            values[sp.MatrixSymbol(f"W{l}", sizes[l], sizes[l - 1])] = sp.Matrix(g.W[l])
            if g.b[l] is not None:
                values[sp.MatrixSymbol(f"b{l}", sizes[l], 1)] = sp.Matrix(g.b[l])
            values[sp.MatrixSymbol(f"A{l}", samples, sizes[l])] = rows(g.a[l])
            values[sp.MatrixSymbol(f"Delta{l}", samples, sizes[l])] = rows(
                [d.delta_symbol(l, j) for j in range(1, sizes[l] + 1)])
            if not act.vector:
                values[sp.MatrixSymbol(f"Fprime{l}", samples, sizes[l])] = rows(
                    [act.derivative_at(z, a) for z, a in zip(g.z[l], g.a[l])])

        def mean(expr: sp.Expr) -> sp.Expr:
            return sp.Add(*(expr.xreplace(c) for c in copies)) / samples

        for eq in self.batch():
            name = str(eq.lhs)
            try:
                got = self._explicit(eq.rhs, values, {BATCH: samples, **self._concrete()})
            except (ValueError, TypeError, sp.matrices.common.ShapeError) as exc:
                problems.append(f"{name}: the batch form cannot be expanded ({exc})")
                continue
            l = int(name.lstrip("ZDeltadWb"))
            for r in range(got.rows):
                for c in range(got.cols):
                    if name.startswith("Z"):
                        z = sp.Add(*(w * a for w, a in zip(g.W[l][c], g.a[l - 1])))
                        expected = (z + (g.b[l][c] if g.b[l] is not None else 0)).xreplace(copies[r])
                    elif name.startswith("Delta"):
                        expected = d.delta(l, c + 1).xreplace(copies[r])
                    elif name.startswith("dW"):
                        expected = mean(d.compact_gradient(g.W[l][r][c]))
                    else:
                        expected = mean(d.compact_gradient(g.b[l][r]))
                    if sp.expand(got[r, c] - expected) != 0:
                        problems.append(f"{name}[{r + 1},{c + 1}]: batch form gives {got[r, c]}, "
                                        f"per-sample derivation {expected}")
        return problems

    def check_updates(self, optimizers=("sgd", "momentum", "adam")) -> list[str]:
        """Expand :meth:`updates` of each optimizer entry by entry and compare with the textbook rules.

        With p a parameter, g its gradient dE/dp and the state written before the step::

            SGD       p <- p - alpha g
            momentum  v <- mu v - alpha g;  p <- p + v
            Adam      m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2;
                      mhat <- m / (1 - beta1^tau);  vhat <- v / (1 - beta2^tau);
                      p <- p - alpha mhat / (sqrt(vhat) + epsilon)

        (each right side reads the values already assigned above it).
        """
        problems = []
        for name in optimizers:
            for eq in self.updates(name):
                stem = str(eq.lhs)
                kind, _, param = stem.partition("_") if "_" in stem else ("param", "", stem)
                entries = self._parameter_entries(param)
                values = self._update_values(param, entries)
                try:
                    got = self._explicit(eq.rhs, values, self._concrete())
                except (ValueError, TypeError) as exc:
                    problems.append(f"{name} {stem}: the update cannot be expanded ({exc})")
                    continue
                for i, p in enumerate(entries):
                    s = {key: sp.Symbol(f"{key}_{p.name}") for key in ("v", "m", "mhat", "vhat", "g")}
                    textbook = {
                        ("sgd", "param"): p - ALPHA * s["g"],
                        ("momentum", "v"): MU * s["v"] - ALPHA * s["g"],
                        ("momentum", "param"): p + s["v"],
                        ("adam", "m"): BETA1 * s["m"] + (1 - BETA1) * s["g"],
                        ("adam", "v"): BETA2 * s["v"] + (1 - BETA2) * s["g"] ** 2,
                        ("adam", "mhat"): s["m"] / (1 - BETA1 ** STEP),
                        ("adam", "vhat"): s["v"] / (1 - BETA2 ** STEP),
                        ("adam", "param"): p - ALPHA * s["mhat"] / (sp.sqrt(s["vhat"]) + EPSILON),
                    }.get((name, kind))
                    entry = got[i] if got.cols == 1 else got[i // got.cols, i % got.cols]
                    if textbook is None:
                        problems.append(f"{name} {stem}: no textbook rule for this update")
                        break
                    diff = sp.expand(entry - textbook)
                    if diff != 0 and sp.simplify(diff) != 0:
                        problems.append(f"{name} {stem}[{i + 1}]: update gives {entry}, textbook {textbook}")
        return problems

    # --------------------------------------------------------------- helpers of the checks

    def _concrete(self) -> dict:
        return {size(l): n for l, n in enumerate(self.d.network.sizes)}

    @staticmethod
    def _explicit(expr: sp.Expr, values: dict, concrete: dict) -> sp.Matrix:
        """A matrix expression with its symbols replaced by explicit matrices, as one explicit matrix."""
        expr = expr.subs(concrete).xreplace({k.subs(concrete): v for k, v in values.items()})
        return sp.Matrix(expr.as_explicit()) if not isinstance(expr, sp.MatrixBase) else sp.Matrix(expr)

    def _sample_renaming(self, s: int, shared: set) -> dict:
        """Sample s's copy of every per-neuron symbol (inputs, targets, z, a, deltas); parameters are shared."""
        g, d = self.d.graph, self.d
        names = list(g.x) + list(g.t)
        for l in range(1, d.L + 1):
            names += list(g.z[l]) + list(g.a[l]) + [d.delta_symbol(l, j) for j in range(1, len(g.z[l]) + 1)]
        return {v: sp.Symbol(f"{v.name}^({s})", real=True) for v in names if v not in shared}

    def _parameter_entries(self, param: str) -> list[sp.Symbol]:
        """The canonical symbols of ``W{l}`` (row-major) or ``b{l}``."""
        g, l = self.d.graph, int(param[1:])
        return [w for row in g.W[l] for w in row] if param.startswith("W") else list(g.b[l])

    def _update_values(self, param: str, entries: list[sp.Symbol]) -> dict:
        """Explicit matrices for a parameter, its gradient and its optimizer state, entry by entry."""
        g, l = self.d.graph, int(param[1:])
        shape = (len(g.W[l]), len(g.W[l][0])) if param.startswith("W") else (len(entries), 1)
        out = {}
        for key, stem in (("", param), ("g", f"d{param}"), ("v", f"v_{param}"), ("m", f"m_{param}"),
                          ("mhat", f"mhat_{param}"), ("vhat", f"vhat_{param}")):
            symbols = entries if key == "" else [sp.Symbol(f"{key}_{p.name}") for p in entries]
            out[sp.MatrixSymbol(stem, *shape)] = sp.Matrix(*shape, symbols)
        return out

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
