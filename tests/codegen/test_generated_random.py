"""50 random architectures: generated gradients (numpy and scalar targets) against three truths.

Depth 1-4, widths 1-6, every (output activation, loss) pair the registry allows,
every hidden activation (and custom formulas), with and without bias.  Each
architecture is generated into a temporary folder and imported in-process; the
checks and the agreement rule are those of ``test_codegen.check_all``; the
generated test file's own checks run too (finite differences, embedded
reference values, float32 and |z| up to 1e4 without warnings).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_codegen import check_all, large_z_is_stable, write_and_import

from symbackprop.engine.derive import derive
from symbackprop.registry import ops

COUNT = 50
HIDDEN = [name for name in ops.ACTIVATION_NAMES if name != "softmax"]
CUSTOM = [{"expr": "x*sigmoid(x)"}, {"expr": "tanh(x) + x/4"}]


def _architectures():
    rng = np.random.default_rng(2024)
    pairs = ops.allowed_pairs()
    specs = []
    for i in range(COUNT):
        out_act, loss = pairs[i % len(pairs)]
        depth = 1 + i % 4
        widths = [int(w) for w in rng.integers(1, 7, size=depth + 1)]
        layers = []
        for l in range(depth - 1):
            act = HIDDEN[(i + l) % len(HIDDEN)] if (i + l) % 9 else CUSTOM[(i // 9) % len(CUSTOM)]
            if act in ("leaky_relu", "elu") and i % 2:
                act = {"name": act, "alpha": 0.2}
            layers.append({"units": widths[l + 1], "activation": act, "bias": bool(rng.integers(0, 4))})
        layers.append({"units": widths[-1], "activation": out_act, "bias": bool(rng.integers(0, 4))})
        specs.append({"name": f"random-{i}", "inputs": widths[0], "layers": layers, "loss": loss})
    return specs


SPECS = _architectures()


def test_the_random_set_covers_the_registry():
    outputs = {(s["layers"][-1]["activation"], s["loss"]) for s in SPECS}
    assert outputs == set(ops.allowed_pairs())
    hidden = {a if isinstance(a, str) else a.get("name", "custom")
              for s in SPECS for a in (layer["activation"] for layer in s["layers"][:-1])}
    assert set(HIDDEN) | {"custom"} <= hidden
    assert {len(s["layers"]) for s in SPECS} == {1, 2, 3, 4}
    biases = [layer["bias"] for s in SPECS for layer in s["layers"]]
    assert any(biases) and not all(biases)


@pytest.mark.parametrize("index", range(COUNT))
def test_random_architecture(tmp_path, index):
    spec = SPECS[index]
    d = derive(spec, verify=False)
    rng = np.random.default_rng(index)
    model, generated_tests = write_and_import(d, tmp_path / "numpy", "numpy", tests=True)
    check_all(d, model, rng)
    scalar, _ = write_and_import(d, tmp_path / "scalar", "scalar")
    check_all(d, scalar, rng)
    custom = any(layer.activation.name == "custom" for layer in d.network.layers)
    if not custom:
        large_z_is_stable(d, model)
        large_z_is_stable(d, scalar)
    generated_tests.test_gradients_match_finite_differences()
    generated_tests.test_gradients_match_the_derivation()
    generated_tests.test_float32_gradients_agree_with_float64()
