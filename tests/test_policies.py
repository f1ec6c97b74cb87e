"""Every Keras dtype policy on every model class (issue 23 item 2, issue 19 class 2), on TensorFlow and JAX: the model
trains through `fit` with the guarded step (with Keras's `LossScaleOptimizer` under `mixed_float16`), saves and loads
with the same outputs, or is refused at construction or `compile` with a message that says why (pure float16, which
has no loss scaling and was measured to diverge within 3 steps; float64 on JAX without its 64-bit mode; bfloat16 or
float16 products on a TensorFlow CPU that would emulate them). Tiny models, a few steps; the JAX grid
runs in one subprocess (`python tests/test_policies.py` under `KERAS_BACKEND=jax`). Also the learning rate is read
through the loss-scale optimizer (it once read its wrapper's 0.0)."""
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ["float32", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16", "float64"]
MODELS = ["sae:kl", "sae:topk", "ksparse:batchtopk", "ksparse:jumprelu", "conv", "contractive", "stacked", "vae"]
REFUSALS = ("needs JAX's 64-bit mode", "needs a CPU that multiplies bfloat16 natively", "needs a CPU that multiplies float16 natively", "without loss scaling")


def jax_grid_env():
    "The environment of a subprocess that runs a grid of tiny models on JAX, with XLA's code generation at its lowest optimisation: compiling each case, not running it, is the grid's cost, and the grid checks behaviour, not speed."
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    return dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), XLA_FLAGS=flags.strip())


def make(name, dtype):
    "A tiny model of each class in `dtype`, with its data `(x, y)`."
    from sparse_ae_tf.models import SparseAutoencoder
    from sparse_ae_tf.vae import VariationalAutoencoder
    from sparse_ae_tf.variants import (ContractiveAutoencoder, ConvSparseAutoencoder, KSparseAutoencoder,
                                       StackedSparseAutoencoder)
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 16)).astype("float32"), None
    kind, _, option = name.partition(":")
    if kind == "sae": model = SparseAutoencoder(16, 8, sparsity=option, k=3 if option == "topk" else None, dtype=dtype,
                                                hidden_activation="sigmoid" if option == "kl" else "relu")
    elif kind == "ksparse": model = KSparseAutoencoder(16, 12, k=3, activation=option, dtype=dtype)
    elif kind == "conv": model = ConvSparseAutoencoder((4, 4, 1), filters=(4,), kernel_size=3, strides=2, dtype=dtype)
    elif kind == "contractive": model = ContractiveAutoencoder(16, 8, dtype=dtype)
    elif kind == "stacked": model, y = StackedSparseAutoencoder(16, (8,), n_classes=3, dtype=dtype), rng.integers(0, 3, 64)
    elif kind == "vae": model = VariationalAutoencoder(16, 2, hidden_dims=(8,), seed=1, dtype=dtype)
    return model, x, y


def run(name, policy):
    "Train, save and load `name` in `policy`: 'ok', or the refusal's message (anything else raises)."
    keras.utils.set_random_seed(0)
    try:
        model, x, y = make(name, policy)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    except ValueError as e:
        if any(r in str(e) for r in REFUSALS): return str(e)
        raise
    before = [np.array(keras.ops.convert_to_numpy(v), "float32") for v in model.trainable_weights] if model.built else None
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the guard's warning: a policy must not diverge here
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert "stopped" not in history.history and np.isfinite(history.history["loss"]).all(), (name, policy, history.history)
    assert model.dtype_policy.name == policy
    if policy == "mixed_float16": assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    after = [np.array(keras.ops.convert_to_numpy(v), "float32") for v in model.trainable_weights]
    assert all(np.isfinite(a).all() for a in after) and (before is None or any((a != b).any() for a, b in zip(after, before)))
    with tempfile.TemporaryDirectory() as tmp:
        model.save(f"{tmp}/m.keras")
        loaded = keras.saving.load_model(f"{tmp}/m.keras")
    assert loaded.dtype_policy.name == policy
    out, again = (np.array(keras.ops.convert_to_numpy(m.predict(x[:8], verbose=0)), "float32") for m in (model, loaded))
    np.testing.assert_array_equal(out, again)
    return "ok"


def grid(): return {f"{m} {p}": run(m, p) for p in POLICIES for m in MODELS}


def check(found, backend, n=len(POLICIES) * len(MODELS)):
    assert len(found) == n
    for case, result in found.items():
        name, policy = case.split()
        if policy == "float64" and backend == "jax": assert "needs JAX's 64-bit mode" in result, case
        elif policy == "float16": assert "use dtype='mixed_float16'" in result, case  # measured to diverge (no loss scaling)
        elif "natively" in result and policy in ("bfloat16", "mixed_bfloat16", "mixed_float16"): assert result.startswith("dtype="), case  # a CPU that would emulate them
        else: assert result == "ok", (case, result)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the TensorFlow grid")
@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_on_tensorflow(policy):
    check({f"{m} {policy}": run(m, policy) for m in MODELS}, "tensorflow", len(MODELS))


def test_every_policy_on_jax():
    result = subprocess.run([sys.executable, __file__], env=jax_grid_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    check(json.loads(result.stdout.strip().splitlines()[-1]), "jax")


def test_mixed_float16_learning_rate_is_read_through_the_loss_scale_optimizer():
    # the check compile runs, on the optimizer Keras wraps under mixed_float16 (whose own rate reads 0.0); called directly,
    # since a TensorFlow CPU without native float16 refuses the policy itself at compile
    from sparse_ae_tf.defaults import _check_learning_rate
    _check_learning_rate(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3)))  # was refused: "got learning_rate=0.0"
    with pytest.raises(ValueError, match="learning_rate"):
        _check_learning_rate(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(-1e-3)))


if __name__ == "__main__":  # the grid on the backend this process runs (JAX, from the test above)
    print(json.dumps(grid()))


@pytest.mark.parametrize("name", MODELS)
def test_a_policy_that_is_not_floating_point_is_refused_by_name(name):
    for dtype in ("int32", "uint8"):
        with pytest.raises(ValueError, match=f"`dtype` must be a floating-point policy .*got dtype='{dtype}'"): make(name, dtype)
