"""Property-based tests: over generated model configurations and inputs, every call either works or raises one of
the documented errors (ValueError / TypeError naming the argument), and save -> load -> predict is exact."""
import os
import tempfile

import keras
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparse_ae_tf.files import load_model, save_model
from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.validation import check_array

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-5, 5), st.text(max_size=2),
                    st.none(), st.booleans())
configs = st.fixed_dictionaries({
    "input_dim": st.one_of(st.integers(-2, 12), st.just(2.5)),
    "hidden_dim": st.integers(-1, 10),
    "sparsity": st.sampled_from(["kl", "l1", "topk", None, "bogus"]),
    "rho": st.one_of(st.floats(-0.5, 1.5), numbers),
    "beta": st.one_of(st.floats(-1, 5), numbers),
    "k": st.one_of(st.none(), st.integers(-1, 12)),
    "weight_decay": st.one_of(st.floats(-1e-3, 1e-2), numbers),
    "hidden_activation": st.sampled_from(["sigmoid", "relu", "tanh", "linear"]),
    "output_activation": st.sampled_from(["sigmoid", "linear"]),
    "loss": st.sampled_from(["half_sse", "mse", "bce", "l2"]),
})


@settings(max_examples=300, **SETTINGS)
@given(configs)
def test_constructor_works_or_names_the_argument(config):
    try: model = SparseAutoencoder(**config)
    except ValueError as e:
        assert any(f"{name}=" in str(e) for name in config), f"message names no argument: {e}"
        return
    assert model.input_dim == config["input_dim"] and model.hidden_dim == config["hidden_dim"]


arrays = st.one_of(
    st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=5), max_size=4),
    st.lists(st.text(max_size=3), max_size=3),
    st.integers(), st.floats(allow_nan=True), st.text(max_size=5))


@settings(max_examples=300, **SETTINGS)
@given(arrays, st.one_of(st.none(), st.integers(1, 5)))
def test_check_array_accepts_or_raises_documented_errors(x, n_features):
    try: out = check_array(x, "x", n_features)
    except (ValueError, TypeError) as e:
        assert "`x`" in str(e), f"message does not name the argument: {e}"
        return
    assert out.ndim == 2 and out.dtype == np.float32 and np.isfinite(out).all()
    if n_features is not None: assert out.shape[1] == n_features


valid_models = st.fixed_dictionaries({
    "input_dim": st.integers(2, 12),
    "hidden_dim": st.integers(2, 8),
    "family": st.sampled_from(["kl", "l1", "topk", None]),
    "weight_decay": st.sampled_from([0.0, 1e-3]),
    "loss": st.sampled_from(["half_sse", "mse", "bce"]),
    "dtype": st.sampled_from(["float32", "float64"]),
    "seed": st.integers(0, 2**16),
})


def _build(spec):
    kw = dict(sparsity=spec["family"], weight_decay=spec["weight_decay"], loss=spec["loss"], dtype=spec["dtype"])
    if spec["family"] == "topk": kw.update(k=max(1, spec["hidden_dim"] // 2), hidden_activation="relu")
    keras.utils.set_random_seed(spec["seed"])
    model = SparseAutoencoder(spec["input_dim"], spec["hidden_dim"], **kw)
    model.build((None, spec["input_dim"]))
    return model


@settings(max_examples=25, **SETTINGS)
@given(valid_models, st.integers(1, 20))
def test_save_load_predict_is_exact(spec, n):
    model = _build(spec)
    x = np.random.default_rng(spec["seed"]).uniform(0, 1, (n, spec["input_dim"])).astype(spec["dtype"])
    with tempfile.TemporaryDirectory() as d:
        path = save_model(model, os.path.join(d, "m.keras"))
        loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.get_config() == model.get_config()
