"""Several devices on Keras's JAX backend through the same `fit`: `keras.distribution.DataParallel` over two host devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=2`, in a fresh process: JAX reads the flag when it starts).

For every dense model (SparseAutoencoder with kl, l1 and topk sparsity, KSparseAutoencoder, ContractiveAutoencoder,
StackedSparseAutoencoder, VariationalAutoencoder), and the KL model also under a `DataParallel` over a named
`DeviceMesh` and a `ModelParallel` on a 2-D (batch x model) mesh, from the same initial weights and shuffling seed:

- the step receives each batch as one `jax.Array` split over the two devices along the batch axis (its sharding,
  inspected inside the compiled step with `jax.debug.inspect_array_sharding`, is `P('batch')`, and each device's shard
  holds half of the rows), and the weights replicated (`P()`);
- the weights after 2 epochs (20 Adam steps) equal one device's to float32 round-off, and so do the logged histories;
- the KL term is that of the global batch's mean activation: a batch whose two halves (one per device) are 100 digits
  and 100 blank rows gives the global batch's term, not the mean of the two halves' (which is over twice as large);
- `fit` refuses, before training, a `batch_size` that the devices do not divide.

Measured (JAX 0.10, Keras 3.15, `pytest tests/test_jax_multidevice.py -s` prints them): on an Intel Xeon (AVX-512)
weights within 3e-7 (kl) to 2.3e-6 (l1) absolute, the VAE's 1.4e-5 (its largest weights are about 1, its noise is drawn
for the global batch either way); on an AMD EPYC (AVX2) KSparse's encoder within 2.4e-5 to 5.8e-5 (seeds 0, 1, 2: the
two devices add each gradient in another order, and Adam's steps on the gradients near zero carry that round-off),
against 0.17-0.20 when only the shuffling seed differs; histories within 2e-7 relative, for every model. Asserted:
|a - b| <= 2e-4 + 1e-4 |a| for every weight (about 1/800 of a real difference), histories rtol 1e-5. The batch must
split evenly: `fit` gathers each global batch on the host in one device's order (the same shuffling as one device) and
Keras lays it out over the devices.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("jax")

SCRIPT = r"""
import json, sys, warnings, numpy as np
import jax, keras
from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.variants import ContractiveAutoencoder, KSparseAutoencoder, StackedSparseAutoencoder
from sparse_ae_tf.vae import VariationalAutoencoder
from sparse_ae_tf.sparsity import kl_divergence
assert keras.backend.backend() == "jax" and len(jax.devices()) == 2, jax.devices()

(x, labels), _ = load_mnist()
x, labels = x[:1000], labels[:1000].astype("int32")
MODELS = {
    "sae-kl": lambda: SparseAutoencoder(784, 32),
    "sae-l1": lambda: SparseAutoencoder(784, 32, sparsity="l1", hidden_activation="relu"),
    "sae-topk": lambda: SparseAutoencoder(784, 32, sparsity="topk", k=4, hidden_activation="relu"),
    "ksparse": lambda: KSparseAutoencoder(784, 64, k=4, k_aux=8, dead_after=200),
    "contractive": lambda: ContractiveAutoencoder(784, 32, lam=0.1, weight_decay=1e-3),
    "stacked": lambda: StackedSparseAutoencoder(784, (32,), 10),
    "vae": lambda: VariationalAutoencoder(784, 2, (32,), seed=3),
}
data_parallel = keras.distribution.DataParallel(devices=jax.devices())
mesh_2d = keras.distribution.DeviceMesh((2, 1), ["batch", "model"], jax.devices())
DISTRIBUTIONS = {  # the same model under a named one-axis mesh, and under ModelParallel on a 2-D mesh (weights whole)
    "sae-kl-mesh": (MODELS["sae-kl"], keras.distribution.DataParallel(device_mesh=keras.distribution.DeviceMesh((2,), ["data"], jax.devices()))),
    "sae-kl-2d": (MODELS["sae-kl"], keras.distribution.ModelParallel(layout_map=keras.distribution.LayoutMap(mesh_2d), batch_dim_name="batch")),
}
CASES = {**{name: (make, data_parallel) for name, make in MODELS.items()}, **DISTRIBUTIONS}

def spied(model, seen):
    "Record, inside the compiled step, the sharding of every batch array and weight the step receives."
    step = model.train_step
    def spy(state, data):
        for a in jax.tree_util.tree_leaves(data):
            jax.debug.inspect_array_sharding(a, callback=lambda s, shape=a.shape: seen.append(
                ["batch", list(shape), str(s.spec), list(s.shard_shape(shape)), len(s.device_set)]))
        for a in jax.tree_util.tree_leaves(state[0]):
            jax.debug.inspect_array_sharding(a, callback=lambda s, shape=a.shape: seen.append(
                ["weight", list(shape), str(s.spec), list(s.shard_shape(shape)), len(s.device_set)]))
        return step(state, data)
    model.train_step = spy

def run(make, y, distribution=None):
    sharded = distribution is not None
    keras.utils.set_random_seed(0)  # the same initial weights (and noise seeds) on both sides
    with distribution.scope() if sharded else warnings.catch_warnings():
        model = make()
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        seen = []
        if sharded: spied(model, seen)
        np.random.seed(7)  # the shuffling seed
        h = model.fit(x, y, epochs=2, batch_size=100, verbose=0).history
    return model, h, seen

out = {}
for name, (make, distribution) in CASES.items():
    y = labels if name == "stacked" else None
    one, h1, _ = run(make, y)
    two, h2, seen = run(make, y, distribution)
    gaps = [float(np.max(np.abs(a - b) - 1e-4 * np.abs(a))) for a, b in zip(one.get_weights(), two.get_weights())]
    out[name] = {"weight_gap": max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), two.get_weights())),
                 "weight_excess": max(gaps),
                 "history_gap": max(abs(p - q) / max(abs(p), 1e-12) for k in h1 for p, q in zip(h1[k], h2[k])),
                 "keys": sorted(h1) == sorted(h2), "loss": h2["loss"], "seen": seen}

# the KL probe: without shuffling, device 0 gets 100 digits (every hidden unit on), device 1 100 blank rows (all off)
halves = np.zeros((200, 784), np.float32)
halves[:100] = x[:100]
with data_parallel.scope():
    probe = SparseAutoencoder(784, 16, rho=0.1, beta=3.0)
    probe.build((None, 784))
    probe.compile(optimizer=keras.optimizers.SGD(1e-3))  # the one step's objective is computed before its update
W1, b1 = np.full((784, 16), 0.06, np.float32), np.full(16, -3.0, np.float32)
probe.encoder_dense.kernel.assign(W1)
probe.encoder_dense.bias.assign(b1)
logged = probe.fit(halves, epochs=1, batch_size=200, shuffle=False, verbose=0).history["sparsity"][0]
a2 = 1 / (1 + np.exp(-(halves.astype(np.float64) @ W1 + b1)))
kl = lambda r: 3.0 * float(np.sum(keras.ops.convert_to_numpy(kl_divergence(0.1, r.astype(np.float32)))))
out["probe"] = {"logged": logged, "global": kl(a2.mean(0)), "per_device": (kl(a2[:100].mean(0)) + kl(a2[100:].mean(0))) / 2}
with data_parallel.scope():
    try: probe.fit(halves, batch_size=99, verbose=0); out["refused"] = None
    except ValueError as e: out["refused"] = str(e)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def result():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip())
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-4000:]
    line = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT "):])
    print({k: (v["weight_gap"], v["history_gap"]) for k, v in out.items() if "weight_gap" in v})
    return out


MODELS = ["sae-kl", "sae-l1", "sae-topk", "ksparse", "contractive", "stacked", "vae", "sae-kl-mesh", "sae-kl-2d"]


@pytest.mark.parametrize("name", MODELS)
def test_each_device_computes_its_half_of_the_batch(result, name):
    seen = result[name]["seen"]
    batches, weights = [s for s in seen if s[0] == "batch"], [s for s in seen if s[0] == "weight"]
    assert batches and weights, seen
    for _, shape, spec, shard, n_devices in batches:  # x (and y, for the classifier): rows split over the two devices
        axis = "'data'" if name == "sae-kl-mesh" else "'batch'"
        assert shape[0] == 100 and n_devices == 2 and spec.split("(", 1)[1].startswith(axis), (shape, spec)
        assert shard == [50] + shape[1:], (shape, shard)
    for _, shape, spec, shard, n_devices in weights:  # every weight whole on each device
        assert shard == shape and n_devices == 2, (shape, spec, shard)


@pytest.mark.parametrize("name", MODELS)
def test_trains_like_one_device(result, name):
    r = result[name]
    assert r["keys"]
    assert r["weight_excess"] <= 2e-4, r["weight_gap"]  # |a - b| <= 2e-4 + 1e-4 |a| for every weight
    assert r["history_gap"] <= 1e-5, r["history_gap"]
    assert all(map(lambda v: v == v, r["loss"])) and r["loss"][-1] < r["loss"][0]


def test_kl_term_of_the_global_batch(result):
    p = result["probe"]
    assert p["logged"] == pytest.approx(p["global"], rel=1e-5)
    assert p["per_device"] > 2 * p["global"]


def test_batch_size_the_devices_do_not_divide_is_refused(result):
    assert result["refused"] and "batch_size=99" in result["refused"] and "2 devices" in result["refused"]
