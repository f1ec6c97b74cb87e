"""The `sparse-ae` console script, run for real in subprocesses: train, encode, score, and its answers to bad input."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sparse_ae_tf.data import load_mnist

OUTPUT_FILES = {"model.keras", "metrics.json", "filters.png", "reconstructions.png", "training_curves.png"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _command():
    "The installed `sparse-ae` script next to this Python, or the same entry point through `python -c`."
    script = Path(sys.executable).with_name("sparse-ae")
    if script.exists(): return [str(script)]
    return [sys.executable, "-c", "import sys; from sparse_ae_tf.cli import main; sys.exit(main())"]


def sparse_ae(*args, cwd=None, timeout=120):
    "Run `sparse-ae ARGS`; returns the completed process (text stdout and stderr)."
    return subprocess.run(_command() + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def _listing(folder):
    "Every path under `folder`, relative, hidden ones included."
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    "Small data files: 500 MNIST digits as .npy, 120 as .csv with a header, one with a NaN, one with 10 features."
    d = tmp_path_factory.mktemp("data")
    (x, _), _ = load_mnist()
    np.save(d / "digits.npy", x[:500])
    np.savetxt(d / "digits.csv", x[500:620], delimiter=",", fmt="%.6g",
               header=",".join(f"pixel{i}" for i in range(784)), comments="")
    nan = x[:50].copy(); nan[7, 300] = np.nan
    np.save(d / "nan.npy", nan)
    np.save(d / "narrow.npy", x[:50, :10])
    return d


@pytest.fixture(scope="module")
def trained(files, tmp_path_factory):
    "The output folder of `sparse-ae train --epochs 1` on the .npy digits, and the completed process."
    out = tmp_path_factory.mktemp("runs") / "npy_run"
    proc = sparse_ae("train", "--data", files / "digits.npy", "--hidden", 32, "--epochs", 1, "--output", out)
    return out, proc


def test_train_npy(trained):
    out, proc = trained
    assert proc.returncode == 0, proc.stderr
    assert set(os.listdir(out)) == OUTPUT_FILES
    assert not [p for p in os.listdir(out.parent) if p.endswith(".tmp")]
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train"]["examples"], metrics["test"]["examples"]) == (400, 100)
    assert metrics["settings"]["hidden"] == 32 and metrics["settings"]["epochs"] == 1
    assert metrics["rho"] == 0.1 and 0 < metrics["train"]["mean_activation"] < 1
    assert abs(metrics["objective"] - metrics["reconstruction"] - metrics["sparsity"] - metrics["weight_decay"]) < 1e-3
    for split in ("train", "test"):
        assert metrics[split]["mean_reconstruction_error"] > 0 and metrics[split]["fvu"] > 0
        assert 0 <= metrics[split]["dead_fraction"] <= 1
    for png in ("filters.png", "reconstructions.png", "training_curves.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    assert "reconstruction error" in proc.stdout and "wrote" in proc.stdout
    assert "sparse-ae: error" not in proc.stderr


def test_train_csv_with_header(files, tmp_path):
    out = tmp_path / "nested" / "csv_run"  # missing parent folders are created at the end
    proc = sparse_ae("train", "--data", files / "digits.csv", "--hidden", 16, "--sparsity", "l1", "--epochs", 1,
                     "--batch-size", 64, "--test-size", 0.25, "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert set(os.listdir(out)) == OUTPUT_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train"]["examples"], metrics["test"]["examples"]) == (90, 30)  # the header is not an example
    assert metrics["settings"]["sparsity"] == "l1" and metrics["rho"] is None


def test_encode_and_score(trained, files, tmp_path):
    out, proc = trained
    assert proc.returncode == 0, proc.stderr
    model = out / "model.keras"
    enc = sparse_ae("encode", model, files / "digits.csv", "--output", tmp_path / "codes.npy")
    assert enc.returncode == 0, enc.stderr
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape == (120, 32) and codes.dtype == np.float32
    assert np.all((codes >= 0) & (codes <= 1))  # sigmoid units
    score = sparse_ae("score", model, files / "digits.npy", "--output", tmp_path / "scores.csv")
    assert score.returncode == 0, score.stderr
    scores = np.loadtxt(tmp_path / "scores.csv")
    assert scores.shape == (500,) and np.all(scores > 0)
    assert f"mean {scores.mean():.4g}" in score.stdout
    assert sorted(os.listdir(tmp_path)) == ["codes.npy", "scores.csv"]  # no temporary files left behind


def _assert_one_line_error(proc, *expected):
    "Exit status 2 and exactly one stderr line, `sparse-ae: error: ...`, holding each of `expected`."
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sparse-ae: error: ")
    for text in expected: assert text in lines[0], lines[0]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(trained, files, tmp_path):
    model = trained[0] / "model.keras"
    out = tmp_path / "out"
    cases = [
        (["train", "--data", tmp_path / "missing.npy", "--output", out], ["missing.npy", "does not exist"]),
        (["train", "--data", files / "nan.npy", "--epochs", 1, "--output", out], ["nan.npy", "NaN", "row 7, column 300"]),
        (["train", "--data", files / "digits.npy", "--rho", 1.5, "--epochs", 1, "--output", out], ["--rho", "rho=1.5"]),
        (["train", "--epochs", 0, "--output", out], ["--epochs", "'0'"]),
        (["encode", model, files / "narrow.npy", "--output", out / "codes.npy"], ["narrow.npy", "10 features", "784"]),
        (["score", model, files / "nan.npy", "--output", out / "scores.csv"], ["nan.npy", "NaN"]),
    ]
    for argv, expected in cases:
        proc = sparse_ae(*argv, cwd=tmp_path)
        _assert_one_line_error(proc, *expected)
        assert _listing(tmp_path) == [], (argv, _listing(tmp_path))


def test_ctrl_c_exits_130_and_writes_nothing(files, tmp_path):
    out = tmp_path / "out"
    cmd = _command() + ["train", "--data", str(files / "digits.npy"), "--hidden", 16, "--epochs", 100000, "--output", str(out)]
    # A job started in the background by a non-interactive shell inherits SIGINT ignored (as CI may start this test);
    # a user's terminal gives the command the default disposition, so the child gets that here.
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):  # the staging folder: training is next
            assert proc.poll() is None and time.monotonic() < deadline, "training did not start"
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None: proc.kill()
    assert proc.returncode == 130, err
    assert err.splitlines() == ["sparse-ae: interrupted"]
    assert _listing(tmp_path) == []
