"""Distributed training through `fit` against single-device `fit`, from the same initial weights, shuffling seed and
global batch size: `MirroredStrategy` over two logical CPU devices, and `MultiWorkerMirroredStrategy` with two worker
processes on localhost. The three processes (single-device reference + MirroredStrategy, and the two workers) run at
once, in fresh interpreters (logical devices and the multi-worker runtime must be set up before TensorFlow starts);
every process has a deadline, and a failed worker's peer is killed at once rather than left waiting for it.

The global batch sizes split evenly (2050 digits in batches of 100: 20 of 50 + 50 rows and a last one of 25 + 25).
Keras's convention is that each replica's mean objective counts 1/R; with uneven slices that weights the examples
slightly differently from one device (see the *Distributed training* notebook), so an exact comparison needs even ones.
The workers draw different shuffling seeds from NumPy before `fit`: `fit` shuffles every worker with the chief's, which
is the reference's.

Tolerance: each replica sums its half of each gradient and the all-reduce adds the halves, where one device sums it in
one matrix product (with XLA), so the two differ by float32 round-off, compounded over the run's Adam steps. Measured
on this configuration (784-64, 3 epochs = 63 steps), on this machine and again with oneDNN and XLA held to AVX2:
weights differ by at most 3e-7 (5e-7 under AVX2) absolute, 1.5% (3.4%) of the allowed |a - b| <= 1e-5 + 1e-4 |b|,
the epoch histories by at most 2e-7 relative, and the two strategies give bit-identical weights. Asserted: weights rtol 1e-4 with atol 1e-5, histories
rtol 1e-5; the two workers bit-identical."""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

DEADLINE = 240  # seconds for the processes of one test; normal runs take 15-40 s
N, HIDDEN, BATCH, EPOCHS, LR, SEED = 2050, 64, 100, 3, 1e-2, 7
WEIGHT_TOL, HISTORY_RTOL = dict(rtol=1e-4, atol=1e-5), 1e-5
KEYS = ("loss", "reconstruction", "sparsity", "weight_decay")

PRELUDE = """
import json, os, sys, warnings
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
"""

# single-device reference, MirroredStrategy over two logical CPUs, the KL probe and the guard, in one process
MIRRORED = PRELUDE + f"""
from sparse_ae_tf.distributed import logical_cpus
devices = logical_cpus(2)  # before any TensorFlow operation
import keras
import tensorflow as tf
from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.models import SparseAutoencoder
out = sys.argv[1]
(x, _), _ = load_mnist()
x = x[:{N}]
w0 = [np.load(out + "/w0.npz")[f"arr_{{i}}"] for i in range(4)]
single = SparseAutoencoder(784, {HIDDEN})
single.build((None, 784))
single.set_weights(w0)
single.compile(optimizer=keras.optimizers.Adam({LR}))  # the defaults: XLA, 32 steps per call
np.random.seed({SEED})
h_single = single.fit(x, epochs={EPOCHS}, batch_size={BATCH}, verbose=0).history
np.savez(out + "/single.npz", *single.get_weights(), **{{k: np.array(h_single[k]) for k in {KEYS}}})

strategy = tf.distribute.MirroredStrategy(devices)
with strategy.scope():
    model = SparseAutoencoder(784, {HIDDEN})
    model.build((None, 784))
    model.compile(optimizer=keras.optimizers.Adam({LR}))
model.set_weights(w0)
np.random.seed({SEED})
h = model.fit(x, epochs={EPOCHS}, batch_size={BATCH}, verbose=0).history
np.savez(out + "/mirrored.npz", *model.get_weights(), **{{k: np.array(h[k]) for k in {KEYS}}},
         replicas=strategy.num_replicas_in_sync)

# KL probe: without shuffling replica 0 gets 100 digits (every hidden unit on), replica 1 100 blank rows (every unit off)
halves = np.zeros((200, 784), np.float32)
halves[:100] = x[:100]
with strategy.scope():
    probe = SparseAutoencoder(784, 16, rho=0.1, beta=3.0)
    probe.build((None, 784))
    probe.compile(optimizer=keras.optimizers.SGD(1e-3))  # the one step's objective is computed before its update
W1, b1 = np.full((784, 16), 0.06, np.float32), np.full(16, -3.0, np.float32)
probe.encoder_dense.kernel.assign(W1)
probe.encoder_dense.bias.assign(b1)
h_probe = probe.fit(halves, epochs=1, batch_size=200, shuffle=False, verbose=0).history
a2 = 1 / (1 + np.exp(-(halves.astype(np.float64) @ W1 + b1)))
np.savez(out + "/kl.npz", sparsity=h_probe["sparsity"][0], a2_replica0=a2[:100], a2_replica1=a2[100:])

# the guard: a step that overflows is undone on every replica, and training stops there
with strategy.scope():
    wild = SparseAutoencoder(784, 16, sparsity="l1", hidden_activation="linear", output_activation="linear", loss="mse")
    wild.compile(optimizer=keras.optimizers.SGD(1e3))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    h_wild = wild.fit(x * 100, epochs=3, batch_size={BATCH}, verbose=0).history
copies = [c.numpy() for c in strategy.experimental_local_results(wild.encoder_dense.kernel.value)]
np.savez(out + "/guard.npz", stopped=h_wild.get("stopped", ""), epochs=len(h_wild["loss"]),
         iterations=int(wild.optimizer.iterations.numpy()), copy0=copies[0], copy1=copies[1])
"""

# one MultiWorkerMirroredStrategy worker; TF_CONFIG says which
WORKER = PRELUDE + f"""
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()  # first, before any other TensorFlow work
import keras
from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.distributed import is_chief
from sparse_ae_tf.models import SparseAutoencoder
out = sys.argv[1]
task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
(x, _), _ = load_mnist()
w0 = [np.load(out + "/w0.npz")[f"arr_{{i}}"] for i in range(4)]
with strategy.scope():
    model = SparseAutoencoder(784, {HIDDEN})
    model.build((None, 784))
    model.compile(optimizer=keras.optimizers.Adam({LR}))
model.set_weights(w0)
np.random.seed({SEED} + task)  # each worker draws its own shuffling seed: fit takes the chief's
h = model.fit(x[:{N}], epochs={EPOCHS}, batch_size={BATCH}, verbose=0).history
np.savez(out + f"/worker{{task}}.npz", *model.get_weights(), seed=model.shuffle_seed_)  # every worker: to check that they agree
if is_chief(strategy):
    np.savez(out + "/chief.npz", *model.get_weights(), **{{k: np.array(h[k]) for k in {KEYS}}},
             replicas=strategy.num_replicas_in_sync, task=task)
"""


def _load(path):
    "Weights (arr_0, arr_1, ... in order) and the other arrays of an `.npz` file."
    with np.load(path) as f:
        weights = [f[k] for k in sorted((k for k in f.files if k.startswith("arr_")), key=lambda k: int(k[4:]))]
        return weights, {k: f[k] for k in f.files if not k.startswith("arr_")}


def _start(command, folder, env, name):
    "Start `command` in `folder`, its output going to `folder/name.log`."
    with open(folder / f"{name}.log", "wb") as log:
        return subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait(groups, deadline=DEADLINE):
    "Wait for every process for up to `deadline` seconds; when one fails, kill the rest of its group (they would wait for it)."
    deadline = time.monotonic() + deadline
    try:
        while time.monotonic() < deadline and any(p.poll() is None for g in groups.values() for p in g):
            for group in groups.values():
                if any(p.poll() not in (None, 0) for p in group):
                    for p in group:
                        if p.poll() is None: p.kill()
            time.sleep(0.2)
    finally:
        for p in (p for g in groups.values() for p in g):
            if p.poll() is None: p.kill()
            p.wait(timeout=30)


def _check_group(folder, name, size):
    "Assert that the `size` processes of group `name` succeeded, showing their logs if not."
    codes = json.loads((folder / "codes.json").read_text())[name]
    logs = "\n".join(f"--- {name}{i} (exit {c}):\n{(folder / f'{name}{i}.log').read_text()[-3000:]}" for i, c in enumerate(codes))
    assert codes == [0] * size, f"{name}: a process failed or passed the {DEADLINE} s deadline (killed: exit -9)\n{logs}"


def _env(**extra):
    "This process's environment without its own TF_CONFIG, plus `extra`."
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return dict(env, TF_CPP_MIN_LOG_LEVEL="3", **extra)


def _free_ports(n):
    "`n` distinct ports that were free a moment ago."
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks: s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks: s.close()


def _assert_matches(weights, history, folder):
    "`weights` and `history` are single-device training's (in `folder`) within tolerance, and far from the start."
    ref_weights, ref_history = _load(folder / "single.npz")
    assert len(history["loss"]) == EPOCHS
    for key in KEYS: np.testing.assert_allclose(history[key], ref_history[key], rtol=HISTORY_RTOL, err_msg=key)
    for a, b in zip(weights, ref_weights): np.testing.assert_allclose(a, b, **WEIGHT_TOL)
    moved = max(np.abs(a - b).max() for a, b in zip(weights, _load(folder / "w0.npz")[0]))
    assert moved > 100 * WEIGHT_TOL["atol"], f"training hardly moved the weights ({moved})"


def _glorot(rng, shape):
    limit = np.sqrt(6 / sum(shape))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    "Run the MirroredStrategy process and the two workers at once, from the same initial weights; their folder."
    d = tmp_path_factory.mktemp("distributed")
    rng = np.random.default_rng(0)
    np.savez(d / "w0.npz", _glorot(rng, (784, HIDDEN)), np.zeros(HIDDEN, np.float32), _glorot(rng, (HIDDEN, 784)),
             np.zeros(784, np.float32))
    (d / "mirrored.py").write_text(MIRRORED)
    (d / "worker.py").write_text(WORKER)
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    groups = {"mirrored": [], "worker": []}
    try:
        groups["mirrored"].append(_start([sys.executable, "mirrored.py", str(d)], d, _env(), "mirrored0"))
        for i in range(2):
            config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
            groups["worker"].append(_start([sys.executable, "worker.py", str(d)], d, _env(TF_CONFIG=json.dumps(config)), f"worker{i}"))
    finally:
        _wait(groups, deadline=DEADLINE if len(groups["worker"]) == 2 else 0)
    (d / "codes.json").write_text(json.dumps({k: [p.returncode for p in g] for k, g in groups.items()}))
    return d


def test_mirrored_matches_single_device(runs):
    _check_group(runs, "mirrored", 1)
    weights, history = _load(runs / "mirrored.npz")
    assert int(history["replicas"]) == 2
    _assert_matches(weights, history, runs)


def test_kl_uses_global_batch_mean_activation(runs):
    _check_group(runs, "mirrored", 1)
    _, kl = _load(runs / "kl.npz")
    rho, beta = 0.1, 3.0
    def kl_term(rho_hat): return beta * np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))
    a0, a1 = kl["a2_replica0"], kl["a2_replica1"]
    global_kl = kl_term(np.concatenate([a0, a1]).mean(0))
    per_replica_kl = (kl_term(a0.mean(0)) + kl_term(a1.mean(0))) / 2
    assert a0.mean() > 0.8 and a1.mean() < 0.1, "the probe's halves should switch the units on and off"
    np.testing.assert_allclose(float(kl["sparsity"]), global_kl, rtol=1e-5)
    assert per_replica_kl > 2 * global_kl


def test_guard_undoes_a_step_that_is_not_finite_on_every_replica(runs):
    _check_group(runs, "mirrored", 1)
    _, guard = _load(runs / "guard.npz")
    stopped = str(guard["stopped"])
    assert "became NaN or infinite at epoch 1" in stopped and int(guard["epochs"]) == 1, stopped
    assert int(guard["iterations"]) == int(stopped.split("step ")[1].split(";")[0]) - 1  # the refused update undone
    assert np.isfinite(guard["copy0"]).all()
    np.testing.assert_array_equal(guard["copy0"], guard["copy1"])


def test_multi_worker_matches_single_device(runs):
    _check_group(runs, "mirrored", 1)  # the single-device reference
    _check_group(runs, "worker", 2)
    weights, info = _load(runs / "chief.npz")
    assert int(info["task"]) == 0 and int(info["replicas"]) == 2
    _assert_matches(weights, info, runs)
    (w0, s0), (w1, s1) = _load(runs / "worker0.npz"), _load(runs / "worker1.npz")
    assert int(s0["seed"]) == int(s1["seed"]), "the workers shuffled with different seeds"
    for a, b in zip(w0, w1): np.testing.assert_array_equal(a, b)
