"""Samples per second of Keras `fit` against the package's compiled loop (`sparse_ae_tf.training.train`), side by side
in one process, on the same model: 784-H sigmoid + KL (add_loss), Adam, float32.

    python benchmarks/training_speed.py [--hidden 196] [--batch 256] [--repeats 3]

Prints one line per implementation: the best of `repeats` timed runs (after a warm-up run that compiles), and the
ratio to plain `fit`. Machines are shared and noisy: read the ratios, not the absolute figures."""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import numpy as np

from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.training import train


def _model(hidden):
    keras.utils.set_random_seed(0)
    model = SparseAutoencoder(784, hidden, rho=0.1, beta=3.0, weight_decay=3e-3)
    model.build((None, 784))
    return model


def fit_runner(hidden, batch, jit_compile):
    "A function that runs one epoch of Keras `fit` on `x`."
    model = _model(hidden)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    return lambda x: model.fit(x, batch_size=batch, epochs=1, shuffle=True, verbose=0)


def loop_runner(hidden, batch, jit_compile, steps_per_call):
    "A function that runs one epoch of the compiled loop on `x`."
    model, optimizer = _model(hidden), keras.optimizers.Adam(1e-3)
    return lambda x: train(model, x, epochs=1, batch_size=batch, optimizer=optimizer, jit_compile=jit_compile,
                           steps_per_call=steps_per_call, verbose=0)


def samples_per_second(run, x, repeats):
    "Best throughput of `repeats` timed epochs after one warm-up epoch."
    run(x)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter(); run(x); best = min(best, time.perf_counter() - start)
    return len(x) / best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=196)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--examples", type=int, default=32768)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    x = np.random.default_rng(0).uniform(0, 1, (args.examples, 784)).astype("float32")
    runners = {
        "keras fit": fit_runner(args.hidden, args.batch, False),
        "keras fit(jit_compile=True)": fit_runner(args.hidden, args.batch, True),
        "train(jit_compile=False, steps_per_call=1)": loop_runner(args.hidden, args.batch, False, 1),
        "train(jit_compile=True, steps_per_call=1)": loop_runner(args.hidden, args.batch, True, 1),
        "train() defaults (XLA, steps_per_call=8)": loop_runner(args.hidden, args.batch, True, 8),
    }
    rates = {name: samples_per_second(run, x, args.repeats) for name, run in runners.items()}
    base = rates["keras fit"]
    print(f"784-{args.hidden}, batch {args.batch}, {args.examples} examples, best of {args.repeats}")
    for name, rate in rates.items(): print(f"{name:45s} {rate:10,.0f} samples/s  {rate / base:5.2f}x fit")


if __name__ == "__main__":
    main()
