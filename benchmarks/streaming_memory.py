"""Peak memory of training on data larger than memory: one epoch of a 784-196 sparse autoencoder over a large float32
`.npy` file read through `sparse_ae_tf.streaming.batches`, against loading the same array into memory.

    python benchmarks/streaming_memory.py                      # a 4 GB .npy (1.3M x 784) and 4 GB of TFRecords
    python benchmarks/streaming_memory.py --gigabytes 1 --tfrecord-gigabytes 0.5 --only npy,memory

The data (MNIST digits of the package, drawn at random, plus a little uniform noise) is written to a temporary folder
(`--dir`, default the system's), which is removed at the end. Each measurement runs in a fresh child process, which
imports TensorFlow, builds the model and a compiled step (`fused_gradients` + Adam in one XLA-compiled `tf.function`),
runs one warm-up step on a small array (its peak RSS then is the "baseline": TensorFlow, the model and the compiled
step), then trains one epoch and reports its own peak RSS (`getrusage(RUSAGE_SELF).ru_maxrss`, the kernel's
high-water mark, so no sampling can miss a peak). Modes:

- `npy`: the `.npy` path, streamed (memory-mapped, chunks copied out, their pages released).
- `naive`: the control: the same memory map read batch by batch in file order with no page release, which is what a
  plain `np.load(path, mmap_mode="r")` loop does; its RSS grows with the file.
- `memory`: `np.load(path)` reads the whole array into memory; the epoch then reads batches from it.
- `tfrecord`: the first `--tfrecord-gigabytes` of the same rows, written with `write_tfrecords` to 8 shards.

With `--train`, each epoch is the package's `model.fit(source, epochs=1)` instead of the plain loop (its warm-up: a
`fit` epoch on three batches of the source, or on a small array for `memory`); `memory` then passes the loaded array
to `fit`, which copies it to the device once (a TensorFlow variable).

The file is read from the page cache (it was just written): the rates are those of a warm cache, not of a cold disk.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

INPUT_DIM, HIDDEN = 784, 196
MODES = ("npy", "naive", "memory", "tfrecord")


def _peak_mb():
    "This process's peak RSS so far, in MB (ru_maxrss is in KiB on Linux, bytes on macOS)."
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _naive_batches(path, batch_size):
    "The control: batches sliced from one memory map in file order, pages never released."
    import tensorflow as tf
    mm = np.load(path, mmap_mode="r")
    return tf.data.Dataset.from_generator(lambda: (mm[i:i + batch_size] for i in range(0, len(mm), batch_size)),
                                          output_signature=tf.TensorSpec((None, mm.shape[1]), tf.float32)).prefetch(2)


def child(mode, source, batch_size, rows, use_train):
    "Train one epoch on `source` in this process; print a JSON line with peak RSS and timings."
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    from sparse_ae_tf.models import SparseAutoencoder
    from sparse_ae_tf.streaming import batches
    from sparse_ae_tf.models import fused_gradients

    keras.utils.set_random_seed(0)
    model = SparseAutoencoder(INPUT_DIM, HIDDEN, rho=0.1, beta=3.0, weight_decay=3e-3)
    model.build((None, INPUT_DIM))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    optimizer, (enc, dec) = model.optimizer, (model.encoder_dense, model.decoder_dense)
    optimizer.build(model.trainable_variables)

    @tf.function(jit_compile=True, reduce_retracing=True)
    def step(xb):
        loss, parts, output, grads = fused_gradients(model, xb)
        optimizer.apply(grads, [enc.kernel, enc.bias, dec.kernel, dec.bias])
        return loss

    def epoch(model, source, batch_size):
        "One epoch over `source` by a plain loop over `batches`; returns (examples seen, last loss)."
        data = _naive_batches(source, batch_size) if mode == "naive" else batches(source, batch_size, input_dim=INPUT_DIM)
        seen, loss = 0, None
        for xb in data:
            loss = step(xb)
            seen += int(xb.shape[0])
        return seen, float(loss)

    def package_train(model, source, batch_size):
        "One epoch over `source` by the package's `fit`; returns (examples seen, objective)."
        if mode == "naive": source = _naive_batches(source, batch_size)
        history = model.fit(source, epochs=1, batch_size=None if mode == "naive" else batch_size, verbose=0).history
        return rows, history["loss"][-1]

    if not use_train: step(tf.zeros((batch_size, INPUT_DIM)))
    else:  # compile fit's step for this kind of data: in memory, or a dataset of batches
        if mode == "memory": model.fit(np.zeros((2 * batch_size, INPUT_DIM), np.float32), epochs=1, batch_size=batch_size, verbose=0)
        else: model.fit((_naive_batches(source, batch_size) if mode == "naive" else batches(source, batch_size)).take(3), epochs=1, verbose=0)
    baseline, load_seconds = _peak_mb(), 0.0
    if mode == "memory":
        start = time.perf_counter()
        source = np.load(source)
        load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    seen, loss = (package_train if use_train else epoch)(model, source, batch_size)
    seconds = time.perf_counter() - start
    print(json.dumps(dict(mode=mode, baseline_mb=baseline, peak_mb=_peak_mb(), seconds=seconds, load_seconds=load_seconds,
                          examples=seen, loss=loss)))


def write_npy(path, rows, seed=0, chunk=65536):
    "A float32 (rows, 784) .npy of random MNIST digits plus uniform noise, written chunk by chunk."
    from sparse_ae_tf.data import load_mnist
    (digits, _), _ = load_mnist(test_size=0.1)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (rows, INPUT_DIM)})
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            block = digits[rng.integers(len(digits), size=n)] + rng.random((n, INPUT_DIM), dtype=np.float32) * np.float32(0.05)
            f.write(np.minimum(block, 1, out=block).tobytes())


def run_child(mode, source, batch_size, rows, use_train):
    "Run `child` in a fresh interpreter; returns its JSON report."
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(source), str(batch_size), str(rows), str(int(use_train))],
                          capture_output=True, text=True)
    if proc.returncode != 0: raise RuntimeError(f"{mode} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=4.0, help="size of the .npy file (default 4: 1.28M x 784 float32)")
    parser.add_argument("--tfrecord-gigabytes", type=float, default=4.0, help="rows written to TFRecords, in GB of float32 (0: skip)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--only", default=",".join(MODES), help=f"comma-separated modes among {','.join(MODES)}")
    parser.add_argument("--dir", default=None, help="where to write the temporary files (default: the system's temp folder)")
    parser.add_argument("--train", action="store_true", help="train with sparse_ae_tf.training.train instead of the plain loop")
    args = parser.parse_args()
    modes = [m for m in args.only.split(",") if m]
    if unknown := set(modes) - set(MODES): parser.error(f"unknown modes {sorted(unknown)}")
    rows = int(args.gigabytes * 1e9 / (4 * INPUT_DIM))
    folder = Path(tempfile.mkdtemp(prefix="streaming_memory_", dir=args.dir))
    try:
        npy = folder / "data.npy"
        start = time.perf_counter()
        write_npy(npy, rows)
        print(f"wrote {npy.stat().st_size / 1e9:.2f} GB ({rows:,} x {INPUT_DIM} float32) in {time.perf_counter() - start:.0f} s", flush=True)
        sources, counts = {m: npy for m in ("npy", "naive", "memory")}, dict(npy=rows, naive=rows, memory=rows)
        if "tfrecord" in modes and args.tfrecord_gigabytes > 0:
            from sparse_ae_tf.streaming import write_tfrecords
            tf_rows = min(rows, int(args.tfrecord_gigabytes * 1e9 / (4 * INPUT_DIM)))
            start = time.perf_counter()
            shards = write_tfrecords(np.load(npy, mmap_mode="r")[:tf_rows], folder / "data.tfrecord", shards=8)
            size = sum(p.stat().st_size for p in shards)
            print(f"wrote {size / 1e9:.2f} GB of TFRecords ({tf_rows:,} rows, 8 shards) in {time.perf_counter() - start:.0f} s", flush=True)
            sources["tfrecord"], counts["tfrecord"] = str(folder / "data-*.tfrecord"), tf_rows
        results = []
        for mode in modes:
            if mode not in sources: continue
            report = run_child(mode, sources[mode], args.batch_size, counts[mode], args.train)
            paths = [Path(p) for p in sorted(map(str, folder.glob("data-*.tfrecord")))] if mode == "tfrecord" else [npy]
            report["file_gb"] = sum(p.stat().st_size for p in paths) / 1e9
            results.append(report)
            print(f"  {mode}: done in {report['seconds']:.0f} s", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    loop = "sparse_ae_tf.training.train" if args.train else "a plain loop over batches(), fused_gradients + Adam in one XLA step"
    print(f"\n784-{HIDDEN} sigmoid + KL, Adam, batch {args.batch_size}, one epoch per mode by {loop}, each in a fresh "
          f"process ({os.cpu_count()} CPUs)\n")
    print("| source | file (GB) | baseline RSS (MB) | peak RSS (MB) | peak - baseline (MB) | samples/s | load (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    names = {"npy": "`.npy` path, streamed", "naive": "memory map, no page release", "memory": "`np.load` into memory",
             "tfrecord": "TFRecords (8 shards), streamed"}
    for r in results:
        print(f"| {names[r['mode']]} | {r['file_gb']:.2f} | {r['baseline_mb']:.0f} | {r['peak_mb']:.0f} | "
              f"{r['peak_mb'] - r['baseline_mb']:.0f} | {r['examples'] / r['seconds']:,.0f} | {r['load_seconds']:.1f} |")


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--child": child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1")
    else: main()
