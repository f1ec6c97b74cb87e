"""The model is written with `keras.ops` only, so it runs on Keras's JAX backend too (how it reaches a GPU without
TensorFlow): from the same weights both backends give the same objective and parts; `fit` on JAX keeps the data on the
device and stops on divergence; TF and JAX `fit` from the same weights, seed and batches end with the same weights (to
float32 round-off); and the GPU benchmark's explicit gradient gives the same training as autodiff there."""
import json
import os
import math
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.models import SparseAutoencoder

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("jax")

ON_JAX = """
import json, sys, numpy as np, keras
from sparse_ae_tf.models import SparseAutoencoder
assert keras.backend.backend() == "jax"
data = np.load(sys.argv[1])
model = SparseAutoencoder(784, 64, sparsity=sys.argv[2]); model.build((None, 784)); model.compile()
model.set_weights([data[f"w{i}"] for i in range(4)])
print(json.dumps(model.evaluate(data["x"], batch_size=len(data["x"]), verbose=0, return_dict=True)))
"""


def run_on_jax(*args, code=None, script=None):
    "Run Python on the JAX backend in a fresh process; returns its stdout."
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    cmd = [sys.executable] + (["-c", code] if code else [str(script)]) + [str(a) for a in args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("sparsity", ["kl", "l1"])
def test_same_objective_on_both_backends(tmp_path, sparsity):
    keras.utils.set_random_seed(0)
    model = SparseAutoencoder(784, 64, sparsity=sparsity); model.build((None, 784)); model.compile()
    x = load_mnist()[0][0][:512]
    np.savez(tmp_path / "state.npz", x=x, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    on_tf = model.evaluate(x, batch_size=len(x), verbose=0, return_dict=True)
    on_jax = json.loads(run_on_jax(tmp_path / "state.npz", sparsity, code=ON_JAX).strip().splitlines()[-1])
    assert on_tf["sparsity"] > 0.01  # the penalty is really there (a stateless pass once lost it)
    for part in ("loss", "reconstruction", "sparsity", "weight_decay"):
        assert on_jax[part] == pytest.approx(on_tf[part], rel=1e-5), part


FIT_ON_JAX = """
import json, sys, warnings, numpy as np, keras
import sparse_ae_tf.feeds as feeding
from sparse_ae_tf.models import SparseAutoencoder
assert keras.backend.backend() == "jax"
feeds, kinds = [], []
class Spy(feeding._JAXFeed):  # records each resident feed `fit` makes
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        feeds.append(self); kinds.extend(type(a).__module__.split(".")[0] for a in self.arrays)
feeding._JAXFeed = Spy  # where `_FitPlan` looks it up
x = np.load(sys.argv[1])
keras.utils.set_random_seed(0)
good = SparseAutoencoder(784, 32); good.compile(optimizer=keras.optimizers.Adam(1e-2))
h = good.fit(x, epochs=3, batch_size=100, verbose=0).history
wild = SparseAutoencoder(784, 32); wild.compile(optimizer=keras.optimizers.SGD(1e30))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    h_wild = wild.fit(x, epochs=3, batch_size=100, verbose=0).history
print(json.dumps(dict(feeds=len(feeds), arrays_on_device=kinds,
                      released=good._feed is None and all(f.arrays == () for f in feeds), loss=h["loss"], stopped=h_wild.get("stopped"),
                      wild_epochs=len(h_wild["loss"]), applied=int(wild.optimizer.iterations.numpy()),
                      finite=bool(all(np.isfinite(w).all() for w in wild.get_weights())),
                      warned=any(issubclass(w.category, RuntimeWarning) and "NaN or infinite" in str(w.message) for w in caught))))
"""


def test_fit_on_jax_keeps_data_on_the_device_and_stops_on_divergence(tmp_path):
    np.save(tmp_path / "x.npy", load_mnist()[0][0][:1000])
    r = json.loads(run_on_jax(tmp_path / "x.npy", code=FIT_ON_JAX).strip().splitlines()[-1])
    assert r["feeds"] == 2 and set(r["arrays_on_device"]) == {"jaxlib"}, r  # both fits fed from jax arrays
    assert r["released"], r  # let go of after fit
    assert all(map(math.isfinite, r["loss"])) and r["loss"][-1] < 0.8 * r["loss"][0], r["loss"]
    # SGD at 1e30: the first update is applied, the second overflows and is refused; the weights stay finite
    assert r["stopped"] and "NaN or infinite" in r["stopped"] and "epoch 1" in r["stopped"], r
    assert (r["wild_epochs"], r["finite"], r["warned"]) == (1, True, True), r
    assert r["applied"] >= 1, r


SAME_FIT = """
import sys, numpy as np, keras
from sparse_ae_tf.models import SparseAutoencoder
assert keras.backend.backend() == "jax"
data = np.load(sys.argv[1])
model = SparseAutoencoder(784, 64); model.build((None, 784))
model.set_weights([data[f"w{i}"] for i in range(4)])
model.compile(optimizer=keras.optimizers.Adam(1e-2))
np.random.seed(5)  # fit draws its shuffling seed from NumPy's generator
h = model.fit(data["x"], epochs=3, batch_size=100, verbose=0).history
np.savez(sys.argv[2], *model.get_weights(), loss=np.array(h["loss"]), seed=model.shuffle_seed_)
"""


def test_tf_and_jax_fit_end_with_the_same_weights(tmp_path):
    keras.utils.set_random_seed(0)
    model = SparseAutoencoder(784, 64); model.build((None, 784))
    x = load_mnist()[0][0][:1000]
    np.savez(tmp_path / "state.npz", x=x, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    np.random.seed(5)
    h = model.fit(x, epochs=3, batch_size=100, verbose=0).history
    run_on_jax(tmp_path / "state.npz", tmp_path / "jax.npz", code=SAME_FIT)
    with np.load(tmp_path / "jax.npz") as on_jax:
        assert int(on_jax["seed"]) == model.shuffle_seed_  # the same shuffling, so the same 30 batches
        np.testing.assert_allclose(on_jax["loss"], h["loss"], rtol=1e-5)
        for i, w in enumerate(model.get_weights()):
            # 30 Adam steps apart only by the backends' float32 round-off (measured: at most 4e-6 of the largest
            # weight); with the batches in another order the losses alone are 2% apart
            np.testing.assert_allclose(on_jax[f"arr_{i}"], w, rtol=1e-5, atol=2e-5 * np.abs(w).max(), err_msg=f"weight {i}")


def test_gpu_benchmark_runs_and_its_explicit_gradient_trains_as_autodiff():
    out = run_on_jax("--input", 64, "--hidden", 128, "--batch", 128, "--steps", 4, "--repeats", 1,
                     script=ROOT / "benchmarks" / "gpu_jax.py")
    loss = {line[:42].strip(): float(line.split()[-1]) for line in out.splitlines() if line.startswith("jit scan")}
    assert loss["jit scan, explicit gradient, float32"] == pytest.approx(loss["jit scan, autodiff (stateless_call)"], rel=1e-5)
    assert loss["jit scan, explicit gradient, bfloat16"] == pytest.approx(loss["jit scan, autodiff (stateless_call)"], rel=1e-2)
