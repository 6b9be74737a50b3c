"""The one registry of activations and losses.

Every activation entry carries its SymPy form ``f(x)``, its derivative as SymPy
computes it (:attr:`Activation.derivative`), the textbook "convenient" form of
that derivative written with ``y = f(x)`` (proven equal by the tests), its LaTeX
name, its output range and its convention at kinks.  Adding an activation means
adding one entry to :data:`ACTIVATIONS`; a custom formula goes through
:func:`custom_activation` and is treated exactly like a built-in one.

Losses are per sample and written over the output activations ``a`` and the
targets ``t``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from ..errors import ExpressionError
from .safeexpr import parse_formula

X = sp.Symbol("x", real=True)
"""The registry's input variable."""
Y = sp.Symbol("y", real=True)
"""Stands for ``f(x)`` in convenient derivative forms."""


@dataclass(frozen=True)
class Activation:
    """An element-wise activation (or softmax, the one vector-valued entry)."""

    name: str
    expr: sp.Expr | None
    convenient: sp.Expr | None
    latex: str
    title: str
    output_range: str = "real"  # "real", "unit" (0,1), "open_pm1" (-1,1), "nonneg", "simplex"
    kink: str | None = None
    params: tuple[tuple[str, sp.Expr], ...] = ()
    vector: bool = False

    @property
    def derivative(self) -> sp.Expr:
        """f'(x), computed by SymPy from :attr:`expr`."""
        if self.vector:
            raise TypeError("softmax has a Jacobian, not an element-wise derivative")
        return sp.diff(self.expr, X)

    def at(self, u: sp.Expr) -> sp.Expr:
        """f(u)."""
        return self.expr.subs(X, u)

    def derivative_at(self, u: sp.Expr, value: sp.Expr | None = None) -> sp.Expr:
        """The convenient f'(u), written with ``value`` (= f(u)) where the form uses y."""
        form = self.convenient if self.convenient is not None else self.derivative
        return form.subs({Y: value if value is not None else self.at(u), X: u})

    @property
    def step_condition(self) -> sp.Expr | None:
        """The condition c(x) where the convenient f'(x) is the 0/1 step of c (ReLU: x > 0), else None:
        code may then keep f'(z) from the forward pass as the bool array c(z)."""
        form = self.convenient
        if isinstance(form, sp.Piecewise) and len(form.args) == 2:
            (low, cond), (high, rest) = form.args
            if low == 0 and high == 1 and rest == sp.true:
                return cond.negated
        return None

    @property
    def max_constant(self) -> sp.Expr | None:
        """The constant c where f(x) = max(x, c), read off the Piecewise form (ReLU: 0), else None:
        code may then apply f as a maximum with c."""
        form = self.expr
        if isinstance(form, sp.Piecewise) and len(form.args) == 2:
            (low, cond), (high, rest) = form.args
            if low.is_number and high == X and rest == sp.true and cond in (sp.Le(X, low), sp.Lt(X, low)):
                return low
        return None

    @cached_property
    def keeps_sign(self) -> bool:
        """Whether f(x) <= 0 exactly where x <= 0 (ReLU, leaky ReLU, ELU, tanh), by SymPy's solveset:
        code may then read a condition z <= 0 or z > 0 on the pre-activation z as the same one on a = f(z)."""
        if self.vector:
            return False
        return sp.solveset(self.expr <= 0, X, sp.S.Reals) == sp.Interval(-sp.oo, 0)

    @property
    def uses_output(self) -> bool:
        """True when the convenient derivative is written with y = f(x)."""
        return self.convenient is not None and self.convenient.has(Y)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.name}({extra})" if extra else self.name


def _relu_like(slope: sp.Expr) -> sp.Expr:
    return sp.Piecewise((slope * X, X <= 0), (X, True))


def _entry(name, expr, convenient, latex, title, **kw) -> Activation:
    return Activation(name, expr, convenient, latex, title, **kw)


def _leaky_relu(alpha: sp.Expr) -> Activation:
    return _entry(
        "leaky_relu", _relu_like(alpha), sp.Piecewise((alpha, X <= 0), (1, True)),
        r"\operatorname{lrelu}", "leaky ReLU",
        kink=f"leaky ReLU'(0) = alpha = {alpha} (the left derivative)",
        params=(("alpha", alpha),))


def _elu(alpha: sp.Expr) -> Activation:
    return _entry(
        "elu", sp.Piecewise((alpha * (sp.exp(X) - 1), X <= 0), (X, True)),
        sp.Piecewise((Y + alpha, X <= 0), (1, True)),
        r"\operatorname{elu}", "ELU",
        kink=f"ELU'(0) = alpha = {alpha} (the left derivative)",
        params=(("alpha", alpha),))


_SIGMOID = 1 / (1 + sp.exp(-X))

_FIXED: dict[str, Activation] = {
    "identity": _entry("identity", X, sp.Integer(1), r"\operatorname{id}", "identity"),
    "sigmoid": _entry("sigmoid", _SIGMOID, Y * (1 - Y), r"\sigma", "logistic sigmoid",
                      output_range="unit"),
    "tanh": _entry("tanh", sp.tanh(X), 1 - Y**2, r"\tanh", "hyperbolic tangent",
                   output_range="open_pm1"),
    "relu": _entry("relu", _relu_like(sp.Integer(0)), sp.Piecewise((0, X <= 0), (1, True)),
                   r"\operatorname{ReLU}", "ReLU", output_range="nonneg",
                   kink="ReLU'(0) = 0 (the left derivative)"),
    "softplus": _entry("softplus", sp.log(1 + sp.exp(X)), _SIGMOID, r"\operatorname{softplus}",
                       "softplus", output_range="positive"),
    "silu": _entry("silu", X * _SIGMOID, _SIGMOID * (1 + X * (1 - _SIGMOID)),
                   r"\operatorname{silu}", "SiLU (swish)"),
    "softmax": Activation("softmax", None, None, r"\operatorname{softmax}", "softmax",
                          output_range="simplex", vector=True),
}

_PARAMETRIC: dict[str, tuple[Callable[[sp.Expr], Activation], float]] = {
    "leaky_relu": (_leaky_relu, 0.01),
    "elu": (_elu, 1.0),
}

ACTIVATION_NAMES: tuple[str, ...] = tuple(sorted([*_FIXED, *_PARAMETRIC]))


def exact_number(value) -> sp.Expr:
    """A user's number as an exact SymPy rational (0.01 -> 1/100)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return sp.Rational(repr(value)) if isinstance(value, float) else sp.Integer(value)


def activation(name: str, **params) -> Activation:
    """Look up a built-in activation, with parameters such as ``alpha``."""
    if name in _FIXED:
        if params:
            raise TypeError(f"{name} takes no parameters (got {', '.join(params)})")
        return _FIXED[name]
    if name in _PARAMETRIC:
        factory, default = _PARAMETRIC[name]
        unknown = set(params) - {"alpha"}
        if unknown:
            raise TypeError(f"{name} takes only alpha (got {', '.join(sorted(unknown))})")
        return factory(exact_number(params.get("alpha", default)))
    raise KeyError(name)


def custom_activation(formula: str) -> Activation:
    """An element-wise activation from a formula in x, differentiated by SymPy."""
    expr = parse_formula(formula, "x", X)
    if not expr.has(X):
        raise ExpressionError(f"formula {formula!r} does not depend on x; an activation must")
    return Activation("custom", expr, None, "f", f"custom f(x) = {formula}")


# ----------------------------------------------------------------------------- losses


@dataclass(frozen=True)
class Loss:
    """A per-sample loss ``E = scale(m) * sum_k term(a_k, t_k)`` over m outputs."""

    name: str
    title: str
    term: Callable[[sp.Expr, sp.Expr], sp.Expr] = field(repr=False)
    scale: Callable[[sp.Expr], sp.Expr] = field(repr=False, default=lambda m: sp.Integer(1))
    requires: str | None = None  # the output range the loss needs: "unit" or "simplex"
    targets_sum_to_one: bool = False
    target_kind: str = "real"  # how random targets are drawn: "real", "unit", "simplex"

    def __call__(self, a: Sequence[sp.Expr], t: Sequence[sp.Expr]) -> sp.Expr:
        """E over concrete output and target symbols."""
        return self.scale(sp.Integer(len(a))) * sp.Add(*(self.term(ak, tk) for ak, tk in zip(a, t)))

    def indexed(self, a, t, k, m) -> sp.Expr:
        """E in general index form: ``scale(m) * Sum(term(a[k], t[k]), (k, 1, m))``."""
        return self.scale(m) * sp.Sum(self.term(a[k], t[k]), (k, 1, m))


LOSSES: dict[str, Loss] = {
    "half_sse": Loss("half_sse", "half the sum of squared errors",
                     lambda a, t: (a - t) ** 2, lambda m: sp.Rational(1, 2)),
    "sse": Loss("sse", "sum of squared errors", lambda a, t: (a - t) ** 2),
    "mse": Loss("mse", "mean squared error over the outputs",
                lambda a, t: (a - t) ** 2, lambda m: 1 / m),
    "binary_cross_entropy": Loss(
        "binary_cross_entropy", "binary cross-entropy, summed over the outputs",
        lambda a, t: -(t * sp.log(a) + (1 - t) * sp.log(1 - a)),
        requires="unit", target_kind="unit"),
    "categorical_cross_entropy": Loss(
        "categorical_cross_entropy", "categorical cross-entropy",
        lambda a, t: -t * sp.log(a),
        requires="simplex", targets_sum_to_one=True, target_kind="simplex"),
}
LOSS_NAMES: tuple[str, ...] = tuple(LOSSES)

RANGE_WORDS = {"unit": "in (0, 1)", "simplex": "a probability vector (softmax)"}


def loss_accepts(loss: Loss, act: Activation) -> bool:
    """Whether ``loss`` is defined on the outputs of ``act``."""
    if loss.requires is None:
        return True
    if loss.requires == "simplex":
        return act.output_range == "simplex"
    return act.output_range == "unit"


def allowed_pairs() -> list[tuple[str, str]]:
    """Every (output activation, loss) pair the registry allows (custom excluded)."""
    return [(a, l) for a in ACTIVATION_NAMES for l in LOSS_NAMES
            if loss_accepts(LOSSES[l], activation(a))]


# ----------------------------------------------------------------------------- NumPy code


@dataclass(frozen=True)
class NumpyCode:
    """Stable NumPy source of one registry entry, copied into generated code.

    ``source`` defines a function named after the entry; ``out`` says whether it
    accepts an ``out=`` buffer; ``needs`` names other entries it calls.  Every
    function works on floats and on arrays (the last axis holds the units).
    """

    source: str
    out: bool = False
    needs: tuple[str, ...] = ()
    fortran_out: bool = False  # faster into a Fortran-ordered (batch, units) out


NUMPY_ACTIVATIONS: dict[str, NumpyCode] = {
    "sigmoid": NumpyCode('''def sigmoid(z, out=None):
    """Logistic sigmoid exp(-log(1 + exp(-z))), stable: logaddexp never overflows."""
    if out is None:
        return np.exp(-np.logaddexp(0, -z))
    np.negative(z, out=out)
    np.logaddexp(0, out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)''', out=True),
    "tanh": NumpyCode('''def tanh(z, out=None):
    """Hyperbolic tangent (NumPy's is stable)."""
    return np.tanh(z, out=out)''', out=True),
    "relu": NumpyCode('''def relu(z, out=None):
    """ReLU: max(z, 0)."""
    return np.maximum(z, 0, out=out)''', out=True),
    "leaky_relu": NumpyCode('''def leaky_relu(z, alpha):
    """Leaky ReLU: alpha * z for z <= 0, else z."""
    return np.where(z <= 0, alpha * z, z)'''),
    "elu": NumpyCode('''def elu(z, alpha):
    """ELU: alpha * (exp(z) - 1) for z <= 0, else z; expm1 of min(z, 0) never overflows."""
    return np.where(z <= 0, alpha * np.expm1(np.minimum(z, 0)), z)'''),
    "softplus": NumpyCode('''def softplus(z, out=None):
    """Softplus log(1 + exp(z)) as logaddexp(0, z): never overflows."""
    return np.logaddexp(0, z, out=out)''', out=True),
    "silu": NumpyCode('''def silu(z):
    """SiLU z * sigmoid(z), with the stable sigmoid."""
    return z * sigmoid(z)''', needs=("sigmoid",)),
    "softmax": NumpyCode('''def softmax(z, out=None):
    """Softmax over the last axis, stable: the maximum is subtracted before exp.

    The row sums are a product with ones (BLAS), the row maxima np.maximum.reduce: on a few
    classes per row both cost a fraction of np.sum and np.max.  Into a Fortran-ordered (batch,
    classes) ``out`` it works on the transpose, where each reduction over the classes is one
    vectorized pass across the batch (256 x 10 float32: 10 against 32 microseconds).
    """
    if out is not None and out.ndim == 2 and out.flags.f_contiguous and not out.flags.c_contiguous:
        zt = out.T
        np.copyto(zt, z.T)
        zt -= np.maximum.reduce(zt, axis=0)
        np.exp(zt, out=zt)
        zt /= np.add.reduce(zt, axis=0)
        return out
    out = np.subtract(z, np.maximum.reduce(z, axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= np.dot(out, np.ones(out.shape[-1], out.dtype))[..., None]
    return out''', out=True, fortran_out=True),
}
"""Stable NumPy code per activation (identity needs none; custom ones are printed)."""

FLOAT_ACTIVATIONS: dict[str, NumpyCode] = {
    "sigmoid": NumpyCode('''def sigmoid_float(z):
    """Logistic sigmoid of a float, stable: math.exp only of -|z|, which never overflows."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)'''),
    "tanh": NumpyCode('''def tanh_float(z):
    """Hyperbolic tangent of a float (math.tanh never overflows)."""
    return math.tanh(z)'''),
    "relu": NumpyCode('''def relu_float(z):
    """ReLU of a float: max(z, 0); NaN stays NaN, as with np.maximum."""
    return max(z, 0.0)'''),
    "leaky_relu": NumpyCode('''def leaky_relu_float(z, alpha):
    """Leaky ReLU of a float: alpha * z for z <= 0, else z."""
    return alpha * z if z <= 0 else z'''),
    "elu": NumpyCode('''def elu_float(z, alpha):
    """ELU of a float: alpha * (exp(z) - 1) for z <= 0, else z; expm1 only of z <= 0, which never overflows."""
    return alpha * math.expm1(z) if z <= 0 else z'''),
    "softplus": NumpyCode('''def softplus_float(z):
    """Softplus log(1 + exp(z)) of a float as max(z, 0) + log1p(exp(-|z|)): never overflows."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))'''),
    "silu": NumpyCode('''def silu_float(z):
    """SiLU z * sigmoid(z) of a float, with the stable sigmoid."""
    return z * sigmoid_float(z)''', needs=("sigmoid",)),
    "softmax": NumpyCode('''def softmax_float(*z):
    """Softmax of the floats z (one per unit), stable: the maximum is subtracted before exp."""
    top = max(z)
    e = [math.exp(v - top) for v in z]
    total = sum(e)
    return [v / total for v in e]'''),
}
"""The same activations on Python floats with the ``math`` module, for the SGD step of tiny networks
(``sgd_step_floats`` in model.py): each function ``{name}_float`` is as stable as its NumPy form."""

NUMPY_LOSSES_FROM_LOGITS: dict[tuple[str, str], NumpyCode] = {
    ("sigmoid", "binary_cross_entropy"): NumpyCode('''def binary_cross_entropy_from_logits(z, t):
    """Per-sample BCE of sigmoid(z) against t from the logits: sum of softplus(z) - t z."""
    return np.sum(np.logaddexp(0, z) - t * z, axis=-1)'''),
    ("softmax", "categorical_cross_entropy"): NumpyCode('''def categorical_cross_entropy_from_logits(z, t):
    """Per-sample CE of softmax(z) against t with log-softmax (log-sum-exp)."""
    shifted = z - np.max(z, axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    return -np.sum(t * log_softmax, axis=-1)'''),
}
"""Losses computed from the pre-activations where the output activation pairs with them.
Other losses are printed from :attr:`Loss.term` by the code printer."""

ARRAY_API_ACTIVATIONS: dict[str, NumpyCode] = {
    "sigmoid": NumpyCode('''def sigmoid(z, xp):
    """Logistic sigmoid exp(-log(1 + exp(-z))), stable: logaddexp never overflows."""
    return xp.exp(-xp.logaddexp(0, -z))'''),
    "tanh": NumpyCode('''def tanh(z, xp):
    """Hyperbolic tangent (stable in every library)."""
    return xp.tanh(z)'''),
    "relu": NumpyCode('''def relu(z, xp):
    """ReLU: max(z, 0)."""
    return xp.maximum(z, 0)'''),
    "leaky_relu": NumpyCode('''def leaky_relu(z, xp, alpha):
    """Leaky ReLU: alpha * z for z <= 0, else z."""
    return xp.where(z <= 0, alpha * z, z)'''),
    "elu": NumpyCode('''def elu(z, xp, alpha):
    """ELU: alpha * (exp(z) - 1) for z <= 0, else z; expm1 of min(z, 0) never overflows."""
    return xp.where(z <= 0, alpha * xp.expm1(xp.minimum(z, 0)), z)'''),
    "softplus": NumpyCode('''def softplus(z, xp):
    """Softplus log(1 + exp(z)) as logaddexp(0, z): never overflows."""
    return xp.logaddexp(0, z)'''),
    "silu": NumpyCode('''def silu(z, xp):
    """SiLU z * sigmoid(z), with the stable sigmoid."""
    return z * sigmoid(z, xp)''', needs=("sigmoid",)),
    "softmax": NumpyCode('''def softmax(z, xp):
    """Softmax over the last axis, stable: the maximum is subtracted before exp."""
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)'''),
}
"""Stable Array API code per activation: the standard's functions only, no ``out=``."""

ARRAY_API_LOSSES_FROM_LOGITS: dict[tuple[str, str], NumpyCode] = {
    ("sigmoid", "binary_cross_entropy"): NumpyCode('''def binary_cross_entropy_from_logits(z, t, xp):
    """Per-sample BCE of sigmoid(z) against t from the logits: sum of softplus(z) - t z."""
    return xp.sum(xp.logaddexp(0, z) - t * z, axis=-1)'''),
    ("softmax", "categorical_cross_entropy"): NumpyCode('''def categorical_cross_entropy_from_logits(z, t, xp):
    """Per-sample CE of softmax(z) against t with log-softmax (log-sum-exp)."""
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    log_softmax = shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    return -xp.sum(t * log_softmax, axis=-1)'''),
}
"""Losses from the pre-activations, as in :data:`NUMPY_LOSSES_FROM_LOGITS`."""
