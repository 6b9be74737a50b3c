"""Batch normalization (Ioffe and Szegedy, 2015), training mode.

Per unit ``j`` over the ``B`` samples of the batch::

    mu_j = 1/B sum_b x[b, j]            sigma2_j = 1/B sum_b (x[b, j] - mu_j)^2
    xhat[i, j] = (x[i, j] - mu_j) / sqrt(sigma2_j + eps)
    y[i, j] = gamma_j xhat[i, j] + beta_j

One sample's output depends on every sample of the batch, so dE/dx[i, j] runs
through mu_j and sigma2_j as well as through xhat[i, j].  The compact form is
``gamma_j / (B sigmahat_j) (B g[i, j] - sum_b g[b, j] - xhat[i, j] sum_b g[b, j] xhat[b, j])``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .base import Doc, LayerKind, Param
from .checks import epsilon_option, momentum_option


def _stats(x: sp.Matrix, eps: sp.Expr):
    """Per-column mean, variance, sigma-hat and x-hat of a B x n matrix."""
    B = x.rows
    mu = [sp.Add(*x[:, j]) / B for j in range(x.cols)]
    var = [sp.Add(*((x[b, j] - mu[j]) ** 2 for b in range(B))) / B for j in range(x.cols)]
    sig = [sp.sqrt(v + eps) for v in var]
    xhat = sp.Matrix(B, x.cols, lambda b, j: (x[b, j] - mu[j]) / sig[j])
    return mu, var, sig, xhat


def forward(inputs, params, opts, aux=None) -> sp.Matrix:
    """The index-form definition, instantiated on a B x n batch of symbols."""
    (x,) = inputs
    _, _, _, xhat = _stats(x, opts["epsilon"])
    gamma, beta = params["gamma"], params["beta"]
    return sp.Matrix(x.rows, x.cols, lambda b, j: gamma[j] * xhat[b, j] + beta[j])


def backward(g, inputs, params, opts, aux=None):
    """The compact form from upstream ``g`` (proved equal to SymPy's derivative by the engine)."""
    (x,) = inputs
    B = x.rows
    _, _, sig, xhat = _stats(x, opts["epsilon"])
    gamma = params["gamma"]
    dgamma = sp.Matrix([[sp.Add(*(g[b, j] * xhat[b, j] for b in range(B))) for j in range(x.cols)]])
    dbeta = sp.Matrix([[sp.Add(*g[:, j]) for j in range(x.cols)]])
    dx = sp.Matrix(B, x.cols, lambda i, j: gamma[j] / (B * sig[j])
                   * (B * g[i, j] - dbeta[j] - xhat[i, j] * dgamma[j]))
    return (dx,), {"gamma": dgamma, "beta": dbeta}


def per_path(g, inputs, params, opts):
    """The paper's per-path equations (through x-hat, sigma^2_B and mu_B), as SymPy.

    Returns ``(dxhat, dvar, dmu, dx)``; the engine shows ``dx`` equal to :func:`backward`.
    """
    (x,) = inputs
    B, n = x.shape
    eps = opts["epsilon"]
    mu, var, _, _ = _stats(x, eps)
    gamma = params["gamma"]
    dxhat = sp.Matrix(B, n, lambda i, j: g[i, j] * gamma[j])
    dvar = [sp.Add(*(dxhat[i, j] * (x[i, j] - mu[j]) for i in range(B)))
            * sp.Rational(-1, 2) * (var[j] + eps) ** sp.Rational(-3, 2) for j in range(n)]
    dmu = [sp.Add(*(dxhat[i, j] * (-1 / sp.sqrt(var[j] + eps)) for i in range(B)))
           + dvar[j] * sp.Add(*(-2 * (x[i, j] - mu[j]) for i in range(B))) / B for j in range(n)]
    dx = sp.Matrix(B, n, lambda i, j: dxhat[i, j] / sp.sqrt(var[j] + eps)
                   + dvar[j] * 2 * (x[i, j] - mu[j]) / B + dmu[j] / B)
    return dxhat, dvar, dmu, dx


# ----------------------------------------------------------------------------- NumPy


def batchnorm_forward(x, gamma, beta, epsilon):
    """Batch normalization in training mode: statistics over the batch (axis 0)."""
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    sigma = np.sqrt(var + epsilon)
    xhat = (x - mu) / sigma
    return gamma * xhat + beta, xhat, sigma, mu, var


def batchnorm_backward(g, gamma, xhat, sigma):
    """dE/dx, dE/dgamma, dE/dbeta in the compact form (the mu and sigma^2 paths folded in)."""
    B = g.shape[0]
    dgamma = np.sum(g * xhat, axis=0)
    dbeta = np.sum(g, axis=0)
    dx = gamma / (B * sigma) * (B * g - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------- Array API


def batchnorm_forward_xp(x, gamma, beta, epsilon, xp):
    """Batch normalization in training mode, any Array API namespace: statistics over the batch (axis 0)."""
    mu = xp.mean(x, axis=0)
    var = xp.var(x, axis=0)
    sigma = xp.sqrt(var + epsilon)
    xhat = (x - mu) / sigma
    return gamma * xhat + beta, xhat, sigma, mu, var


def batchnorm_backward_xp(g, gamma, xhat, sigma, xp):
    """dE/dx, dE/dgamma, dE/dbeta in the compact form, any Array API namespace."""
    B = g.shape[0]
    dgamma = xp.sum(g * xhat, axis=0)
    dbeta = xp.sum(g, axis=0)
    dx = gamma / (B * sigma) * (B * g - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def _np_forward(inputs, params, opts, aux=None):
    y, xhat, sigma, _, _ = batchnorm_forward(inputs[0], params["gamma"], params["beta"], opts["epsilon"])
    return y, (xhat, sigma)


def _np_backward(g, cache, params, opts):
    dx, dgamma, dbeta = batchnorm_backward(g, params["gamma"], *cache)
    return (dx,), {"gamma": dgamma, "beta": dbeta}


KIND = LayerKind(
    name="batchnorm",
    title="batch normalization",
    options=(epsilon_option(), momentum_option()),
    params=lambda opts: (
        Param("gamma", r"\gamma", lambda fan_in, n: (n,), init="ones", title="scale"),
        Param("beta", r"\beta", lambda fan_in, n: (n,), init="zeros", title="shift"),
    ),
    width=lambda fan_ins, opts: fan_ins[0],
    forward=forward,
    backward=backward,
    numpy_forward=_np_forward,
    numpy_backward=_np_backward,
    code=(batchnorm_forward, batchnorm_backward),
    code_xp=(batchnorm_forward_xp, batchnorm_backward_xp),
    batch_coupled=True,
    claim_symbols=(("mean", r"\mu_B"), ("variance", r"\sigma_B^2"), ("normalized", r"\hat{x}_i"),
                   ("scale", r"\gamma"), ("shift", r"\beta"), ("batch", "m"), ("epsilon", r"\epsilon")),
    doc=Doc(
        title="Batch normalization",
        summary=("Each unit is normalized over the {B} samples of the batch, then scaled and shifted. "
                 "One sample's output depends on every sample of the batch, so the gradient of {x}_{{i}} "
                 "flows through the batch mean and variance as well as through its own normalized value."),
        forward=(r"\mu_{{B,j}} = \frac{{1}}{{{B}}} \sum_{{b=1}}^{{{B}}} {x}_{{bj}}",
                 r"\sigma^2_{{B,j}} = \frac{{1}}{{{B}}} \sum_{{b=1}}^{{{B}}} \left({x}_{{bj}} - \mu_{{B,j}}\right)^2",
                 r"\hat{{x}}_{{ij}} = \frac{{{x}_{{ij}} - \mu_{{B,j}}}}{{\sqrt{{\sigma^2_{{B,j}} + \epsilon}}}}",
                 r"{y}_{{ij}} = \gamma_j \hat{{x}}_{{ij}} + \beta_j"),
        local=(r"\frac{{\partial \mu_{{B,j}}}}{{\partial {x}_{{ij}}}} = \frac{{1}}{{{B}}}",
               r"\frac{{\partial \sigma^2_{{B,j}}}}{{\partial {x}_{{ij}}}} = \frac{{2\left({x}_{{ij}} - \mu_{{B,j}}\right)}}{{{B}}}",
               r"\frac{{\partial \hat{{x}}_{{ij}}}}{{\partial \sigma^2_{{B,j}}}} = -\frac{{1}}{{2}}\left({x}_{{ij}} - \mu_{{B,j}}\right)\left(\sigma^2_{{B,j}} + \epsilon\right)^{{-3/2}}",
               r"\frac{{\partial {y}_{{ij}}}}{{\partial \hat{{x}}_{{ij}}}} = \gamma_j"),
        backward=(r"\frac{{\partial {E}}}{{\partial \hat{{x}}_{{ij}}}} = {g}_{{ij}} \gamma_j",
                  r"\frac{{\partial {E}}}{{\partial \sigma^2_{{B,j}}}} = \sum_{{i=1}}^{{{B}}} \frac{{\partial {E}}}{{\partial \hat{{x}}_{{ij}}}} \left({x}_{{ij}} - \mu_{{B,j}}\right) \cdot \left(-\frac{{1}}{{2}}\right) \left(\sigma^2_{{B,j}} + \epsilon\right)^{{-3/2}}",
                  r"\frac{{\partial {E}}}{{\partial \mu_{{B,j}}}} = \left(\sum_{{i=1}}^{{{B}}} \frac{{\partial {E}}}{{\partial \hat{{x}}_{{ij}}}} \cdot \frac{{-1}}{{\sqrt{{\sigma^2_{{B,j}} + \epsilon}}}}\right) + \frac{{\partial {E}}}{{\partial \sigma^2_{{B,j}}}} \cdot \frac{{\sum_{{i=1}}^{{{B}}} -2\left({x}_{{ij}} - \mu_{{B,j}}\right)}}{{{B}}}",
                  r"\frac{{\partial {E}}}{{\partial {x}_{{ij}}}} = \frac{{\partial {E}}}{{\partial \hat{{x}}_{{ij}}}} \cdot \frac{{1}}{{\sqrt{{\sigma^2_{{B,j}} + \epsilon}}}} + \frac{{\partial {E}}}{{\partial \sigma^2_{{B,j}}}} \cdot \frac{{2\left({x}_{{ij}} - \mu_{{B,j}}\right)}}{{{B}}} + \frac{{\partial {E}}}{{\partial \mu_{{B,j}}}} \cdot \frac{{1}}{{{B}}}",
                  r"\frac{{\partial {E}}}{{\partial {x}_{{ij}}}} = \frac{{\gamma_j}}{{{B} \hat{{\sigma}}_j}} \left({B} \, {g}_{{ij}} - \sum_{{b=1}}^{{{B}}} {g}_{{bj}} - \hat{{x}}_{{ij}} \sum_{{b=1}}^{{{B}}} {g}_{{bj}} \hat{{x}}_{{bj}}\right), \quad \hat{{\sigma}}_j = \sqrt{{\sigma^2_{{B,j}} + \epsilon}}"),
        params=(r"\frac{{\partial {E}}}{{\partial \gamma_j}} = \sum_{{b=1}}^{{{B}}} {g}_{{bj}} \hat{{x}}_{{bj}}",
                r"\frac{{\partial {E}}}{{\partial \beta_j}} = \sum_{{b=1}}^{{{B}}} {g}_{{bj}}"),
    ),
)
