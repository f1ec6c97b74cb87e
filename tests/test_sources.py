"""Every model of the package fits from a `.npy` file, a memory map, a `tf.data` source of examples or of batches,
whether or not it is built (issue 19 class 5, issue 21 item 6): an unbuilt model is built from the source's width or
the dataset's element spec before the step is traced (XLA once failed: "failed to lift variable creations"). On
TensorFlow and on JAX (one subprocess: `python tests/test_sources.py` under `KERAS_BACKEND=jax`)."""
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_policies import jax_grid_env, make  # noqa: E402  the same tiny model of each class

MODELS = ["sae:kl", "ksparse:topk", "ksparse:batchtopk", "conv", "contractive", "vae", "stacked"]  # every class
SOURCES = ["npy", "memmap", "examples", "batches"]
# unbuilt from every source; built from one source each (seeded)
CASES = [(m, s, False) for m in MODELS for s in SOURCES if m != "stacked" or s == "batches"] + \
        [(m, "batches" if m == "stacked" else SOURCES[i % 4], True) for i, m in enumerate(MODELS)]


def fit_from(name, source, built, tmp):
    "Fit `name` for 2 epochs from `source`; the final objective (finite) or raise."
    import tensorflow as tf
    keras.utils.set_random_seed(0)
    model, x, y = make(name, "float32")
    if built: model.build((None, x.shape[1]))
    model.compile()  # XLA where the package chooses it (always on JAX)
    np.save(f"{tmp}/x.npy", x)
    data = {"npy": lambda: f"{tmp}/x.npy", "memmap": lambda: np.load(f"{tmp}/x.npy", mmap_mode="r"),
            "examples": lambda: tf.data.Dataset.from_tensor_slices(x),
            "batches": lambda: tf.data.Dataset.from_tensor_slices(x if y is None else (x, y)).batch(16)}[source]()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        history = model.fit(data, epochs=2, batch_size=None if source == "batches" else 16, verbose=0)
    loss = history.history["loss"][-1]
    assert model.built and np.isfinite(loss), (name, source, built, history.history)
    return loss


def table():
    with tempfile.TemporaryDirectory() as tmp:
        return {f"{m} {s} {'built' if b else 'unbuilt'}": fit_from(m, s, b, tmp) for m, s, b in CASES}


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the TensorFlow table")
@pytest.mark.parametrize("name,source,built", CASES)
def test_every_model_fits_from_every_source_on_tensorflow(name, source, built, tmp_path):
    assert np.isfinite(fit_from(name, source, built, tmp_path))


def test_every_model_fits_from_every_source_on_jax():
    result = subprocess.run([sys.executable, __file__], env=jax_grid_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(found) == len(CASES) and all(np.isfinite(v) for v in found.values()), found


if __name__ == "__main__":  # the table on the backend this process runs (JAX, from the test above)
    print(json.dumps(table()))
