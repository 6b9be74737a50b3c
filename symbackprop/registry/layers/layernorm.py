"""Layer normalization (Ba, Kiros and Hinton, 2016): per-sample statistics over the units.

For sample ``i`` over its ``n`` units::

    mu_i = 1/n sum_k x[i, k]            sigma2_i = 1/n sum_k (x[i, k] - mu_i)^2
    xhat[i, j] = (x[i, j] - mu_i) / sqrt(sigma2_i + eps),   y[i, j] = gamma_j xhat[i, j] + beta_j

Samples do not interact; the units of one sample do.  With ``h = g * gamma`` the
compact form is ``dE/dx[i, j] = (n h[i, j] - sum_k h[i, k] - xhat[i, j] sum_k h[i, k] xhat[i, k]) / (n sigmahat_i)``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .base import Doc, LayerKind, Param
from .batchnorm import _stats as batchnorm_stats
from .checks import epsilon_option


def _stats(x: sp.Matrix, eps: sp.Expr):
    """Per-row mean, variance, sigma-hat and x-hat: batch normalization's statistics of the transpose."""
    mu, var, sig, xhat_t = batchnorm_stats(x.T, eps)
    return mu, var, sig, xhat_t.T


def forward(inputs, params, opts, aux=None) -> sp.Matrix:
    """The index-form definition on a B x n batch of symbols."""
    (x,) = inputs
    _, _, _, xhat = _stats(x, opts["epsilon"])
    gamma, beta = params["gamma"], params["beta"]
    return sp.Matrix(x.rows, x.cols, lambda i, j: gamma[j] * xhat[i, j] + beta[j])


def backward(g, inputs, params, opts, aux=None):
    """The compact form from upstream ``g``."""
    (x,) = inputs
    n = x.cols
    _, _, sig, xhat = _stats(x, opts["epsilon"])
    gamma = params["gamma"]
    h = sp.Matrix(x.rows, n, lambda i, j: g[i, j] * gamma[j])
    hs = [sp.Add(*h[i, :]) for i in range(x.rows)]
    hx = [sp.Add(*(h[i, k] * xhat[i, k] for k in range(n))) for i in range(x.rows)]
    dx = sp.Matrix(x.rows, n, lambda i, j: (n * h[i, j] - hs[i] - xhat[i, j] * hx[i]) / (n * sig[i]))
    dgamma = sp.Matrix([[sp.Add(*(g[b, j] * xhat[b, j] for b in range(x.rows))) for j in range(n)]])
    dbeta = sp.Matrix([[sp.Add(*g[:, j]) for j in range(n)]])
    return (dx,), {"gamma": dgamma, "beta": dbeta}


def layernorm_forward(x, gamma, beta, epsilon):
    """Layer normalization: statistics over the units of each sample (last axis)."""
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    sigma = np.sqrt(var + epsilon)
    xhat = (x - mu) / sigma
    return gamma * xhat + beta, xhat, sigma


def layernorm_backward(g, gamma, xhat, sigma):
    """dE/dx, dE/dgamma, dE/dbeta in the compact form (h = g * gamma)."""
    n = g.shape[-1]
    h = g * gamma
    dx = (n * h - np.sum(h, axis=-1, keepdims=True)
          - xhat * np.sum(h * xhat, axis=-1, keepdims=True)) / (n * sigma)
    return dx, np.sum(g * xhat, axis=0), np.sum(g, axis=0)


# ----------------------------------------------------------------------------- Array API


def layernorm_forward_xp(x, gamma, beta, epsilon, xp):
    """Layer normalization, any Array API namespace: statistics over the units of each sample (last axis)."""
    mu = xp.mean(x, axis=-1, keepdims=True)
    var = xp.var(x, axis=-1, keepdims=True)
    sigma = xp.sqrt(var + epsilon)
    xhat = (x - mu) / sigma
    return gamma * xhat + beta, xhat, sigma


def layernorm_backward_xp(g, gamma, xhat, sigma, xp):
    """dE/dx, dE/dgamma, dE/dbeta in the compact form (h = g * gamma), any Array API namespace."""
    n = g.shape[-1]
    h = g * gamma
    dx = (n * h - xp.sum(h, axis=-1, keepdims=True)
          - xhat * xp.sum(h * xhat, axis=-1, keepdims=True)) / (n * sigma)
    return dx, xp.sum(g * xhat, axis=0), xp.sum(g, axis=0)


def _np_forward(inputs, params, opts, aux=None):
    y, xhat, sigma = layernorm_forward(inputs[0], params["gamma"], params["beta"], opts["epsilon"])
    return y, (xhat, sigma)


def _np_backward(g, cache, params, opts):
    dx, dgamma, dbeta = layernorm_backward(g, params["gamma"], *cache)
    return (dx,), {"gamma": dgamma, "beta": dbeta}


KIND = LayerKind(
    name="layernorm",
    title="layer normalization",
    options=(epsilon_option(),),
    params=lambda opts: (
        Param("gamma", r"\gamma", lambda fan_in, n: (n,), init="ones", title="scale"),
        Param("beta", r"\beta", lambda fan_in, n: (n,), init="zeros", title="shift"),
    ),
    width=lambda fan_ins, opts: fan_ins[0],
    forward=forward,
    backward=backward,
    numpy_forward=_np_forward,
    numpy_backward=_np_backward,
    code=(layernorm_forward, layernorm_backward),
    code_xp=(layernorm_forward_xp, layernorm_backward_xp),
    claim_symbols=(("mean", r"\mu_i"), ("variance", r"\sigma_i^2"), ("normalized", r"\hat{x}_{ij}"),
                   ("scale", r"\gamma"), ("shift", r"\beta"), ("epsilon", r"\epsilon")),
    doc=Doc(
        title="Layer normalization",
        summary=("Each sample is normalized over its own {n} units, then scaled and shifted per unit. "
                 "Samples do not interact; the units of one sample do, through the sample's mean and variance."),
        forward=(r"\mu_{{i}} = \frac{{1}}{{{n}}} \sum_{{k=1}}^{{{n}}} {x}_{{ik}}",
                 r"\sigma^2_{{i}} = \frac{{1}}{{{n}}} \sum_{{k=1}}^{{{n}}} \left({x}_{{ik}} - \mu_{{i}}\right)^2",
                 r"\hat{{x}}_{{ij}} = \frac{{{x}_{{ij}} - \mu_{{i}}}}{{\sqrt{{\sigma^2_{{i}} + \epsilon}}}}",
                 r"{y}_{{ij}} = \gamma_j \hat{{x}}_{{ij}} + \beta_j"),
        local=(r"\frac{{\partial \mu_{{i}}}}{{\partial {x}_{{ij}}}} = \frac{{1}}{{{n}}}",
               r"\frac{{\partial \sigma^2_{{i}}}}{{\partial {x}_{{ij}}}} = \frac{{2\left({x}_{{ij}} - \mu_{{i}}\right)}}{{{n}}}",
               r"\frac{{\partial {y}_{{ij}}}}{{\partial \hat{{x}}_{{ij}}}} = \gamma_j"),
        backward=(r"h_{{ij}} = \frac{{\partial {E}}}{{\partial \hat{{x}}_{{ij}}}} = {g}_{{ij}} \gamma_j",
                  r"\frac{{\partial {E}}}{{\partial {x}_{{ij}}}} = \frac{{1}}{{{n} \hat{{\sigma}}_i}} \left({n} \, h_{{ij}} - \sum_{{k=1}}^{{{n}}} h_{{ik}} - \hat{{x}}_{{ij}} \sum_{{k=1}}^{{{n}}} h_{{ik}} \hat{{x}}_{{ik}}\right), \quad \hat{{\sigma}}_i = \sqrt{{\sigma^2_{{i}} + \epsilon}}"),
        params=(r"\frac{{\partial {E}}}{{\partial \gamma_j}} = \sum_{{b=1}}^{{{B}}} {g}_{{bj}} \hat{{x}}_{{bj}}",
                r"\frac{{\partial {E}}}{{\partial \beta_j}} = \sum_{{b=1}}^{{{B}}} {g}_{{bj}}"),
    ),
)
