"""JumpReLU after the switch to a raw threshold on the measured pre-activation scale: models saved with the former
single `log_threshold` weight still load and compute what they computed, and training on JAX measures the scale and
moves the thresholds as on TensorFlow."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.sparsity import JumpReLU
from sparse_ae_tf.variants import KSparseAutoencoder

ROOT = Path(__file__).resolve().parents[1]


def as_old_format(path, layer_path, log_threshold):
    "Rewrite the `.keras` file at `path` as saved before: the JumpReLU layer's weights one `log_threshold` array."
    with zipfile.ZipFile(path) as z: files = {n: z.read(n) for n in z.namelist()}
    weights = Path(path).with_suffix(".h5")
    weights.write_bytes(files["model.weights.h5"])
    with h5py.File(weights, "r+") as f:
        group = f[layer_path + "/vars"]
        for name in list(group): del group[name]
        group.create_dataset("0", data=log_threshold.astype("float32"))
    files["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items(): z.writestr(n, data)


def test_old_layer_loads(tmp_path):
    inp = keras.Input((6,))
    model = keras.Model(inp, JumpReLU(0.01, bandwidth=1e-3, name="jr")(inp))
    path = tmp_path / "m.keras"; model.save(path)
    log_theta = np.log(np.linspace(0.1, 0.6, 6))
    as_old_format(path, "layers/jump_re_lu", log_theta)
    loaded = keras.saving.load_model(path)
    layer = loaded.get_layer("jr")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.threshold), np.exp(log_theta), rtol=1e-6)
    assert float(layer.scale_) == 1.0  # the old bandwidth was absolute: with scale 1 it stays so
    z = np.random.default_rng(0).uniform(0, 0.8, (32, 6)).astype("float32")
    np.testing.assert_allclose(loaded.predict(z, verbose=0), np.where(z > np.exp(log_theta), z, 0), rtol=1e-6)
    layer(z, training=True)  # training again: the scale already known is kept
    assert float(layer.scale_) == 1.0


def test_old_ksparse_loads(tmp_path):
    x = load_mnist()[0][0][:256]
    model = KSparseAutoencoder(784, 32, k=4, activation="jumprelu").init_pre_bias(x)
    path = tmp_path / "ks.keras"; model.save(path)
    with h5py.File(zipfile.ZipFile(path).open("model.weights.h5")) as f:
        layer_path = [n for n in f["layers"] if "jump" in n][0]
    theta = np.random.default_rng(1).uniform(0.05, 0.3, 32)
    as_old_format(path, "layers/" + layer_path, np.log(theta))
    loaded = keras.saving.load_model(path)
    pre = (x - keras.ops.convert_to_numpy(loaded.pre_bias)) @ loaded.hidden_weights + keras.ops.convert_to_numpy(loaded.encoder_bias)
    np.testing.assert_allclose(loaded.encode(x), np.where(pre > theta, pre, 0), atol=1e-5)


ON_JAX = """
import json, numpy as np, keras
from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.variants import KSparseAutoencoder
assert keras.backend.backend() == "jax"
x = load_mnist()[0][0][:1024]
keras.utils.set_random_seed(0)
model = KSparseAutoencoder(784, 64, k=8, activation="jumprelu", l0=0.1).init_pre_bias(x)
model.compile(keras.optimizers.Adam(1e-2))
model.fit(x, epochs=2, batch_size=128, verbose=0)
layer = model.sparsity_layer
pre = (x[:128] - np.asarray(model.pre_bias)) @ model.hidden_weights + np.asarray(model.encoder_bias)
print(json.dumps(dict(scale=float(layer.scale_), theta=np.asarray(layer.relative_threshold).tolist())))
"""


def test_jax_measures_scale_and_moves_thresholds():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", ON_JAX], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    import json
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert 0.05 < res["scale"] < 5, res["scale"]  # measured (0 = never measured)
    theta = np.array(res["theta"])
    assert np.abs(theta - 1.0).mean() > 0.05, theta  # 16 steps of Adam at 1e-2 move them from their start of 1
