"""Backends and a quiet start, each in a fresh interpreter.

- Keras's torch backend (or any but tensorflow and jax) is refused at import with one line naming the backends that work.
- On JAX, without TensorFlow installed (simulated: importing it fails), the models train, save and load, and the
  scikit-learn and PyOD faces work: the README's JAX-only install. Streaming (`batches`, TFRecords) and `train_lbfgs`
  need TensorFlow and say so.
- Importing the package and training print nothing the user did not ask for (without TF_CPP_MIN_LOG_LEVEL set), apart
  from the two lines TensorFlow writes before its logging starts (the oneDNN notice), which no setting reaches.
"""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

REFUSAL = ("ImportError: sparse_ae_tf trains on Keras's tensorflow and jax backends, not on KERAS_BACKEND='torch': "
           "set KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax before importing it")

def _run(code, timeout=300, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout,
                          env={**base, **env})

@pytest.mark.parametrize("code", ["import sparse_ae_tf", "from sparse_ae_tf.models import SparseAutoencoder",
                                  pytest.param("import keras, sparse_ae_tf", marks=pytest.mark.skipif(
                                      importlib.util.find_spec("torch") is None,
                                      reason="without torch, Keras's torch backend fails in `import keras`, before the package"))])
def test_torch_is_refused_in_one_line(code):
    run = _run(code, KERAS_BACKEND="torch")
    assert run.returncode == 1, run
    assert run.stderr.strip().splitlines()[-1] == REFUSAL, run.stderr[-2000:]

def test_torch_from_keras_json_is_refused(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    run = _run("import sparse_ae_tf", KERAS_HOME=str(tmp_path))
    assert run.stderr.strip().splitlines()[-1] == REFUSAL, run.stderr[-2000:]

def test_backend_chosen_after_import_is_refused_on_first_use():
    run = _run("""
        import os, sparse_ae_tf
        os.environ["KERAS_BACKEND"] = "torch"
        sparse_ae_tf.SparseAutoencoder
        """)
    assert run.stderr.strip().splitlines()[-1] == REFUSAL, run.stderr[-2000:]

NO_TF = """\
    import sys, importlib.abc
    class NoTensorFlow(importlib.abc.MetaPathFinder):  # as if TensorFlow were not installed
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tensorflow": raise ModuleNotFoundError(f"No module named {name!r}")
    sys.meta_path.insert(0, NoTensorFlow())
"""

def test_jax_without_tensorflow(tmp_path):
    run = _run(textwrap.dedent(NO_TF) + textwrap.dedent(f"""
        import os
        import numpy as np, keras, sparse_ae_tf as sae
        x = np.random.default_rng(0).random((96, 8), dtype="float32")
        for model in (sae.SparseAutoencoder(8, 4), sae.KSparseAutoencoder(8, 6, k=2), sae.ContractiveAutoencoder(8, 4),
                      sae.VariationalAutoencoder(8, 2, (6,))):
            model.compile(); model.fit(x, epochs=2, batch_size=32, verbose=0)
            path = os.path.join({str(tmp_path)!r}, type(model).__name__ + ".keras")
            model.save(path)
            np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
        sae.pretrain_stack(x, (6, 4), epochs=1)
        sae.SparseAETransformer(hidden_dim=3, epochs=1).fit_transform(x)
        sae.SparseAEDetector(epochs=1).fit(x).decision_function(x)
        try: sae.train_lbfgs(sae.SparseAutoencoder(8, 4), x, max_iter=2, verbose=0)
        except ValueError as e: print("lbfgs:", e)
        print("tensorflow" in sys.modules, keras.backend.backend())
        """), KERAS_BACKEND="jax")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "False jax", run.stdout
    assert "train_lbfgs runs on the TensorFlow backend" in run.stdout, run.stdout

# the lines TensorFlow 2.21 writes before absl's logging starts, whatever TF_CPP_MIN_LOG_LEVEL says
_BEFORE_LOGGING = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                   "port.cc:153] oneDNN custom operations are on.")

def _unexpected(text):
    return [l for l in text.splitlines() if l.strip() and not any(k in l for k in _BEFORE_LOGGING)]

QUIET = """
    from sparse_ae_tf import SparseAutoencoder, VariationalAutoencoder  # first: TensorFlow reads its log level when it starts
    import numpy as np, tensorflow as tf, keras
    x = np.random.default_rng(0).random((256, 16), dtype="float32")
    m = SparseAutoencoder(16, 8); m.compile()
    m.fit(x, epochs=2, batch_size=32, verbose=0); m.encode(x); m.predict(x, verbose=0)
    m.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), epochs=1, verbose=0, shuffle=False)
    v = VariationalAutoencoder(16, 2, (8,)); v.compile(); v.fit(x, epochs=1, verbose=0); v.sample(4)
"""

def test_quiet_by_default():
    run = _run(QUIET)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not _unexpected(run.stdout) and not _unexpected(run.stderr), run.stdout + run.stderr

def test_the_users_log_level_is_kept():
    run = _run("import os, sparse_ae_tf; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])", TF_CPP_MIN_LOG_LEVEL="0")
    assert run.stdout.split() == ["0"], run
