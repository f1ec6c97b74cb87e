"""Interruption: a training process killed with SIGKILL resumes from its last checkpoint and ends with the weights
of an uninterrupted run (seeded, same machine)."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

EPOCHS = 30
SCRIPT = f"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.training import train
checkpoint, out = sys.argv[1] or None, sys.argv[2]
(x, _), _ = load_mnist()
keras.utils.set_random_seed(0)
model = SparseAutoencoder(784, 64)
history = train(model, x, epochs={EPOCHS}, batch_size=100, learning_rate=1e-2, checkpoint=checkpoint, verbose=0)
np.savez(out, *model.get_weights(), objective=np.array(history["objective"]))
"""


def _run(script, checkpoint, out):
    return subprocess.Popen([sys.executable, str(script), str(checkpoint or ""), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _checkpoint_epoch(path):
    "The epoch a checkpoint file records (0 when there is none yet)."
    if not path.exists(): return 0
    with np.load(path) as f: return json.loads(str(f["state"]))["epoch"]


def _weights(path):
    with np.load(path) as f: return [f[k] for k in sorted(f.files) if k.startswith("arr_")], f["objective"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("whole")
    (d / "run.py").write_text(SCRIPT)
    proc = _run(d / "run.py", None, d / "whole.npz")
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    return _weights(d / "whole.npz")


@pytest.mark.parametrize("kill_after", [2, 12])
def test_sigkill_then_resume(tmp_path, uninterrupted, kill_after):
    (tmp_path / "run.py").write_text(SCRIPT)
    checkpoint, out = tmp_path / "run.ckpt.npz", tmp_path / "resumed.npz"
    proc = _run(tmp_path / "run.py", checkpoint, out)
    deadline = time.time() + 240
    while _checkpoint_epoch(checkpoint) < kill_after and proc.poll() is None and time.time() < deadline: time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = _checkpoint_epoch(checkpoint)
    assert kill_after <= killed_at < EPOCHS, f"the kill came at checkpoint epoch {killed_at}, not mid-run"
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "a temporary file was left behind"

    resumed = _run(tmp_path / "run.py", checkpoint, out)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    weights, objective = _weights(out)
    whole_weights, whole_objective = uninterrupted
    assert len(objective) == EPOCHS
    np.testing.assert_allclose(objective, whole_objective, rtol=1e-6)
    for a, b in zip(weights, whole_weights): np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
