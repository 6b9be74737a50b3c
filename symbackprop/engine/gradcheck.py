"""Finite-difference gradient checker (NumPy only; generated tests embed its source).

Pass rule, per entry: ``|analytic - numeric| <= atol + rtol * |numeric|``.  The
numeric value is the fourth-order central difference
``(-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h``; its error is about
``h**4 * |f'''''| / 30`` plus ``2 * eps * |f| / h``.  Where ``|numeric|`` is below
``atol / rtol`` the absolute tolerance governs (near-zero values).  NaN or inf
never passes, and nothing is replaced by a number.
"""

from __future__ import annotations

import numpy as np


class GradientCheckError(AssertionError):
    """A gradient entry that disagrees with finite differences (or is not finite)."""


def central_difference(f, x, index, step):
    """Fourth-order central difference of ``f()`` in the entry ``x[index]`` (restored afterwards)."""
    old = x[index]
    values = []
    for offset in (2.0, 1.0, -1.0, -2.0):
        x[index] = old + offset * step
        values.append(float(f()))
    x[index] = old
    return (-values[0] + 8.0 * values[1] - 8.0 * values[2] + values[3]) / (12.0 * step)


def check_gradients(loss, params, grads, rtol=1e-7, atol=1e-10, step=1e-3, max_entries=None, seed=0):
    """Compare ``grads`` with finite differences of ``loss(params)``; returns the entries checked.

    ``params`` and ``grads`` are dicts of float64 arrays with the same keys and
    shapes; ``loss(params)`` must read ``params`` afresh on every call (entries are
    perturbed in place and restored).  ``max_entries`` checks a random sample per
    array.  Raises :class:`GradientCheckError` naming the parameter, the index,
    both values, both errors and the tolerance of every failing entry.
    """
    rng = np.random.default_rng(seed)
    failures, checked = [], 0
    for key in sorted(params):
        x, g = params[key], np.asarray(grads[key])
        if g.shape != x.shape:
            raise GradientCheckError(f"{key}: gradient shape {g.shape} differs from parameter shape {x.shape}")
        indices = list(np.ndindex(*x.shape))
        if max_entries is not None and len(indices) > max_entries:
            indices = [indices[i] for i in sorted(rng.choice(len(indices), max_entries, replace=False))]
        for index in indices:
            numeric = central_difference(lambda: loss(params), x, index, step)
            analytic = float(g[index])
            abs_err = abs(analytic - numeric)
            rel_err = abs_err / abs(numeric) if numeric != 0 else float("inf") if abs_err else 0.0
            tolerance = atol + rtol * abs(numeric)
            checked += 1
            if not (np.isfinite(analytic) and np.isfinite(numeric) and abs_err <= tolerance):
                failures.append(f"{key}[{', '.join(str(i) for i in index)}]: analytic {analytic!r}, "
                                f"finite difference {numeric!r}, absolute error {abs_err:.3e}, "
                                f"relative error {rel_err:.3e}, tolerance {tolerance:.3e} "
                                f"(= {atol:g} + {rtol:g} * |finite difference|)")
    if failures:
        raise GradientCheckError(f"{len(failures)} of {checked} gradient entries fail the check:\n  "
                                 + "\n  ".join(failures))
    return checked
