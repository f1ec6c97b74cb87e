"""A `train` run hard-killed (os._exit, as SIGKILL) between two renames of its output swap leaves outputs missing; the
next `train` into that folder, or an `encode`/`score` reading its model, finishes the swap first (issue 19, weaker item):
every output present, each from one run, and no staging folder left."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparse_ae_tf import files
from sparse_ae_tf.data import load_mnist
from test_cli_faults import _contents, run

OUTPUTS = ["filters.png", "metrics.json", "model.keras", "reconstructions.png", "training_curves.png"]
KILLED = """
import os, sys
from sparse_ae_tf import cli, files
real_move_in, calls = files._move_in, []
def move_in(*args):
    real = os.rename
    def rename(src, dst):
        calls.append(dst)
        if len(calls) == int(sys.argv[1]): os._exit(9)
        real(src, dst)
    os.rename = rename
    try: return real_move_in(*args)
    finally: os.rename = real
files._move_in = move_in
cli.main(sys.argv[2:])
"""

@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "digits.npy"
    np.save(path, load_mnist()[0][0][:300])
    return path

def train(digits, out, seed):
    code, _, err = run("train", "--data", digits, "--hidden", 4, "--epochs", 2, "--seed", seed, "--out", out)
    assert code == 0, err

@pytest.fixture(scope="module")
def earlier(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("earlier") / "run"
    train(digits, out, 0)
    return out

# the swap renames each output (in sorted order) aside, then the new one in: a kill at rename 2k leaves the k-th missing
@pytest.mark.parametrize("kill_at, missing, then", [(4, "metrics.json", "train"), (6, "model.keras", "encode"),
                                                     (10, "training_curves.png", "encode")])
def test_killed_swap_recovered(kill_at, missing, then, digits, earlier, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(earlier, out)
    first = _contents(out)
    argv = ["train", "--data", str(digits), "--hidden", "4", "--epochs", "2", "--seed", "1", "--out", str(out)]
    done = subprocess.run([sys.executable, "-c", KILLED, str(kill_at)] + argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 9, done.stderr[-2000:]
    visible = sorted(p for p in os.listdir(out) if not p.startswith("."))
    assert missing not in visible and len([p for p in os.listdir(out) if p.startswith(".")]) == 1
    if then == "train":
        train(digits, out, 2)
        assert sorted(os.listdir(out)) == OUTPUTS
        assert _contents(out)["metrics.json"] != first["metrics.json"]
    else:
        code, _, err = run("encode", out / "model.keras", digits, "--output", tmp_path / "codes.npy")
        assert code == 0, err
        assert sorted(os.listdir(out)) == OUTPUTS  # the killed run's swap, finished
        second = _contents(out)
        assert second["metrics.json"] != first["metrics.json"] and second["model.keras"] != first["model.keras"]


def test_one_step_run_with_the_cosine_schedule(digits, tmp_path):
    "A run of one optimiser step (1 epoch, one batch) trains at its rate: the cosine decays over at least 2 steps."
    code, _, err = run("train", "--data", digits, "--hidden", 4, "--epochs", 1, "--batch-size", 512, "--out", tmp_path / "one")
    assert code == 0, err
