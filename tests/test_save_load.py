"""`.keras` round trips of `SparseAutoencoder`: every sparsity, float64, and training on after loading."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from sparse_ae_tf.models import SparseAutoencoder

N_FEATURES, N_HIDDEN = 20, 8

VARIANTS = {
    "kl": dict(sparsity="kl", rho=0.05, beta=2.0),
    "l1": dict(sparsity="l1", l1=1e-2, hidden_activation="relu"),
    "topk": dict(sparsity="topk", k=3, hidden_activation="relu", output_activation="linear", loss="mse"),
    "none": dict(sparsity=None, weight_decay=0.0),
    "kl-float64": dict(sparsity="kl", rho=0.1, dtype="float64"),
}


def _data(n=96, seed=0):
    "Random data in (0, 1), shape (n, N_FEATURES)."
    return np.random.default_rng(seed).uniform(0.05, 0.95, size=(n, N_FEATURES)).astype("float32")


def _trained(kwargs):
    "A model of `kwargs` trained for two epochs (so that weights and optimizer state differ from their initial values)."
    keras.utils.set_random_seed(0)
    model = SparseAutoencoder(N_FEATURES, N_HIDDEN, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(_data(), epochs=2, batch_size=32, verbose=0)
    return model


@pytest.mark.parametrize("name", VARIANTS)
def test_round_trip_predicts_identically(name, tmp_path):
    model = _trained(VARIANTS[name])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is SparseAutoencoder
    assert loaded.get_config() == model.get_config()
    x = _data(37, seed=1)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_array_equal(loaded.encode(x), model.encode(x))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    if name == "kl-float64":
        assert loaded.dtype_policy.name == "float64"
        assert loaded.predict(x, verbose=0).dtype == np.float64
        assert all(w.dtype == np.float64 for w in loaded.get_weights())


@pytest.mark.parametrize("name", VARIANTS)
def test_training_continues_after_loading(name, tmp_path):
    model = _trained(VARIANTS[name])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    # the optimizer and its state (Adam's moments and step count) come back with the model
    assert loaded.optimizer is not None
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) > 0
    before = [w.copy() for w in loaded.get_weights()]
    x = _data(seed=2)
    np.random.seed(3)  # `fit` draws its shuffling seed from NumPy's generator: the same for both runs
    h_loaded = loaded.fit(x, epochs=2, batch_size=32, verbose=0).history
    np.random.seed(3)
    h_model = model.fit(x, epochs=2, batch_size=32, verbose=0).history
    assert np.all(np.isfinite(h_loaded["loss"])) and "stopped" not in h_loaded
    assert any(not np.array_equal(a, b) for a, b in zip(loaded.get_weights(), before))
    # resuming from the file is resuming the original: the same compiled steps from the same state, so the same run
    assert set(h_loaded) == set(h_model) == {"loss", *SparseAutoencoder.PARTS}
    for k in h_model: np.testing.assert_array_equal(h_loaded[k], h_model[k], err_msg=k)
    for a, b in zip(loaded.get_weights(), model.get_weights()): np.testing.assert_array_equal(a, b)
    assert (loaded.jit_compile, loaded.steps_per_execution) == (model.jit_compile, model.steps_per_execution)
