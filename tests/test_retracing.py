"""A model that `fit` feeds in turn from arrays and from a dataset reuses the step traced for each feed: TensorFlow logs no
retracing warning, nor a warning that a dataset ignores the default `shuffle`, and every fit still trains; under a strategy a feed of another size is traced anew."""
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import numpy as np, keras
    from sparse_ae_tf.models import SparseAutoencoder
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((256, 16)).astype("float32")
    model = SparseAutoencoder(16, 8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    losses = []
    for i in range(8):
        source = x if i % 2 == 0 else x[: 128 + 16 * i]  # arrays of another length: the same feed, no new trace
        losses.append(model.fit(source, batch_size=32, epochs=1, verbose=0).history["loss"][-1])
    if BACKEND == "tensorflow":
        import tensorflow as tf
        for i in range(4):
            losses.append(model.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), epochs=1, verbose=0).history["loss"][-1])
            losses.append(model.fit(x, batch_size=32, epochs=1, verbose=0).history["loss"][-1])
    print("traced", len(model.__dict__["_train_functions"]), "losses", " ".join(f"{l:.4f}" for l in losses))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
""")

@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_no_retracing_when_feeds_alternate(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="0")
    run = subprocess.run([sys.executable, "-c", f"BACKEND = {backend!r}\n" + SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "retracing" not in run.stderr, run.stderr[-3000:]
    assert "will be ignored" not in run.stderr, run.stderr[-3000:]  # Keras's warning that a dataset ignores `shuffle=True`
    assert run.stdout.startswith("traced " + ("2" if backend == "tensorflow" else "1")), run.stdout
