"""The `sparse-ae` command under faults: divergence, signals (real ones, to a real process), a folder in the way, a full
or read-only destination, failures half-way through moving the outputs into place, and option values out of range.

Each must end in one line and a known exit status, with the user's earlier outputs intact and nothing left behind."""
import contextlib
import errno
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from sparse_ae_tf import cli, files
from sparse_ae_tf.data import load_mnist


def _command():
    "The installed `sparse-ae` script next to this Python, or the same entry point through `python -c`."
    script = Path(sys.executable).with_name("sparse-ae")
    if script.exists(): return [str(script)]
    return [sys.executable, "-c", "import sys; from sparse_ae_tf.cli import main; sys.exit(main())"]


def _listing(folder):
    "Every path under `folder`, relative, hidden ones included."
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def _contents(folder):
    "name -> bytes of every file in `folder` (its subfolders left out)."
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if not p.is_dir()}


def run(*argv):
    "`cli.main(argv)` in this process: exit status, stdout, stderr."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    "500 MNIST digits as a .npy file."
    path = tmp_path_factory.mktemp("data") / "digits.npy"
    np.save(path, load_mnist()[0][0][:500])
    return path


@pytest.fixture(scope="module")
def previous_run(digits, tmp_path_factory):
    "The output folder of an earlier `train` run (in-process, one epoch): the outputs a failure must leave intact."
    out = tmp_path_factory.mktemp("previous") / "run"
    code, _, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 1, "--out", out)
    assert code == 0, err
    return out


@pytest.fixture
def earlier(previous_run, tmp_path):
    "A copy of the earlier run in this test's folder, and its files' bytes."
    out = tmp_path / "run"
    shutil.copytree(previous_run, out)
    return out, _contents(out)


def _assert_error(code, out, err, *expected, trained=True):
    "Exit status 2, one `sparse-ae: error:` line holding each of `expected`; no training if `trained` is False."
    assert code == 2, (code, err)
    assert len(err.splitlines()) == 1 and err.startswith("sparse-ae: error: "), err
    for text in expected: assert text in err, err
    if not trained: assert "epoch" not in out, out


# --- option values: refused before anything is read, trained or written ---

BAD_OPTIONS = [
    (["--seed", 2**40], "argument --seed: `seed` must be an integer in [0, 2**32), got seed=1099511627776"),
    (["--seed", -1], "argument --seed: `seed` must be an integer in [0, 2**32), got seed=-1"),
    (["--hidden", 2**31], "argument --hidden: `hidden_dim` is too large: hidden_dim=2147483648 needs about"),
    (["--hidden", "2**31"], "argument --hidden: `hidden_dim` must be an integer >= 1, got hidden_dim='2**31'"),
    (["--lam", "1e39"], "argument --lam: `weight_decay` must be a finite number >= 0 (in float32), got weight_decay=1e+39"),
    (["--beta", "inf"], "argument --beta: `beta` must be a finite number >= 0 (in float32), got beta=inf"),
    (["--rho", "nan"], "argument --rho: `rho` must be a finite number in (0, 1) (in float32), got rho=nan"),
    (["--learning-rate", "1e39"], "argument --learning-rate: `learning_rate` must be a finite number > 0 (in float32)"),
    (["--learning-rate", "-0.1"], "argument --learning-rate: `learning_rate` must be a finite number > 0"),
    (["--epochs", "1.5"], "argument --epochs: `epochs` must be an integer >= 1, got epochs='1.5'"),
    (["--batch-size", 0], "argument --batch-size: `batch_size` must be an integer >= 1, got batch_size=0"),
    (["--test-size", 0], "argument --test-size: `test_size` must be a finite number in (0, 1), got test_size=0.0"),
    (["--sparsity", "topk"], "argument --k: `k` must be an integer in [1, 8], got k=None"),
    (["--sparsity", "topk", "--k", 9], "argument --k: `k` must be an integer in [1, 8], got k=9"),
    (["--k", 3], "argument --k: `k` applies to sparsity='topk' only, got sparsity='kl'"),
    (["--outp", "x"], "ambiguous option: --outp could match"),
]


@pytest.mark.parametrize("options, expected", BAD_OPTIONS, ids=[" ".join(map(str, o)) for o, _ in BAD_OPTIONS])
def test_bad_option_is_one_line_before_anything(options, expected, digits, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 1, "--out", out, *options)
    _assert_error(code, stdout, err, expected, trained=False)
    assert _listing(tmp_path) == []


def test_data_file_larger_than_memory(digits, tmp_path):
    "A .npy file whose array cannot fit is refused from its header, before it is read."
    with mock.patch("sparse_ae_tf.validation.available_memory", return_value=10**5):
        code, out, err = run("train", "--data", digits, "--out", tmp_path / "out")
    _assert_error(code, out, err, "digits.npy' is too large: its array of shape (500, 784)", "of memory available", trained=False)
    assert _listing(tmp_path) == []


# --- divergence ---

def test_divergence_exits_2_in_one_line_and_writes_no_model(digits, tmp_path):
    "A learning rate so large that the first epoch overflows, in a real process: status 2, one line, no output."
    proc = subprocess.run(_command() + ["train", "--data", str(digits), "--hidden", "8", "--epochs", "3",
                                        "--learning-rate", "1e30", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparse-ae: error: training stopped: "), proc.stderr
    assert "at epoch 1, step" in lines[0] and "last finite step" in lines[0] and "nothing was written" in lines[0]
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr
    assert _listing(tmp_path) == []


def test_divergence_leaves_an_earlier_run_alone(digits, earlier):
    out, before = earlier
    code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 2, "--learning-rate", 1e30, "--out", out)
    _assert_error(code, stdout, err, "training stopped", "at epoch 1")
    assert _contents(out) == before


# --- the output transaction ---

def test_folder_named_like_an_output_is_refused_before_training(digits, earlier):
    out, before = earlier
    (out / "metrics.json").unlink(); (out / "metrics.json").mkdir()
    before.pop("metrics.json")
    code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 1, "--out", out)
    _assert_error(code, stdout, err, f"cannot write '{out / 'metrics.json'}': it is a folder, where a file is to be written",
                  trained=False)
    assert _contents(out) == before and (out / "metrics.json").is_dir()


def test_folder_appearing_during_training_rolls_nothing_in(digits, earlier):
    "A folder that appears where an output goes after the checks: the transaction refuses it, the earlier run is intact."
    out, before = earlier
    real_save_model = files.save_model
    def save_model_and_block(model, path):
        (out / "training_curves.png").unlink(); (out / "training_curves.png").mkdir()
        return real_save_model(model, path)
    with mock.patch.object(files, "save_model", save_model_and_block):
        code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 1, "--out", out)
    _assert_error(code, stdout, err, "cannot write", "it is a folder, where a file is to be written")
    before.pop("training_curves.png")
    assert _contents(out) == before
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("writer", ["save_model", "write_json", "save_figure"])
def test_full_disk_while_writing(writer, digits, earlier):
    "ENOSPC from any writer: one line, the earlier outputs byte for byte, no staging folder."
    out, before = earlier
    def full(obj, path, **kwargs): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))  # a file in the staging folder
    with mock.patch.object(files, writer, full):
        code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 1, "--out", out)
    _assert_error(code, stdout, err, f"cannot write '{out}': No space left on device")
    assert _contents(out) == before
    assert not [p for p in os.listdir(out) if p.startswith(".")]


@pytest.mark.parametrize("fail_at", [1, 3, 6, 10])
def test_failure_half_way_through_the_moves_is_undone(fail_at, digits, earlier):
    "The n-th rename of the swap fails (disk full, permission revoked): the moves made are undone."
    out, before = earlier
    real_rename, calls = os.rename, []
    def rename(src, dst):
        calls.append(dst)
        if len(calls) == fail_at: raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))
        real_rename(src, dst)
    real_move_in = files._move_in
    def move_in(*args):
        with mock.patch("os.rename", rename): return real_move_in(*args)
    with mock.patch.object(files, "_move_in", move_in):
        code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 1, "--out", out)
    _assert_error(code, stdout, err, f"cannot write '{out}", "Permission denied")
    assert _contents(out) == before
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def test_read_only_destination(digits, earlier):
    "A folder that cannot be written: one line before training, the earlier outputs intact."
    out, before = earlier
    with mock.patch("os.access", return_value=False):  # as for a non-root user; root may write anywhere
        code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 1, "--out", out)
    _assert_error(code, stdout, err, f"cannot write '{out}': folder '{out}' is not writable", trained=False)
    if os.geteuid() != 0:  # a real read-only folder, where permissions apply
        os.chmod(out, 0o555)
        try: code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 1, "--out", out)
        finally: os.chmod(out, 0o755)
        _assert_error(code, stdout, err, "is not writable", trained=False)
    assert _contents(out) == before


def test_unwritable_destination_found_before_training(digits, tmp_path):
    "A folder that `os.access` calls writable but where nothing can be created (/proc, even for root): refused before training."
    target = Path("/proc") / "sae_out"
    if not os.path.isdir("/proc"): pytest.skip("no /proc on this system")
    code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 1, "--out", target)
    _assert_error(code, stdout, err, f"argument --output: cannot write '{target}'", "'/proc'", trained=False)
    assert stdout == "" and not os.path.exists(target)
    code, stdout, err = run("score", tmp_path / "missing.keras", digits, "-o", target / "scores.csv")
    _assert_error(code, stdout, err, f"argument --output: cannot write '{target / 'scores.csv'}'", trained=False)


def test_empty_out_is_refused(digits, tmp_path, monkeypatch):
    "`-o \"\"` (an unset shell variable) is not the current folder: refused by name, the user's files there untouched."
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics.json").write_text("my own metrics\n")
    for argv in (["train", "--data", digits, "--hidden", 8, "--epochs", 1], ["encode", tmp_path / "m.keras", digits],
                 ["score", tmp_path / "m.keras", digits]):
        code, stdout, err = run(*argv, "-o", "")
        _assert_error(code, stdout, err, "argument --output: ", "got an empty path ''", trained=False)
        assert _listing(tmp_path) == ["metrics.json"] and (tmp_path / "metrics.json").read_text() == "my own metrics\n"


def test_npy_without_numpy_header(tmp_path):
    "A text file named .npy: 'not a .npy file', not NumPy's advice about pickles."
    (tmp_path / "notes.npy").write_text("just some text\n")
    code, stdout, err = run("train", "--data", tmp_path / "notes.npy", "--hidden", 8, "--epochs", 1, "--out", tmp_path / "out")
    _assert_error(code, stdout, err, f"data file '{tmp_path / 'notes.npy'}' is not a .npy file (no NumPy header)", trained=False)
    assert "pickle" not in err
    assert _listing(tmp_path) == ["notes.npy"]


def test_full_disk_for_encode_and_score(previous_run, digits, tmp_path):
    "`encode` and `score`: a full disk is one line, an earlier result file is intact, no temporary file is left."
    target = tmp_path / "scores.csv"
    target.write_text("earlier\n")
    real_replace = os.replace
    def replace(src, dst):
        if Path(dst) == target: raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        real_replace(src, dst)
    with mock.patch("os.replace", replace):
        for command in ("encode", "score"):
            code, out, err = run(command, previous_run / "model.keras", digits, "-o", target)
            _assert_error(code, out, err, f"cannot write '{target}': No space left on device")
    assert target.read_text() == "earlier\n" and _listing(tmp_path) == ["scores.csv"]


# --- signals ---

def test_signal_while_writing_the_outputs(digits, earlier):
    "SIGTERM while the outputs are being written (in-process, a real signal): status 143, the earlier run intact."
    out, before = earlier
    real_save_figure = files.save_figure
    def save_figure_and_stop(fig, path, **kwargs):
        real_save_figure(fig, path, **kwargs)
        signal.raise_signal(signal.SIGTERM)
    with mock.patch.object(files, "save_figure", save_figure_and_stop):
        code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 1, "--out", out)
    assert (code, err) == (143, "sparse-ae: interrupted (SIGTERM)\n")
    assert _contents(out) == before
    assert not [p for p in os.listdir(out) if p.startswith(".")]


class _SignalsWhenDropped:
    "An object whose `__del__` sends `sig` to this process: Python drops what the signal's handler raises there."
    def __init__(self, sig): self.sig = sig
    def __del__(self): signal.raise_signal(self.sig)


@pytest.mark.parametrize("sig, status, message", [
    (signal.SIGINT, 130, "sparse-ae: interrupted\n"),
    (signal.SIGTERM, 143, "sparse-ae: interrupted (SIGTERM)\n"),
], ids=["SIGINT", "SIGTERM"])
def test_signal_lost_in_a_del_still_stops_training(sig, status, message, digits, tmp_path, request):
    "A signal whose exception Python drops (raised inside a `__del__`, in epoch 2 of 30) still ends `train` that epoch."
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a process of its own (a test runner's may differ)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, saved))
    real_progress, ends = cli._progress, []
    def progress_and_a_drop(keras, epochs, stream=None):
        callback = real_progress(keras, epochs, stream)
        class Dropping(type(callback)):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1: _SignalsWhenDropped(sig)  # made and dropped at once, in training
            def on_epoch_end(self, epoch, logs=None):
                ends.append(epoch)
                super().on_epoch_end(epoch, logs)
        callback.__class__ = Dropping
        return callback
    with mock.patch.object(cli, "_progress", progress_and_a_drop):
        code, stdout, err = run("train", "--data", digits, "--hidden", 8, "--epochs", 30, "--out", tmp_path / "out")
    assert (code, err) == (status, message)
    assert ends == [0, 1]  # the epoch in which the signal came was the last
    assert _listing(tmp_path) == []


def _start(argv, sighup=signal.SIG_DFL):
    "Start `sparse-ae ARGV` with default signal dispositions (SIGHUP's as given): a background job of a non-interactive shell inherits SIGINT ignored, a terminal's gives the default."
    def dispositions():
        for sig in (signal.SIGINT, signal.SIGTERM): signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, sighup)
    return subprocess.Popen(_command() + [str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=dispositions)


def _wait_for(proc, text:bytes, timeout=120) -> bytes:
    "Read the process's stdout until `text` appears (or fail); what was read."
    seen, deadline = b"", time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, f"no {text!r} on stdout in {timeout} s: {seen!r}"
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, f"exited with {proc.wait()} before {text!r}: {proc.stderr.read().decode()}"
            seen += chunk
    return seen


@pytest.mark.parametrize("sig, status, message", [
    (signal.SIGINT, 130, "sparse-ae: interrupted"),
    (signal.SIGTERM, 143, "sparse-ae: interrupted (SIGTERM)"),
    (signal.SIGHUP, 129, "sparse-ae: interrupted (SIGHUP)"),
], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_during_training(sig, status, message, digits, tmp_path):
    "Ctrl-C, SIGTERM and SIGHUP to a real process in training: one line, status 128 + signal, nothing left behind."
    proc = _start(["train", "--data", digits, "--hidden", 16, "--epochs", 100000, "--out", tmp_path / "out"])
    try:
        _wait_for(proc, b"epoch 1/")  # training has begun
        time.sleep(0.5)
        proc.send_signal(sig)
        try: _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"still training 60 s after {sig.name}; its stderr: {proc.communicate()[1].decode()[-3000:]}")
    finally:
        if proc.poll() is None: proc.kill()
    assert proc.returncode == status, err
    assert err.decode().splitlines() == [message]
    assert _listing(tmp_path) == []


def test_sighup_ignored_under_nohup(digits, tmp_path):
    "Started with SIGHUP ignored (`nohup`), the command keeps it ignored and finishes."
    out = tmp_path / "out"
    proc = _start(["train", "--data", digits, "--hidden", 16, "--epochs", 300, "--out", out], sighup=signal.SIG_IGN)
    try:
        _wait_for(proc, b"epoch 1/")
        proc.send_signal(signal.SIGHUP)
        stdout, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None: proc.kill()
    assert proc.returncode == 0, err
    assert b"wrote" in stdout and json.loads((out / "metrics.json").read_text())["settings"]["epochs"] == 300
