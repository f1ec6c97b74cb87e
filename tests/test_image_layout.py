"""Images in the wrong layout are refused, not trained on scrambled (issue 19, class 6): every entry of
`ConvSparseAutoencoder` that takes images (fit, its validation data, encode, reconstruct, predict, evaluate, __call__,
train_lbfgs) refuses a shape other than (n,) + image_shape, or flat rows of its pixels, and names a channels-first
layout; the refusal leaves the model usable. On TensorFlow here and on JAX in a subprocess."""
import numpy as np
import pytest
import tensorflow as tf

from sparse_ae_tf.training import train_lbfgs
from sparse_ae_tf.variants import ConvSparseAutoencoder

IMAGE = (8, 8, 3)
rng = np.random.default_rng(0)
GOOD = rng.uniform(size=(32,) + IMAGE).astype("float32")
LAYOUTS = {  # name: (bad array, what the message must say)
    "channels-first": (GOOD.transpose(0, 3, 1, 2), "channels-first"),
    "height-channels-width": (GOOD.transpose(0, 1, 3, 2), "another order"),
    "two-d-image-of-rows": (GOOD.reshape(32, 64, 3), "got shape (32, 64, 3)"),
    "flat-wrong-width": (GOOD.reshape(32, -1)[:, :190], "got shape (32, 190)"),
}
ENTRIES = {
    "fit": lambda m, x: m.fit(x, epochs=1, verbose=0),
    "fit-validation": lambda m, x: m.fit(GOOD, epochs=1, verbose=0, validation_data=x),
    "encode": lambda m, x: m.encode(x),
    "reconstruct": lambda m, x: m.reconstruct(x),
    "predict": lambda m, x: m.predict(x, verbose=0),
    "evaluate": lambda m, x: m.evaluate(x, verbose=0),
    "call": lambda m, x: m(x),
    "predict-after-predict": lambda m, x: (m.predict(GOOD, verbose=0), m.predict(x, verbose=0)),  # a retrace of unknown rank
    "train_lbfgs": lambda m, x: train_lbfgs(m, x, max_iter=2, jit_compile=False, verbose=0),
}

CASES = ([("channels-first", e, b) for e in ENTRIES for b in (False, True)]
         + [(l, e, b) for l in list(LAYOUTS)[1:] for e, b in (("fit", False), ("predict", True))])

@pytest.fixture(scope="module")
def trained():
    return model(True)

def model(built):
    m = ConvSparseAutoencoder(IMAGE, filters=2, kernel_size=3, sparsity=None)
    m.compile(jit_compile=False)
    if built: m.fit(GOOD, epochs=1, batch_size=16, verbose=0)
    return m

@pytest.mark.parametrize("layout, entry, built", CASES, ids=[f"{l}-{e}-{'trained' if b else 'unbuilt'}" for l, e, b in CASES])
def test_wrong_layout_refused(layout, entry, built, trained):
    m = trained if built else model(False)
    x, says = LAYOUTS[layout]
    weights = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match="must hold images of shape") as e:
        ENTRIES[entry](m, x)
    assert says in str(e.value)
    for a, b in zip(weights, m.get_weights()): np.testing.assert_array_equal(a, b)
    if not built and entry in ("predict", "evaluate", "call"):  # still usable with the right layout
        m.fit(GOOD, epochs=1, batch_size=16, verbose=0)
        assert m.reconstruct(GOOD[:4]).shape == (4,) + IMAGE

@pytest.mark.parametrize("x", [GOOD, GOOD.reshape(32, -1)], ids=["images", "flat-rows"])
def test_right_layouts_taken(x):
    m = model(False)
    m.fit(x, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_allclose(m.reconstruct(x), m.reconstruct(GOOD), rtol=0, atol=0)

def test_one_channel_without_channel_axis():
    m = ConvSparseAutoencoder((8, 8, 1), filters=2, kernel_size=3, sparsity=None); m.compile(jit_compile=False)
    g = GOOD[..., :1]
    m.fit(g[..., 0], epochs=1, batch_size=16, verbose=0)
    np.testing.assert_allclose(m.reconstruct(g[..., 0]), m.reconstruct(g), rtol=0, atol=0)

def test_dataset_in_wrong_layout():
    m = model(False)
    ds = tf.data.Dataset.from_tensor_slices(GOOD.transpose(0, 3, 1, 2)).batch(16)
    with pytest.raises(ValueError):
        m.fit(ds, epochs=1, verbose=0)

JAX = """
import numpy as np, keras
from sparse_ae_tf.variants import ConvSparseAutoencoder
assert keras.backend.backend() == "jax"
x = np.random.default_rng(0).uniform(size=(32, 8, 8, 3)).astype("float32")
m = ConvSparseAutoencoder((8, 8, 3), filters=2, kernel_size=3, sparsity=None); m.compile()
for f in (lambda: m.fit(x.transpose(0, 3, 1, 2), verbose=0), lambda: m.predict(x.transpose(0, 3, 1, 2), verbose=0),
          lambda: m.encode(x.transpose(0, 3, 1, 2))):
    try: f(); raise SystemExit("accepted a channels-first batch")
    except ValueError as e: assert "channels-first" in str(e), e
m.fit(x, epochs=1, batch_size=16, verbose=0)
print("ok")
"""

def test_jax():
    pytest.importorskip("jax")
    from test_jax_backend import run_on_jax
    assert run_on_jax(code=JAX).strip().endswith("ok")
