"""Interpreting a network (`sparse_ae_tf.interpret`) beyond its notebook: tf.data sources, `to_npy` streaming with
bounded memory and `fit` on the file it writes, feature maps, splicing into functional and Sequential models, and
bad arguments refused with a ValueError that names the argument."""
import os
import tracemalloc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from sparse_ae_tf.interpret import (ActivationSource, class_purity, firing_histogram, latent_dashboard, latent_stats,
                                    splice, top_activating)
from sparse_ae_tf.variants import KSparseAutoencoder

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 8)).astype("float32")
Y = (X[:, 0] > 0).astype("int64") + (X[:, 1] > 0)


def _sequential():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, "relu", name="hidden"), keras.layers.Dense(3, name="out")])


def _functional():
    "Two branches meet after `mid`; splicing at `mid` cuts the model in two, at `left` it does not."
    keras.utils.set_random_seed(0)
    inp = keras.Input((8,))
    left, right = keras.layers.Dense(12, "relu", name="left")(inp), keras.layers.Dense(12, "tanh", name="right")(inp)
    mid = keras.layers.Dense(10, "relu", name="mid")(keras.layers.Concatenate()([left, right]))
    return keras.Model(inp, keras.layers.Dense(3, name="out")(mid))


def _trained(model):
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, Y, epochs=5, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def models():
    return {"sequential": _trained(_sequential()), "functional": _trained(_functional())}


def _layer_output(model, name, x):
    return keras.Model(model.inputs[0], model.get_layer(name).output).predict(x, verbose=0)


@pytest.mark.parametrize("kind,layer", [("sequential", "hidden"), ("functional", "mid"), ("functional", "left")])
def test_array_and_dataset_sources_agree(models, kind, layer):
    model = models[kind]
    expected = _layer_output(model, layer, X)
    by_name = ActivationSource(model, layer, X, batch_size=64)
    by_object = ActivationSource(model, model.get_layer(layer), tf.data.Dataset.from_tensor_slices(X).batch(50))
    pairs = ActivationSource(model, layer, tf.data.Dataset.from_tensor_slices((X, Y)).batch(70))
    for source in (by_name, by_object, pairs):
        assert len(source) == 300
        np.testing.assert_allclose(source.to_array(), expected, rtol=1e-5, atol=1e-6)
    assert [len(b) for b in by_name.batches()] == [64, 64, 64, 64, 44]


def test_normalize_measures_the_scale_on_the_first_rows(models):
    model = models["sequential"]
    raw = _layer_output(model, "hidden", X)
    source = ActivationSource(model, "hidden", X, batch_size=100, normalize=True, calibration=100)
    np.testing.assert_allclose(source.scale, 1 / np.sqrt(np.mean(np.sum(raw[:100].astype("float64") ** 2, 1))), rtol=1e-5)
    np.testing.assert_allclose(source.denormalize(source.to_array()), raw, rtol=1e-5, atol=1e-6)
    whole = ActivationSource(model, "hidden", X, normalize=True)  # calibration beyond the data: all of it
    np.testing.assert_allclose(np.mean(np.sum(whole.to_array().astype("float64") ** 2, 1)), 1.0, rtol=1e-5)


def test_to_npy_streams_with_bounded_memory_and_feeds_fit(tmp_path):
    "40,000 rows of 256 activations (41 MB) are written holding about one batch; `fit` then streams the file."
    keras.utils.set_random_seed(0)
    wide = keras.Sequential([keras.Input((8,)), keras.layers.Dense(256, "relu", name="wide"), keras.layers.Dense(2)])
    x = np.random.default_rng(1).normal(size=(40_000, 8)).astype("float32")
    source = ActivationSource(wide, "wide", x, batch_size=500)
    path = tmp_path / "acts.npy"
    tracemalloc.start()
    try:
        rows = source.to_npy(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally: tracemalloc.stop()
    assert rows == 40_000
    assert peak < 8e6, f"to_npy held {peak / 1e6:.1f} MB at its peak for a {40_000 * 256 * 4 / 1e6:.0f} MB file"
    on_disk = np.load(path, mmap_mode="r")
    assert on_disk.shape == (40_000, 256) and on_disk.dtype == np.float32
    np.testing.assert_allclose(on_disk[-500:], _layer_output(wide, "wide", x[-500:]), rtol=1e-5, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["acts.npy"]  # no temporary file left
    small = tmp_path / "small.npy"
    ActivationSource(wide, "wide", x[:2048]).to_npy(small)
    sae = KSparseAutoencoder(256, 64, k=4).init_pre_bias(np.load(small, mmap_mode="r")[:512])  # built before a streamed fit
    sae.compile()
    h = sae.fit(str(small), epochs=1, batch_size=256, verbose=0).history
    assert np.isfinite(h["loss"][0]) and int(sae.optimizer.iterations.numpy()) == 8


def test_feature_map_rows_and_splice():
    "A convolutional layer gives one row per position; splicing reconstructs it position by position."
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                            keras.layers.Flatten(), keras.layers.Dense(3)])
    images = np.random.default_rng(2).uniform(size=(20, 6, 6, 1)).astype("float32")
    labels = np.random.default_rng(2).integers(0, 3, 20)
    source = ActivationSource(net, "conv", images)
    assert (source.input_dim, source.positions, len(source)) == (4, 16, 320)
    np.testing.assert_allclose(source.to_array(), _layer_output(net, "conv", images).reshape(-1, 4), rtol=1e-5, atol=1e-6)
    seen = []
    def rows(a): seen.append(a.shape); return a
    out = splice(net, "conv", rows, images, labels, keras.metrics.SparseCategoricalCrossentropy(from_logits=True), batch_size=8)
    assert seen[0] == (8 * 16, 4) and out["spliced"] == pytest.approx(out["original"], rel=1e-6)


@pytest.mark.parametrize("kind,layer", [("sequential", "hidden"), ("functional", "mid")])
def test_splice_identity_zero_and_halfway(models, kind, layer):
    model = models[kind]
    loss = keras.metrics.SparseCategoricalCrossentropy(from_logits=True)
    identity = splice(model, layer, lambda a: a, X, Y, loss)
    assert identity["recovered"] == pytest.approx(1.0)
    assert identity["original"] == pytest.approx(float(loss(Y, model.predict(X, verbose=0))), rel=1e-5)
    assert splice(model, model.get_layer(layer), np.zeros_like, X, Y, loss)["recovered"] == pytest.approx(0.0, abs=1e-9)
    scaled = splice(model, layer, lambda a: 0.5 * a, X, Y, loss, scale=7.0)  # the scale cancels for a linear map
    plain = splice(model, layer, lambda a: 0.5 * a, X, Y, loss)
    assert scaled["spliced"] == pytest.approx(plain["spliced"], rel=1e-5)
    on_data = splice(model, layer, lambda a: 0.5 * a, tf.data.Dataset.from_tensor_slices((X, Y)).batch(64), metric=loss)
    assert on_data["spliced"] == pytest.approx(plain["spliced"], rel=1e-5)


def test_splice_refuses_a_layer_the_model_goes_around(models):
    with pytest.raises(ValueError, match="`layer` must cut the model in two"):
        splice(models["functional"], "left", lambda a: a, X, Y)


def test_subclassed_model_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(); self.dense = keras.layers.Dense(3)
        def call(self, x): return self.dense(x)
    net = Net(); net(X[:2])
    with pytest.raises(ValueError, match="`model` must be a functional or Sequential"):
        ActivationSource(net, net.dense, X)


BAD_SOURCE = [
    (dict(layer="nope"), "layer='nope'"),
    (dict(layer=keras.layers.Dense(3)), "`layer` must be a layer of the model"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(batch_size=2.5), "batch_size=2.5"),
    (dict(calibration=0, normalize=True), "calibration=0"),
    (dict(normalize="yes"), "normalize='yes'"),
    (dict(x=np.zeros((0, 8))), "`x` must hold one or more examples"),
    (dict(x=np.array([1.0, np.inf])[None].repeat(4, 0)), "`x` must be finite"),
    (dict(x="data"), "`x` must"),
]


@pytest.mark.parametrize("kwargs,message", BAD_SOURCE)
def test_activation_source_bad_arguments(models, kwargs, message):
    args = dict(model=models["sequential"], layer="hidden", x=X) | kwargs
    with pytest.raises(ValueError) as e:
        ActivationSource(**args)
    assert message in str(e.value)


def test_all_zero_layer_cannot_be_normalised():
    keras.utils.set_random_seed(0)
    dead = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, "relu", kernel_initializer="zeros", name="dead"), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="all-zero activations"):
        ActivationSource(dead, "dead", X, normalize=True)


def test_splice_bad_arguments(models):
    model, ds = models["sequential"], tf.data.Dataset.from_tensor_slices((X, Y)).batch(64)
    cases = [(dict(reconstruct="identity"), "`reconstruct` must be"), (dict(scale=-1.0), "scale=-1.0"),
             (dict(batch_size=0), "batch_size=0"), (dict(metric=3), "metric=3"), (dict(metric="nonsense"), "metric='nonsense'"),
             (dict(y=Y[:10]), "one target per example of `x` (300), got 10"), (dict(y=None), "got None"),
             (dict(x=ds), "`y` must be None when `x` is a tf.data.Dataset"),
             (dict(x=tf.data.Dataset.from_tensor_slices(X).batch(64), y=None), "(inputs, targets) batches")]
    for kwargs, message in cases:
        args = dict(model=model, layer="hidden", reconstruct=lambda a: a, x=X, y=Y) | kwargs
        with pytest.raises(ValueError) as e:
            splice(**args)
        assert message in str(e.value), (kwargs, str(e.value))


def test_statistics_bad_arguments():
    codes = np.abs(RNG.normal(size=(30, 5))).astype("float32")
    cases = [(lambda: latent_stats(codes, threshold=float("nan")), "threshold=nan"),
             (lambda: latent_stats(codes, dense_above=-0.1), "dense_above=-0.1"),
             (lambda: latent_stats(codes[:, :, None]), "`codes` must be 2-D"),
             (lambda: top_activating(codes, -1), "latent=-1"), (lambda: top_activating(codes, 5), "latent=5"),
             (lambda: top_activating(codes, 0, k=1.5), "k=1.5"), (lambda: class_purity(codes, np.zeros(29)), "one label per row"),
             (lambda: class_purity(codes, np.zeros(30), k=0), "k=0"), (lambda: firing_histogram([0.5, 2.0]), "frequencies in [0, 1]"),
             (lambda: latent_dashboard(codes, np.zeros((30, 4)), 0, labels=np.zeros(3)), "`labels` must have one label per row")]
    for call, message in cases:
        with pytest.raises(ValueError) as e:
            call()
        assert message in str(e.value), (message, str(e.value))


def test_purity_and_stats_on_a_known_code():
    codes = np.zeros((40, 3), "float32")
    labels = np.repeat(np.arange(4), 10)
    codes[labels == 2, 0] = np.arange(1, 11)  # latent 0: only on class 2
    codes[::2, 1] = 1.0  # latent 1: on every other example, all classes alike
    purity = class_purity(codes, labels, k=20)
    assert purity[0] == 1.0 and purity[1] == pytest.approx(0.25) and np.isnan(purity[2])
    assert top_activating(codes, 0, 3).tolist() == [29, 28, 27]
    stats = latent_stats(codes)
    assert stats["dead_fraction"] == pytest.approx(1 / 3) and stats["mean_l0"] == pytest.approx(0.75)
    assert stats["dense_fraction"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("kind,layer", [("sequential", "hidden"), ("functional", "mid")])
def test_splice_kl_against_a_direct_computation(models, kind, layer):
    "kl_spliced and kl_zero_ablated equal KL(p_original || p_other) averaged over the examples, computed by hand."
    model = models[kind]
    head = keras.Model(model.inputs[0], model.get_layer(layer).output)
    tail = keras.Model(model.get_layer(layer).output, model.outputs[0])
    def probs(a): z = tail.predict(a, verbose=0).astype("float64"); e = np.exp(z - z.max(1, keepdims=True)); return e / e.sum(1, keepdims=True)
    a = head.predict(X, verbose=0)
    p, q, z = probs(a), probs(0.5 * a), probs(np.zeros_like(a))
    out = splice(model, layer, lambda r: 0.5 * r, X, Y, kl=True, from_logits=True, batch_size=64)
    assert out["kl_spliced"] == pytest.approx(float((p * np.log(p / q)).sum(1).mean()), rel=1e-4)
    assert out["kl_zero_ablated"] == pytest.approx(float((p * np.log(p / z)).sum(1).mean()), rel=1e-4)
    assert "kl_spliced" not in splice(model, layer, lambda r: r, X, Y)


def test_nan_activations_refused_everywhere(models, tmp_path):
    "A model whose layer gives NaN: to_npy writes nothing, normalize and splice refuse, each naming the layer."
    broken = keras.models.clone_model(models["sequential"])
    broken.set_weights([np.full_like(w, np.nan) for w in models["sequential"].get_weights()])
    with pytest.raises(ValueError, match="`layer` 'hidden' gave .* NaN or infinite activation"):
        ActivationSource(broken, "hidden", X).to_npy(tmp_path / "a.npy")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="NaN or infinite activation"):
        ActivationSource(broken, "hidden", X, normalize=True)
    with pytest.raises(ValueError, match="`layer` 'hidden' gave NaN or infinite activations"):
        splice(broken, "hidden", lambda a: a, X, Y)
    with pytest.raises(ValueError, match="`reconstruct` must return finite rows"):
        splice(models["sequential"], "hidden", lambda a: np.full_like(a, np.inf), X, Y)
    with pytest.raises(ValueError, match="`reconstruct` must return finite rows of the layer's 16 features, got shape \\(64, 3\\)"):
        splice(models["sequential"], "hidden", lambda a: a[:, :3], X, Y, batch_size=64)
