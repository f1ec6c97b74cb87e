"""The model is written with `keras.ops` only, so it runs on Keras's JAX backend too (how it reaches a GPU without
TensorFlow): from the same weights both backends give the same objective and parts, and the GPU benchmark's explicit
gradient gives the same training as autodiff there."""
import json
import os
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


def test_gpu_benchmark_runs_and_its_explicit_gradient_trains_as_autodiff():
    out = run_on_jax("--input", 64, "--hidden", 128, "--batch", 128, "--steps", 4, "--repeats", 1,
                     script=ROOT / "benchmarks" / "gpu_jax.py")
    loss = {line[:42].strip(): float(line.split()[-1]) for line in out.splitlines() if line.startswith("jit scan")}
    assert loss["jit scan, explicit gradient, float32"] == pytest.approx(loss["jit scan, autodiff (stateless_call)"], rel=1e-5)
    assert loss["jit scan, explicit gradient, bfloat16"] == pytest.approx(loss["jit scan, autodiff (stateless_call)"], rel=1e-2)
