"""Matryoshka dictionaries (`KSparseAutoencoder(matryoshka=...)`, Bussmann et al. 2025): the first m latents must
reconstruct on their own, so on MNIST the prefixes of a Matryoshka TopK dictionary reconstruct the digits far better
than the same prefixes of a plain one, at a small cost for the whole dictionary; the option saves and loads, and
refuses what it cannot do."""
import os
import tempfile

import keras
import numpy as np
import pytest

from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.metrics import fvu
from sparse_ae_tf.variants import KSparseAutoencoder

PREFIXES = (16, 64)


def prefix_fvu(model, x, m):
    "FVU of `x` reconstructed from the first `m` latents of its codes only."
    codes = model.encode(x)
    codes[:, m:] = 0
    return fvu(x, model.decode(codes))


@pytest.fixture(scope="module")
def trained():
    (x, _), (xt, _) = load_mnist()
    out = {}
    for name, kw in {"plain": {}, "matryoshka": {"matryoshka": PREFIXES}}.items():
        keras.utils.set_random_seed(0)
        model = KSparseAutoencoder(784, 256, k=16, dead_after=2000, **kw).init_pre_bias(x[:4000])
        model.compile(keras.optimizers.Adam(1e-3))
        model.fit(x[:4000], epochs=4, batch_size=128, verbose=0)
        out[name] = model, {m: prefix_fvu(model, xt, m) for m in PREFIXES + (256,)}
    print({name: {m: round(v, 3) for m, v in f.items()} for name, (_, f) in out.items()})
    return out, xt


def test_prefixes_reconstruct(trained):
    out, _ = trained
    plain, mat = out["plain"][1], out["matryoshka"][1]
    for m in PREFIXES: assert mat[m] < 0.8 * plain[m], (m, plain, mat)
    assert mat[256] < plain[256] + 0.05, (plain, mat)


def test_saves_and_refuses(trained):
    out, xt = trained
    model = out["matryoshka"][0]
    with tempfile.TemporaryDirectory() as d:
        model.save(os.path.join(d, "m.keras")); loaded = keras.saving.load_model(os.path.join(d, "m.keras"))
    assert loaded.matryoshka == PREFIXES and np.array_equal(loaded.encode(xt[:64]), model.encode(xt[:64]))
    for bad in [(64, 16), (16, 256), (0,)]:
        with pytest.raises(ValueError, match="matryoshka"): KSparseAutoencoder(784, 256, matryoshka=bad)
    with pytest.raises(ValueError, match="matryoshka"): KSparseAutoencoder(784, 256, activation="batchtopk", matryoshka=(16,))
