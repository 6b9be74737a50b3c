"""Generated Array API code on PyTorch (CPU), JAX (CPU) and Dask, each skipped when not installed.

Install with ``pip install -e '.[torch]'`` / ``'.[jax]'`` / ``'.[dask]'``.  Truth: the NumPy
target (checked against finite differences, the closed form and autograd in
test_codegen.py), to 1e-10 in float64; jax.jit of train_step against the eager step.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_codegen import EXAMPLES, random_point, write_and_import
from test_codegen_xp import assert_agree, write_xp

from symbackprop.engine.derive import derive

EXAMPLE_NAMES = [p.name for p in EXAMPLES]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(derivation, model.py, model_xp.py) per example."""
    out = {}
    for path in EXAMPLES:
        d = derive(path, verify=False)
        folder = tmp_path_factory.mktemp(path.stem)
        out[path.name] = (d, write_and_import(d, folder / "numpy")[0], write_xp(d, folder / "xp"))
    return out


def reference(models, example, seed=5):
    d, numpy_model, xp_model = models[example]
    params, X, T = random_point(d.network, np.random.default_rng(seed))
    return params, X, T, numpy_model.gradients({k: v.copy() for k, v in params.items()}, X, T), xp_model


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_torch_cpu(models, example):
    torch = pytest.importorskip("torch")
    params, X, T, expected, model = reference(models, example)
    tparams = {k: torch.asarray(v) for k, v in params.items()}
    tX, tT = torch.asarray(X), torch.asarray(T)
    grads = model.gradients(tparams, tX, tT)
    assert all(isinstance(g, torch.Tensor) and g.dtype == torch.float64 for g in grads.values())
    assert_agree({k: g.numpy() for k, g in grads.items()}, expected, "torch gradients")
    state = model.init_state(tparams)
    new, _ = model.train_step(tparams, tX, tT, state)
    assert all(new[k].dtype == torch.float64 for k in new)
    assert all(torch.equal(tparams[k], torch.asarray(params[k])) for k in params)  # nothing in place
    p32 = model.init_params(0, torch.float32, model.namespace("torch"), "cpu")
    history = model.train(tX.to(torch.float32), tT.to(torch.float32), epochs=2, batch_size=2, progress=False,
                          params=p32)
    assert np.all(np.isfinite(history)) and all(v.dtype == torch.float32 and v.device.type == "cpu"
                                                for v in p32.values())


@pytest.fixture()
def jax_x64():
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        yield jax


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_jax_cpu_and_jit(models, example, jax_x64):
    jax = jax_x64
    import jax.numpy as jnp

    params, X, T, expected, model = reference(models, example)
    jparams = {k: jnp.asarray(v) for k, v in params.items()}
    jX, jT = jnp.asarray(X), jnp.asarray(T)
    grads = model.gradients(jparams, jX, jT)
    assert all(g.dtype == jnp.float64 for g in grads.values())
    assert_agree({k: np.asarray(g) for k, g in grads.items()}, expected, "jax gradients")
    step = jax.jit(model.train_step)
    state = model.init_state(jparams)
    eager_params, eager_state = model.train_step(jparams, jX, jT, state)
    eager_params, _ = model.train_step(eager_params, jX, jT, eager_state)
    jit_params, jit_state = step(jparams, jX, jT, state)
    jit_params, _ = step(jit_params, jX, jT, jit_state)
    assert_agree({k: np.asarray(v) for k, v in jit_params.items()},
                 {k: np.asarray(v) for k, v in eager_params.items()}, "jax.jit(train_step)")


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_dask_row_chunks(models, example):
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    d, numpy_model, model = models[example]
    params, X, T = random_point(d.network, np.random.default_rng(6), batch=12)
    expected = numpy_model.gradients({k: v.copy() for k, v in params.items()}, X, T)
    dX, dT = da.from_array(X, chunks=(5, -1)), da.from_array(T, chunks=(5, -1))  # 3 row chunks
    dparams = {k: da.from_array(v) for k, v in params.items()}
    grads = model.gradients(dparams, dX, dT)
    assert all(isinstance(g, da.Array) for g in grads.values())
    assert_agree(dict(zip(grads, dask.compute(*grads.values()))), expected, "dask gradients (batch mean over chunks)")
    trained = dict(dparams)
    history = model.train(dX, dT, epochs=3, batch_size=None, learning_rate=0.05, progress=False, params=trained,
                          after_step=lambda p, s: dask.persist(p, s))
    host = numpy_model.train(X, T, epochs=3, batch_size=12, learning_rate=0.05, progress=False,
                             params={k: v.copy() for k, v in params.items()})
    assert np.allclose(history, host, rtol=1e-10, atol=0)
