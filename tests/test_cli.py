"""The `sparse-ae` console script, run for real in subprocesses: train, encode, score, and its answers to bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparse_ae_tf.cli import make_parser
from sparse_ae_tf.data import load_mnist

OUTPUT_FILES = {"model.keras", "metrics.json", "filters.png", "reconstructions.png", "training_curves.png"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _command():
    "The installed `sparse-ae` script next to this Python, or the same entry point through `python -c`."
    script = Path(sys.executable).with_name("sparse-ae")
    if script.exists(): return [str(script)]
    return [sys.executable, "-c", "import sys; from sparse_ae_tf.cli import main; sys.exit(main())"]


def sparse_ae(*args, cwd=None, timeout=180):
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
    np.save(d / "bright.npy", x[:20] * 2)
    return d


@pytest.fixture(scope="module")
def trained(files, tmp_path_factory):
    "The output folder of `sparse-ae train --epochs 2` on the .npy digits (given with `--out`), and the completed process."
    out = tmp_path_factory.mktemp("runs") / "npy_run"
    proc = sparse_ae("train", "--data", files / "digits.npy", "--hidden", 32, "--epochs", 2, "--out", out)
    return out, proc


def test_defaults_are_the_measured_run():
    "`sparse-ae train` alone: 300 epochs of Adam, batch 256, learning rate 0.03 with cosine decay, UFLDL's model."
    a = make_parser().parse_args(["train"])
    assert (a.epochs, a.batch_size, a.learning_rate, a.schedule) == (300, 256, 0.03, "cosine")
    assert (a.hidden, a.sparsity, a.rho, a.beta, a.lam, a.output) == (196, "kl", 0.1, 3.0, 3e-3, "sae_output")


def test_train_npy(trained):
    out, proc = trained
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert set(os.listdir(out)) == OUTPUT_FILES
    assert not [p for p in os.listdir(out.parent) if p.startswith(".")]  # no staging folder left behind
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train"]["examples"], metrics["test"]["examples"]) == (400, 100)
    assert metrics["settings"]["hidden"] == 32 and metrics["settings"]["epochs"] == 2
    assert metrics["settings"]["data_range"] == [0.0, 1.0]
    assert metrics["rho"] == 0.1 and metrics["activity_threshold"] == 0.5 and 0 < metrics["train"]["mean_activation"] < 1
    assert abs(metrics["objective"] - metrics["reconstruction"] - metrics["sparsity"] - metrics["weight_decay"]) < 1e-3
    for split in ("train", "test"):
        assert metrics[split]["mean_reconstruction_error"] > 0 and metrics[split]["fvu"] > 0
        assert 0 <= metrics[split]["dead_fraction"] <= 1
        assert abs(metrics[split]["active_share"] - metrics[split]["mean_l0"] / 32) < 1e-9
    for png in ("filters.png", "reconstructions.png", "training_curves.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC


def test_progress_and_summary_are_plain_text(trained):
    "In a pipe: one plain line per epoch, no escape codes or per-step timings; sigmoid codes summarised by mean and share."
    out, proc = trained
    lines = proc.stdout.splitlines()
    assert [l.split(":")[0] for l in lines[:2]] == ["epoch 1/2", "epoch 2/2"], proc.stdout
    assert "objective" in lines[0] and "reconstruction" in lines[0]
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout and "/step" not in proc.stdout
    assert any(l.startswith("mean activation (rho 0.1)") for l in lines), proc.stdout
    assert any(l.startswith("share of activations > 0.5") for l in lines), proc.stdout
    assert "L0" not in proc.stdout and "> 0.001" not in proc.stdout
    assert lines[-1].startswith(f"wrote {out}")


def test_train_csv_with_header(files, tmp_path):
    out = tmp_path / "nested" / "csv_run"  # missing parent folders are created at the end
    proc = sparse_ae("train", "--data", files / "digits.csv", "--hidden", 16, "--sparsity", "l1", "--epochs", 1,
                     "--batch-size", 64, "--test-size", 0.25, "--schedule", "constant", "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert set(os.listdir(out)) == OUTPUT_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train"]["examples"], metrics["test"]["examples"]) == (90, 30)  # the header is not an example
    assert metrics["settings"]["sparsity"] == "l1" and metrics["rho"] is None
    assert metrics["settings"]["schedule"] == "constant"
    assert _listing(tmp_path)[0] == "nested"  # no hidden staging folder beside it


def test_train_topk(files, tmp_path):
    "`--sparsity topk --k N`: ReLU codes with N active units per example, summarised by L0 and dead units."
    out = tmp_path / "topk"
    proc = sparse_ae("train", "--data", files / "digits.npy", "--hidden", 24, "--sparsity", "topk", "--k", 4,
                     "--epochs", 2, "--out", out)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["k"], metrics["settings"]["k"], metrics["activity_threshold"]) == (4, 4, 0.0)
    assert 3 <= metrics["test"]["mean_l0"] <= 4
    assert "active units per example (k 4)" in proc.stdout and "units never active" in proc.stdout
    codes = tmp_path / "codes.npy"
    enc = sparse_ae("encode", out / "model.keras", files / "digits.npy", "-o", codes)
    assert enc.returncode == 0, enc.stderr
    h = np.load(codes)
    assert h.shape == (500, 24) and np.all((h > 0).sum(axis=1) <= 4)


def test_encode_and_score(trained, files, tmp_path):
    out, proc = trained
    assert proc.returncode == 0, proc.stderr
    model = out / "model.keras"
    enc = sparse_ae("encode", model, files / "digits.csv", "--output", tmp_path / "codes.npy")
    assert enc.returncode == 0, enc.stderr
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape == (120, 32) and codes.dtype == np.float32
    assert np.all((codes >= 0) & (codes <= 1))  # sigmoid units
    assert "mean activation" in enc.stdout and "(rho 0.1)" in enc.stdout and "% of activations above 0.5" in enc.stdout
    score = sparse_ae("score", model, files / "digits.npy", "--out", tmp_path / "scores.csv")
    assert score.returncode == 0, score.stderr
    assert score.stderr == ""  # the data lies in the training range: no warning
    scores = np.loadtxt(tmp_path / "scores.csv")
    assert scores.shape == (500,) and np.all(scores > 0)
    assert f"mean {scores.mean():.4g}" in score.stdout
    assert sorted(os.listdir(tmp_path)) == ["codes.npy", "scores.csv"]  # no temporary files left behind


def test_encode_and_score_default_outputs(trained, files, tmp_path):
    "Without `--output`: DATA_codes.npy and DATA_scores.csv in the current folder."
    model = trained[0] / "model.keras"
    assert sparse_ae("encode", model, files / "digits.npy", cwd=tmp_path).returncode == 0
    score = sparse_ae("score", model, files / "digits.npy", cwd=tmp_path)
    assert score.returncode == 0, score.stderr
    assert sorted(os.listdir(tmp_path)) == ["digits_codes.npy", "digits_scores.csv"]
    assert np.load(tmp_path / "digits_codes.npy").shape == (500, 32)
    assert np.loadtxt(tmp_path / "digits_scores.csv").shape == (500,)
    assert "wrote 500 scores to digits_scores.csv" in score.stdout


def test_pandas_csv_header_is_not_an_example(trained, files, tmp_path):
    "`DataFrame(x).to_csv(index=False)` heads the file with the column numbers 0,1,...: skipped (and said), n rows scored as from .npy."
    pd = pytest.importorskip("pandas")
    x = np.load(files / "digits.npy")[:40]
    pd.DataFrame(x).to_csv(tmp_path / "frame.csv", index=False)
    assert (tmp_path / "frame.csv").read_text().startswith("0,1,2,3,")
    np.save(tmp_path / "same.npy", x)
    model = trained[0] / "model.keras"
    for data in ("frame.csv", "same.npy"):
        proc = sparse_ae("score", model, tmp_path / data, "-o", tmp_path / f"{data}_scores.npy")
        said = "" if data == "same.npy" else f"sparse-ae: warning: data file '{tmp_path / data}': its first line '0,1,2,...,783' was read as a header (column numbers)"
        assert proc.returncode == 0 and proc.stderr.startswith(said) and proc.stderr.count("\n") == (data != "same.npy"), proc.stderr  # no row [0, 1, ..., 783] out of the training range
        assert "wrote 40 scores" in proc.stdout, proc.stdout
    from_csv, from_npy = np.load(tmp_path / "frame.csv_scores.npy"), np.load(tmp_path / "same.npy_scores.npy")
    assert from_csv.shape == (40,)
    np.testing.assert_allclose(from_csv, from_npy, rtol=1e-5, atol=1e-6)


def test_score_warns_outside_the_training_range(trained, files, tmp_path):
    "Data beyond [0, 1] (the digits' range, and a sigmoid output's): scored, with one warning line per reason."
    proc = sparse_ae("score", trained[0] / "model.keras", files / "bright.npy", "-o", tmp_path / "s.npy")
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("sparse-ae: warning: the data has values in [0, 2]") for w in warnings)
    assert "sigmoid output reaches only (0, 1)" in warnings[0]
    assert "outside the range [0, 1] of the data the model was trained on" in warnings[1]
    assert np.load(tmp_path / "s.npy").shape == (20,)


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
        (["train", "--data", tmp_path / "missing.npy", "--out", out], ["missing.npy", "does not exist"]),
        (["train", "--data", files / "nan.npy", "--epochs", 1, "--out", out], ["nan.npy", "NaN", "row 7, column 300"]),
        (["train", "--data", files / "digits.npy", "--rho", 1.5, "--epochs", 1, "--out", out], ["--rho", "rho=1.5"]),
        (["train", "--epochs", 0, "--out", out], ["--epochs", "epochs=0"]),
        (["encode", model, files / "narrow.npy", "--output", out / "codes.npy"], ["narrow.npy", "10 features", "784"]),
        (["score", model, files / "nan.npy"], ["nan.npy", "NaN"]),
    ]
    for argv, expected in cases:
        proc = sparse_ae(*argv, cwd=tmp_path)
        _assert_one_line_error(proc, *expected)
        assert proc.stdout == "", (argv, proc.stdout)  # refused before training
        assert _listing(tmp_path) == [], (argv, _listing(tmp_path))
