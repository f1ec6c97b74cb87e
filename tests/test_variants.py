"""`.keras` round trips of every variant model (convolutional, contractive, k-sparse, stacked, variational), training
on after loading, the same objective and parts on the JAX backend, and the contractive closed form against autodiff."""
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.vae import VariationalAutoencoder
from sparse_ae_tf.variants import (ContractiveAutoencoder, ConvSparseAutoencoder, KSparseAutoencoder,
                                   StackedSparseAutoencoder, contractive_penalty, pretrain_stack)

D = 64  # 8x8 images
ROOT = Path(__file__).resolve().parents[1]


def _data(n=96, seed=0):
    "Random data in (0, 1), shape (n, D)."
    return np.random.default_rng(seed).uniform(0.05, 0.95, size=(n, D)).astype("float32")


def _labels(n=96, seed=0):
    "Random labels in {0, 1, 2}, shape (n,)."
    return np.random.default_rng(seed).integers(0, 3, size=n)


def _stacked():
    "A stacked classifier on two small pretrained autoencoders."
    aes = pretrain_stack(_data(), (12, 6), epochs=1, batch_size=32)
    return StackedSparseAutoencoder.from_autoencoders(aes, n_classes=3)


MODELS = {
    "conv-kl": lambda: ConvSparseAutoencoder((8, 8, 1), filters=4, kernel_size=3, rho=0.1),
    "conv-l1-deep-noise": lambda: ConvSparseAutoencoder((8, 8, 1), filters=(4, 6), kernel_size=3, sparsity="l1",
                                                        hidden_activation="relu", noise="gaussian", noise_level=0.1),
    "conv-float64": lambda: ConvSparseAutoencoder((8, 8, 1), filters=3, kernel_size=3, dtype="float64"),
    "contractive": lambda: ContractiveAutoencoder(D, 10, lam=0.5, weight_decay=1e-3),
    "contractive-tanh": lambda: ContractiveAutoencoder(D, 10, lam=0.5, hidden_activation="tanh", output_activation="linear"),
    "ksparse": lambda: KSparseAutoencoder(D, 32, k=4, k_aux=8, dead_after=32),
    "ksparse-no-aux": lambda: KSparseAutoencoder(D, 32, k=4, aux_coef=0.0, tied_init=False),
    "vae": lambda: VariationalAutoencoder(D, 2, (16,), seed=3),
    "beta-vae-sse": lambda: VariationalAutoencoder(D, 3, (16, 8), beta=2.0, loss="half_sse"),
    "stacked": _stacked,
}
NEEDS_LABELS = {"stacked"}


@functools.lru_cache(maxsize=None)
def _trained(name):
    """The model `name`, trained for two epochs so that weights and optimizer state differ from their initial values.
    Cached: tests save it and only change the loaded copy."""
    keras.utils.set_random_seed(0)
    model = MODELS[name]()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    y = _labels() if name in NEEDS_LABELS else None
    model.fit(_data(), y, epochs=2, batch_size=32, verbose=0)
    return model


def _fit_args(name, seed):
    "`(x, y)` for `fit`: labels only for the classifier."
    return (_data(seed=seed), _labels(seed=seed) if name in NEEDS_LABELS else None)


@pytest.mark.parametrize("name", MODELS)
def test_round_trip_predicts_identically(name, tmp_path):
    model = _trained(name)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    x = _data(37, seed=1)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=0, atol=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    if hasattr(model, "encode"):
        np.testing.assert_array_equal(loaded.encode(x), model.encode(x))
    if name.endswith("float64"):
        assert loaded.dtype_policy.name == "float64"
        assert loaded.predict(x, verbose=0).dtype == np.float64


@pytest.mark.parametrize("name", MODELS)
def test_training_continues_after_loading(name, tmp_path):
    model = _trained(name)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.optimizer is not None
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) > 0
    before = [w.copy() for w in loaded.get_weights()]
    h = loaded.fit(*_fit_args(name, 2), epochs=2, batch_size=32, verbose=0).history
    assert np.all(np.isfinite(h["loss"]))
    assert set(loaded.PARTS) <= set(h)
    assert any(not np.array_equal(a, b) for a, b in zip(loaded.get_weights(), before))


def test_ksparse_keeps_dead_counter_and_unit_decoder(tmp_path):
    model = _trained("ksparse")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.since_fired.numpy(), model.since_fired.numpy())
    np.testing.assert_allclose(np.linalg.norm(loaded.dictionary, axis=1), 1.0, atol=1e-5)
    assert ((loaded.encode(_data()) > 0).sum(axis=1) <= 4).all()


def test_vae_samples_identically_after_loading(tmp_path):
    model = _trained("vae")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.sample(5, seed=4), model.sample(5, seed=4))
    np.testing.assert_array_equal(loaded.negative_elbo(_data(), seed=1), model.negative_elbo(_data(), seed=1))


def test_stacked_starts_from_the_autoencoders():
    keras.utils.set_random_seed(0)
    aes = pretrain_stack(_data(), (12, 6), epochs=1, batch_size=32)
    assert all(isinstance(a, SparseAutoencoder) for a in aes)
    stack = StackedSparseAutoencoder.from_autoencoders(aes, n_classes=3)
    x = _data(20, seed=5)
    np.testing.assert_allclose(stack.features(x), aes[1].encode(aes[0].encode(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_contractive_closed_form_matches_autodiff(activation):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(6, 9)), rng.normal(size=(9, 5)), rng.normal(size=5)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        h = getattr(tf.math, activation)(xt @ w + b)
    jac = tape.batch_jacobian(h, xt).numpy()
    np.testing.assert_allclose(contractive_penalty(h, w, activation).numpy(), (jac ** 2).sum(axis=(1, 2)), rtol=1e-12)


def test_contractive_model_jacobian_matches_autodiff():
    model = _trained("contractive")
    x = tf.constant(_data(5, seed=6))
    with tf.GradientTape() as tape:
        tape.watch(x)
        h = model.encoder(x)
    jac = tape.batch_jacobian(h, x).numpy()
    np.testing.assert_allclose(model.jacobian_norm(x.numpy()), (jac ** 2).sum(axis=(1, 2)), rtol=1e-4)



ON_JAX = """
import json, sys, numpy as np, keras
import sparse_ae_tf.vae as vae, sparse_ae_tf.variants as variants
assert keras.backend.backend() == "jax"
out = {}
for case in json.load(open(sys.argv[1])):
    model = getattr(variants, case["class"], None) or getattr(vae, case["class"])
    model, state = model.from_config(case["config"]), np.load(case["state"])
    model.build((None,) + tuple(model.example_shape))
    model.set_weights([state[f"w{i}"] for i in range(len(model.weights))]); model.compile(optimizer=keras.optimizers.Adam(1e-2))
    y = state["y"] if "y" in state else None
    parts = model.evaluate(state["x"], y, batch_size=len(state["x"]), verbose=0, return_dict=True)
    keras.utils.set_random_seed(0)
    out[case["name"]] = {"parts": parts, "history": model.fit(state["x"], y, epochs=3, batch_size=32, verbose=0).history}
print(json.dumps(out))
"""
JAX_CASES = [n for n in MODELS if not n.endswith("float64")]  # JAX computes in float32 unless x64 is switched on


def _xy(name):
    "The examples (and labels) both backends evaluate."
    return _data(64, seed=7), (_labels(64, seed=7) if name in NEEDS_LABELS else None)


@functools.lru_cache(maxsize=None)
def _on_jax():
    "Every trained model rebuilt from its config and weights on the JAX backend (one fresh process): its parts, and a short `fit`."
    pytest.importorskip("jax")
    import tempfile
    d, cases = Path(tempfile.mkdtemp()), []
    for name in JAX_CASES:
        model, (x, y) = _trained(name), _xy(name)
        np.savez(d / f"{name}.npz", x=x, **({"y": y} if y is not None else {}), **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        cases.append({"name": name, "class": type(model).__name__, "config": model.get_config(), "state": str(d / f"{name}.npz")})
    (d / "cases.json").write_text(json.dumps(cases))
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", ON_JAX, str(d / "cases.json")], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", JAX_CASES)
def test_same_objective_and_training_on_jax(name):
    "From the same weights the JAX backend gives the TF objective and parts; there `fit` trains and logs parts adding up to `loss`."
    model, (x, y) = _trained(name), _xy(name)
    on_tf, on_jax = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True), _on_jax()[name]
    for part in ("loss",) + model.PARTS:
        assert on_jax["parts"][part] == pytest.approx(on_tf[part], rel=1e-5, abs=1e-6), part
    h = on_jax["history"]
    assert h["loss"][-1] < h["loss"][0]
    np.testing.assert_allclose(np.sum([h[p] for p in model.PARTS], axis=0), h["loss"], rtol=1e-4)
