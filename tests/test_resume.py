"""Interruption: a `fit` process killed with SIGKILL resumes from its `TrainingCheckpoint` and ends with the weights
and the full history of an uninterrupted run (seeded, same machine: the same computation, so bit for bit)."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

EPOCHS = 30
SCRIPT = f"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.training import TrainingCheckpoint
checkpoint, out = sys.argv[1], sys.argv[2]
(x, _), _ = load_mnist()
keras.utils.set_random_seed(0)
model = SparseAutoencoder(784, 64)
model.compile(optimizer=keras.optimizers.Adam(1e-2))
run = TrainingCheckpoint(checkpoint)
fit = model.fit(x, epochs={EPOCHS}, batch_size=100, verbose=0, callbacks=[run]).history
np.savez(out, *model.get_weights(), fit_epochs=len(fit["loss"]), **{{f"history/{{k}}": np.array(v) for k, v in run.history.items()}})
"""


def _run(script, checkpoint, out):
    return subprocess.Popen([sys.executable, str(script), str(checkpoint), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _checkpoint_epoch(path):
    "The epoch a checkpoint file records (0 when there is none yet)."
    if not path.exists(): return 0
    with np.load(path) as f: return json.loads(str(f["state"]))["epoch"]


def _result(path):
    "The weights, the callback's history (name -> values) and the number of epochs this `fit` ran."
    with np.load(path) as f:
        weights = [f[f"arr_{i}"] for i in range(sum(k.startswith("arr_") for k in f.files))]
        history = {k[len("history/"):]: f[k] for k in f.files if k.startswith("history/")}
        return weights, history, int(f["fit_epochs"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("whole")
    (d / "run.py").write_text(SCRIPT)
    proc = _run(d / "run.py", d / "whole.ckpt.npz", d / "whole.npz")
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    return _result(d / "whole.npz")


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
    weights, history, fit_epochs = _result(out)
    whole_weights, whole_history, whole_epochs = uninterrupted
    assert (whole_epochs, fit_epochs) == (EPOCHS, EPOCHS - killed_at)  # the resumed fit ran only the epochs left
    assert set(history) == set(whole_history) == {"loss", "reconstruction", "sparsity", "weight_decay"}
    for k in whole_history:
        assert len(history[k]) == EPOCHS, k
        np.testing.assert_array_equal(history[k], whole_history[k], err_msg=k)
    assert len(weights) == len(whole_weights) == 4
    for a, b in zip(weights, whole_weights): np.testing.assert_array_equal(a, b)
