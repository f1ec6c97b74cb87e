"""Streamed sources that fail while training reach the user as the package's one-line ValueError naming the source
and where it was, never as TensorFlow's wrapped errors, and a memory map whose file was truncated never kills the
process with SIGBUS (issue 19, class 9)."""
import os

import keras
import numpy as np
import pytest

from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.streaming import numpy_batches, write_tfrecords

N, D = 4000, 10


class AtEpochEnd(keras.callbacks.Callback):
    "Run `action` at the end of the first epoch (the file changes between epochs)."
    def __init__(self, action): super().__init__(); self.action = action
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0: self.action()


def data(n=N, d=D):
    return np.random.default_rng(0).uniform(size=(n, d)).astype("float32")


def truncate(path, rows): return lambda: os.truncate(path, 128 + 4 * D * rows)
def grow(path): return lambda: np.save(path, data(N + 500))
def widen(path): return lambda: np.save(path, data(N, D + 2))

def corrupt(path):
    raw = bytearray(open(path, "rb").read())
    raw[len(raw) // 2: len(raw) // 2 + 64] = b"\xff" * 64
    open(path, "wb").write(bytes(raw))


def case_memmap_truncated(tmp):
    p = tmp / "x.npy"; np.save(p, data())
    return np.load(p, mmap_mode="r"), [AtEpochEnd(truncate(p, 100))], ("was truncated", str(p))

def case_path_truncated(tmp):
    p = tmp / "x.npy"; np.save(p, data())
    return str(p), [AtEpochEnd(truncate(p, 100))], (str(p),)

def case_path_grows(tmp):
    p = tmp / "x.npy"; np.save(p, data())
    return str(p), [AtEpochEnd(grow(p))], ("changed since training began", str(p))

def case_path_widens(tmp):
    p = tmp / "x.npy"; np.save(p, data())
    return str(p), [AtEpochEnd(widen(p))], ("12 features but input_dim=10", str(p))

def case_nan_deep(tmp):
    x = data(); x[3333, 4] = np.nan
    p = tmp / "x.npy"; np.save(p, x)
    return str(p), [], ("must be finite", "nan at row 3333, column 4", str(p))

def case_tfrecord_corrupt(tmp):
    (p,) = write_tfrecords(data(), tmp / "x.tfrecord")
    corrupt(p)
    return str(p), [], (str(p),)

def case_tfrecord_widens(tmp):
    (p,) = write_tfrecords(data(), tmp / "x.tfrecord")
    return str(p), [AtEpochEnd(lambda: write_tfrecords(data(N, D + 2), tmp / "x.tfrecord"))], (str(p),)

CASES = {f.__name__[5:]: f for f in (case_memmap_truncated, case_path_truncated, case_path_grows, case_path_widens,
                                     case_nan_deep, case_tfrecord_corrupt, case_tfrecord_widens)}

@pytest.mark.parametrize("case", list(CASES))
def test_stream_failure_is_one_line_value_error(case, tmp_path):
    source, callbacks, says = CASES[case](tmp_path)
    model = SparseAutoencoder(D, 4)
    model.compile(jit_compile=False)
    with pytest.raises(ValueError) as e:
        model.fit(source, epochs=3, batch_size=64, verbose=0, callbacks=callbacks)
    assert type(e.value) is ValueError, type(e.value)
    message = str(e.value)
    assert "\n" not in message and "function_node" not in message and "Traceback" not in message, message
    for text in says: assert text in message, message


def test_numpy_batches_names_the_row(tmp_path):
    x = data(); x[3333, 4] = np.inf
    p = tmp_path / "x.npy"; np.save(p, x)
    with pytest.raises(ValueError, match=r"inf at row 3333, column 4.*x\.npy.*epoch 0, after \d+ rows"):
        list(numpy_batches(str(p), 64, shuffle=False))


@pytest.mark.parametrize("entry", ["fit", "cli"])
def test_header_claiming_more_than_the_file_is_not_out_of_memory(entry, tmp_path):
    p = tmp_path / "claim.npy"
    with open(p, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 784)})
        f.write(b"\0" * 4096)
    if entry == "fit":
        with pytest.raises(ValueError, match="truncated or corrupt: its header declares an array of shape"):
            model = SparseAutoencoder(784, 4); model.compile()
            model.fit(str(p))
    else:
        from test_cli_faults import run
        code, _, err = run("train", "--data", p, "--epochs", 1, "--out", tmp_path / "out")
        assert code == 2 and "truncated or corrupt" in err and "out of memory" not in err, err


def test_nan_deep_in_a_file_is_refused_before_the_first_step(tmp_path):
    x = np.random.default_rng(0).uniform(size=(140_000, 64)).astype("float32"); x[-1, 5] = np.nan  # past the first window of chunks
    p = tmp_path / "x.npy"; np.save(p, x)
    model = SparseAutoencoder(64, 8); model.compile(jit_compile=False); model.build((None, 64))
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"nan at row 139999, column 5.*x\.npy"):
        model.fit(str(p), epochs=1, batch_size=1024, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations) == 0
    for a, b in zip(before, model.get_weights()): np.testing.assert_array_equal(a, b)
