"""Streaming sources: every kind yields the same rows, `fit` trains from each of them, and `fit` over a memory-mapped
`.npy` file keeps the peak RSS of the process near its TensorFlow baseline instead of growing with the file (measured
in a child process)."""
import json
import subprocess
import sys

import numpy as np
import pytest

ROWS, DIM, BATCH = 160_000, 784, 256  # a 480 MiB float32 file, 625 batches
ALLOWANCE_MB = 200  # streaming may add at most this to the baseline (measured: about 110); the file is 480 MiB

CHILD = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
from sparse_ae_tf.models import SparseAutoencoder

def status_mb(key): return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1]) / 1024
def reset_peak(): open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) restarts from the current RSS
path, small = sys.argv[1], sys.argv[2]
keras.utils.set_random_seed(0)
model = SparseAutoencoder({DIM}, 16)
model.compile(optimizer=keras.optimizers.Adam(1e-3))

def epoch(source):
    "One epoch of `fit` on the file at `source`; the number of optimizer steps it took."
    before = int(model.optimizer.iterations.numpy())
    model.fit(source, epochs=1, batch_size={BATCH}, verbose=0)
    return int(model.optimizer.iterations.numpy()) - before

epoch(small)  # warm-up: TensorFlow, the model, both compiled step shapes, and the tf.data machinery
reset_peak()  # so that a peak of the warm-up (compilation) cannot hide what the epoch adds
baseline = status_mb("VmRSS")
steps = epoch(path)
streamed = status_mb("VmHWM")
reset_peak()
before_control = status_mb("VmRSS")
float(np.load(path, mmap_mode="r").sum(dtype=np.float64))  # the control: a plain read of the whole map
control = baseline + status_mb("VmHWM") - before_control
print(json.dumps(dict(baseline=baseline, streamed=streamed, control=control, steps=steps)))
"""


def _write_npy(path, rows, dim, seed=0, chunk=20_000):
    "A float32 .npy of uniform noise, written chunk by chunk."
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)})
        for start in range(0, rows, chunk): f.write(rng.random((min(chunk, rows - start), dim), dtype=np.float32).tobytes())


@pytest.mark.skipif(sys.platform != "linux", reason="page release and RSS accounting as on Linux")
def test_streaming_npy_memory_is_bounded(tmp_path):
    path, small = tmp_path / "big.npy", tmp_path / "small.npy"
    _write_npy(path, ROWS, DIM)
    _write_npy(small, 3 * BATCH + 7, DIM, seed=1)
    (tmp_path / "child.py").write_text(CHILD.format(DIM=DIM, BATCH=BATCH))
    proc = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(path), str(small)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(r)
    file_mb = path.stat().st_size / 2**20
    assert r["steps"] == ROWS // BATCH  # every row, in full batches (a batch holds at most BATCH rows)
    assert r["streamed"] - r["baseline"] < ALLOWANCE_MB, (r, file_mb)
    # the measurement sees a whole-file read: without page release RSS grows by the file's size
    assert r["control"] - r["baseline"] > 0.8 * file_mb, (r, file_mb)


def _epoch(source, **kw):
    from sparse_ae_tf.streaming import batches
    return np.concatenate(list(batches(source, 64, **kw).as_numpy_iterator()))


def _sorted_rows(a): return a[np.lexsort(a.T[::-1])]


def test_sources_agree(tmp_path):
    import tensorflow as tf
    from sparse_ae_tf.streaming import batches, is_streaming, source_info, write_tfrecords
    x = np.random.default_rng(0).random((2000, 12), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    shards = write_tfrecords(x, tmp_path / "x.tfrecord", shards=3)
    sources = {"npy": tmp_path / "x.npy", "memmap": np.load(tmp_path / "x.npy", mmap_mode="r"), "array": x,
               "tfrecord glob": str(tmp_path / "x-*.tfrecord"), "tfrecord list": shards,
               "dataset": tf.data.Dataset.from_tensor_slices(x),
               "dataset (x, y)": tf.data.Dataset.from_tensor_slices((x, np.arange(2000)))}
    for name, source in sources.items():
        assert source_info(source, input_dim=12)["input_dim"] == 12, name
        assert is_streaming(source) == (name != "array"), name
        e0, e1 = _epoch(source, input_dim=12, seed=3, epoch=0), _epoch(source, input_dim=12, seed=3, epoch=1)
        np.testing.assert_array_equal(_sorted_rows(e0), _sorted_rows(x), err_msg=name)
        assert not np.array_equal(e0, e1) and not np.array_equal(e0, x), name
        np.testing.assert_array_equal(_epoch(source, seed=3, epoch=1), e1, err_msg=name)
        assert [len(b) for b in batches(source, 64).as_numpy_iterator()] == [64] * 31 + [16], name
    # an already batched dataset passes through
    ready = tf.data.Dataset.from_tensor_slices(x).batch(100)
    np.testing.assert_array_equal(_epoch(ready), x)


def test_bad_sources_fail_before_reading(tmp_path):
    from sparse_ae_tf.streaming import batches, write_tfrecords
    np.save(tmp_path / "flat.npy", np.zeros(10, np.float32))
    np.save(tmp_path / "x.npy", np.zeros((10, 4), np.float32))
    keyed = write_tfrecords(np.zeros((3, 4)), tmp_path / "k", key="pixels")
    with pytest.raises(FileNotFoundError, match="missing.npy"): batches(tmp_path / "missing.npy")
    with pytest.raises(FileNotFoundError, match="matched no files"): batches(str(tmp_path / "none-*.tfrecord"))
    with pytest.raises(ValueError, match=r"got shape \(10,\)"): batches(tmp_path / "flat.npy")
    with pytest.raises(ValueError, match="input_dim=784"): batches(tmp_path / "x.npy", input_dim=784)
    with pytest.raises(ValueError, match="no feature key='x'"): batches(keyed)


def test_fit_trains_from_every_streaming_source(tmp_path):
    import keras
    import tensorflow as tf
    from sparse_ae_tf.models import SparseAutoencoder
    from sparse_ae_tf.streaming import write_tfrecords
    x = np.random.default_rng(0).uniform(0.1, 0.9, (2000, 12)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "val.npy", x[:300])
    shards = write_tfrecords(x, tmp_path / "x.tfrecord", shards=3)
    sources = {"npy": tmp_path / "x.npy", "memmap": np.load(tmp_path / "x.npy", mmap_mode="r"), "tfrecord": shards,
               "dataset": tf.data.Dataset.from_tensor_slices(x)}
    runs = {}
    for name, source in sources.items():
        keras.utils.set_random_seed(0)  # the same initial weights and shuffling seed for every source
        model = SparseAutoencoder(12, 6, weight_decay=1e-4)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        h = model.fit(source, epochs=3, batch_size=64, verbose=0, validation_data=tmp_path / "val.npy").history
        assert "stopped" not in h and h["loss"][-1] < 0.9 * h["loss"][0], (name, h["loss"])
        assert len(h["val_loss"]) == 3 and np.isfinite(h["val_loss"]).all(), name
        assert int(model.optimizer.iterations.numpy()) == 3 * -(-len(x) // 64), name  # every row, every epoch
        runs[name] = model.get_weights(), h
    # a path and a memory map of the same file are read alike: the same batches, so the same run
    for a, b in zip(runs["npy"][0], runs["memmap"][0]): np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs["npy"][1]["loss"], runs["memmap"][1]["loss"])
