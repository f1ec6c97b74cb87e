"""The divergence guard restores every variable a step touches (issue 19, class 1): for every model class, noise mode
and both backends, a run made to diverge at a seeded random step ends with every variable of the model (trainable or
not: BatchTopK's threshold, AuxK's counters, the noise's seed) and of the optimizer equal to its value after the last
finite step. Two ways to diverge: a batch holding NaN (the forward pass has already assigned its state when the loss
turns out NaN) and a learning-rate schedule that spikes to 1e39 at one step (the update itself is not finite). On
TensorFlow also the explicit-gradient step and a one-device `MirroredStrategy`; JAX runs the whole table in one
subprocess (`python tests/test_guard.py` under `KERAS_BACKEND=jax`)."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_policies import jax_grid_env  # noqa: E402
N, BATCH = 96, 16  # 6 steps


def make(name):
    "A tiny model of each class (and noise mode), with its data `(x, y)`."
    from sparse_ae_tf.models import SparseAutoencoder
    from sparse_ae_tf.vae import VariationalAutoencoder
    from sparse_ae_tf.variants import (ContractiveAutoencoder, ConvSparseAutoencoder, KSparseAutoencoder,
                                       StackedSparseAutoencoder)
    rng = np.random.default_rng(0)
    x, y = rng.random((N, 16)).astype("float32"), None
    kind, _, option = name.partition(":")
    if kind == "sae": model = SparseAutoencoder(16, 8, sparsity=option, k=3 if option == "topk" else None,
                                                hidden_activation="sigmoid" if option == "kl" else "relu")
    elif kind == "noise": model = SparseAutoencoder(16, 8, noise=option, noise_level=0.2)
    elif kind == "ksparse": model = KSparseAutoencoder(16, 12, k=3, activation=option, dead_after=16)
    elif kind == "conv": model = ConvSparseAutoencoder((4, 4, 1), filters=(4,), kernel_size=3, strides=2)
    elif kind == "contractive": model = ContractiveAutoencoder(16, 8)
    elif kind == "stacked": model, y = StackedSparseAutoencoder(16, (8,), n_classes=3), rng.integers(0, 3, N)
    elif kind == "vae": model = VariationalAutoencoder(16, 2, hidden_dims=(8,), seed=1)
    return model, x, y


MODELS = ["sae:kl", "sae:l1", "sae:topk", "noise:gaussian", "noise:masking", "noise:salt_pepper", "ksparse:topk",
          "ksparse:batchtopk", "ksparse:jumprelu", "conv", "contractive", "stacked", "vae"]
XLA = ("sae:kl", "ksparse:batchtopk", "noise:gaussian")  # compiled with XLA (2-3 s more each; noise draws by Threefry there); the others in graph mode
# a seeded table: each model diverges both ways, each at its own random step in [2, 5)
CASES = [(m, how, int(np.random.default_rng(i).integers(2, 5))) for i, m in enumerate(MODELS) for how in ("nan", "spike")]


class Spike(keras.optimizers.schedules.LearningRateSchedule):
    "1e-3, except 1e39 (infinite in float32) at step `at`."
    def __init__(self, at): self.at = at
    def __call__(self, step): return keras.ops.where(keras.ops.equal(step, self.at), 1e39, 1e-3)
    def get_config(self): return {"at": self.at}


def state(model):
    "Every variable of the model and its optimizer, as arrays."
    return [np.array(keras.ops.convert_to_numpy(v)) for v in list(model.variables) + list(model.optimizer.variables)]


class LastFinite(keras.callbacks.Callback):
    "Keep a copy of every variable after each step whose objective was finite."
    def on_train_batch_end(self, batch, logs=None):
        if np.isfinite(float(keras.ops.convert_to_numpy(logs["loss"]))): self.kept = state(self.model)


def diverge(name, how, at, explicit=False, strategy=None):
    "Fit `name` until it diverges at step `at`; the mismatching variables' paths (empty: the guard restored everything)."
    import tensorflow as tf
    keras.utils.set_random_seed(at)
    with strategy.scope() if strategy else _nothing():
        model, x, y = make(name)
        optimizer = keras.optimizers.Adam(Spike(at) if how == "spike" else 1e-3)
        model.compile(optimizer=optimizer, steps_per_execution=1, jit_compile="auto" if explicit or strategy else name in XLA)
    if how == "nan": x = x.copy(); x[at * BATCH + 3, 5] = np.nan  # batch `at` (from 0) holds a NaN
    if explicit: model.explicit_step_pays = lambda batch_size: True
    data = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y)).batch(BATCH)
    keep = LastFinite()
    with warnings.catch_warnings(record=True):
        history = model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[keep])
    assert "stopped" in history.history, name
    assert f"step {at + 1}" in history.history["stopped"], history.history["stopped"]
    if explicit: assert model._explicit_step
    paths = [v.path for v in list(model.variables) + list(model.optimizer.variables)]
    return [p for p, a, b in zip(paths, keep.kept, state(model)) if not np.array_equal(a, b, equal_nan=True)]


class _nothing:
    def __enter__(self): return self
    def __exit__(self, *a): return False


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the TensorFlow table")
@pytest.mark.parametrize("name,how,at", CASES)
def test_guard_restores_every_variable_on_tensorflow(name, how, at):
    assert diverge(name, how, at) == []


@pytest.mark.parametrize("how", ["nan", "spike"])
def test_guard_restores_every_variable_in_the_explicit_step(how):
    from sparse_ae_tf.models import supports_fused
    model, _, _ = make("sae:kl")
    if not supports_fused(model): pytest.skip("no explicit gradient for this model")
    assert diverge("sae:kl", how, 3, explicit=True) == []


@pytest.mark.parametrize("name", ["sae:kl", "ksparse:batchtopk", "noise:gaussian"])
def test_guard_restores_every_variable_under_mirrored_strategy(name):
    import tensorflow as tf
    assert diverge(name, "nan", 3, strategy=tf.distribute.MirroredStrategy(["/cpu:0"])) == []


def chunked(name, how, at, rows, explicit=False):
    "Fit `name` from arrays, a chunk of 8 steps per call (in one XLA computation, or by the explicit step), on the first `rows` rows: its history and state."
    keras.utils.set_random_seed(at)
    model, x, _ = make(name)
    model.compile(optimizer=keras.optimizers.Adam(Spike(at if how == "spike" else 10**6)), jit_compile="auto" if explicit else True,
                  steps_per_execution=8)
    if how == "huge": x = x.copy(); x[at * BATCH + 3, 5] = 3e38  # finite, but its squared error is not: the objective is infinite
    if explicit: model.explicit_step_pays = lambda batch_size: True
    with warnings.catch_warnings(record=True):
        history = model.fit(x[:rows], batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    assert model.train_function.runs_chunks and model._explicit_step == explicit, name
    return history.history, state(model)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the TensorFlow chunk")
@pytest.mark.parametrize("name", [*XLA, "explicit"])
@pytest.mark.parametrize("how", ["huge", "spike"])
def test_guard_restores_every_variable_in_a_chunk(name, how):
    "A chunk leaves a refused update in place and undoes it: every variable as after the same fit of the steps before it."
    at, explicit = 3, name == "explicit"
    if explicit:
        from sparse_ae_tf.models import supports_fused
        if not supports_fused(make("sae:kl")[0]): pytest.skip("no explicit gradient for this model")
    name = "sae:kl" if explicit else name
    history, diverged = chunked(name, how, at, N, explicit)
    assert f"step {at + 1}" in history["stopped"] and np.isnan(history["loss"][0]), history
    _, expected = chunked(name, how, at, at * BATCH, explicit)
    assert len(diverged) == len(expected) and all(np.array_equal(a, b) for a, b in zip(diverged, expected))


def test_guard_restores_every_variable_on_jax():
    result = subprocess.run([sys.executable, __file__], env=jax_grid_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(found) == len(CASES)
    assert {k: v for k, v in found.items() if v} == {}


if __name__ == "__main__":  # the table on the backend this process runs (JAX, from the test above)
    print(json.dumps({f"{m} {how} {at}": diverge(m, how, at) for m, how, at in CASES}))
