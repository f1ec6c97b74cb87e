"""Training speed of the package's `fit` against the honest baselines, side by side in one run; and time to objective
against SciPy's L-BFGS on UFLDL's natural-patch exercise.

    python benchmarks/suite.py [--only a,b,v,c] [--repeats 3] [--epochs 3]

(a) 784-196 sigmoid + KL, batch 256, 32,768 MNIST digits; (b) 784-4096, batch 1024, 8,192 digits. Rows, samples per
second of a steady-state epoch (the median epoch after the first of each multi-epoch `fit`, timed by a callback), reported
as the median and the spread (min-max) over `--repeats` runs taken in turn, with the load average while they ran:
- `SparseAutoencoder.fit` with its default `compile()`, on TensorFlow;
- plain Keras `fit` of the same model written as a Keras user would (Sequential, L2 weight decay, a KL layer with
  `add_loss`), with Keras's defaults, and tuned: `jit_compile=True, steps_per_execution=32`;
- the same two on Keras's JAX backend, each in a process of its own (one backend per process);
- PyTorch 2.13 eager, float32 (if installed: `pip install -r benchmarks/requirements.txt`);
- the sgemm ceiling: a step needs five matrix products (two forward, three backward; no input gradient), 10*B*D*H
  flops, so no implementation exceeds rate / (10*D*H) samples/s, with `rate` the float32 matrix-product rate at
  exactly those shapes, measured in this run (every output read whole) with each kernel: TensorFlow's in a
  `tf.function`, TensorFlow's XLA, JAX's XLA. The ceiling is the best of them; "of TF ceiling" divides by the best of
  TensorFlow's two (issue 22's definition: five TensorFlow products of the step's shapes in a compiled loop).
Rounds take the implementations in turn, so that a change in the machine's load hits all of them alike. Beside the
table, the same ratios paired within each run: each run's rate over the TF ceiling measured in that run (its best
of 3 loops) and over that run's tuned fit, as the median and min-max over the runs; the first table divides a median
over the runs by the best ceiling of all of them.
(v) every model's `fit` with its default `compile()`, on both backends: the variants at the sizes of their chapters.
(c) UFLDL's 64-25-64 on 10,000 whitened patches (rho=0.01, beta=3, lambda=1e-4): SciPy L-BFGS-B on a NumPy float64
objective and gradient for 400 iterations, against `train_lbfgs` (its objective in float64 too)."""
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
import numpy as np

RHO, BETA, LAM = 0.1, 3.0, 3e-3
CONFIGS = {"a": dict(hidden=196, batch=256, examples=32768), "b": dict(hidden=4096, batch=1024, examples=8192)}
ROOT = Path(__file__).resolve().parents[1]


def digits(n):
    "`n` rows of the bundled MNIST digits (repeated as needed)."
    from sparse_ae_tf.data import load_mnist
    x = load_mnist()[0][0]
    return np.concatenate([x] * -(-n // len(x)))[:n]


class EpochTimer(keras.callbacks.Callback):
    "Seconds of each epoch."
    def __init__(self): super().__init__(); self.seconds = []
    def on_epoch_begin(self, epoch, logs=None): self.start = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): self.seconds.append(time.perf_counter() - self.start)


def steady_rate(model, x, y, batch, epochs):
    "Samples per second of the median epoch after the first (which compiles), and the last epoch's loss."
    timer = EpochTimer()
    loss = model.fit(x, y, batch_size=batch, epochs=epochs + 1, verbose=0, callbacks=[timer]).history["loss"][-1]
    return len(x) / float(np.median(timer.seconds[1:])), loss


def load()->str:
    "The machine's load average over 1, 5 and 15 minutes."
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def summary(rates)->tuple:
    "Median and (min, max) of one path's samples/s over the runs."
    return float(np.median(rates)), float(min(rates)), float(max(rates))


# ---------------------------------------------------------------------------------------------------- implementations
@keras.saving.register_keras_serializable(package="bench")
class UserKL(keras.layers.Layer):
    "The KL penalty as a Keras user writes it from the docs: a layer that calls `add_loss`."
    def call(self, h):
        rho_hat = keras.ops.mean(h, axis=0)
        self.add_loss(BETA * keras.ops.sum(RHO * keras.ops.log(RHO / rho_hat) + (1 - RHO) * keras.ops.log((1 - RHO) / (1 - rho_hat))))
        return h


def plain_keras(hidden, tuned):
    "Plain Keras: Sequential model, L2 weight decay, the KL layer above; Keras's defaults or the tuned compile."
    keras.utils.set_random_seed(0)
    decay = keras.regularizers.L2(LAM / 2)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(hidden, "sigmoid", kernel_regularizer=decay),
                              UserKL(), keras.layers.Dense(784, "sigmoid", kernel_regularizer=decay)])
    options = dict(jit_compile=True, steps_per_execution=32) if tuned else {}
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", **options)
    return model


def package_model(hidden):
    "`SparseAutoencoder` with its default `compile()`."
    from sparse_ae_tf.models import SparseAutoencoder
    keras.utils.set_random_seed(0)
    model = SparseAutoencoder(784, hidden, rho=RHO, beta=BETA, weight_decay=LAM)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def keras_rows(hidden, batch, x, epochs):
    "This backend's rows: the package's fit, plain Keras fit, tuned plain Keras fit; `{label: (samples/s, loss)}`."
    backend = keras.backend.backend()
    return {f"SparseAutoencoder.fit, default compile ({backend})": steady_rate(package_model(hidden), x, None, batch, epochs),
            f"plain Keras fit, defaults ({backend})": steady_rate(plain_keras(hidden, False), x, x, batch, epochs),
            f"plain Keras fit, jit + 32 steps/execution ({backend})": steady_rate(plain_keras(hidden, True), x, x, batch, epochs)}


def torch_rows(hidden, batch, x, epochs):
    "The same model and optimiser in PyTorch, eager, float32."
    try: import torch
    except ImportError: return {}
    torch.manual_seed(0); torch.set_num_threads(os.cpu_count())
    enc, dec = torch.nn.Linear(784, hidden), torch.nn.Linear(hidden, 784)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)
    data, seconds = torch.from_numpy(x), []
    for _ in range(epochs + 1):
        start, total = time.perf_counter(), 0.0
        for idx in torch.randperm(len(data)).split(batch):
            xb = data[idx]
            h = torch.sigmoid(enc(xb)); out = torch.sigmoid(dec(h))
            rho_hat = h.mean(0)
            kl = (RHO * torch.log(RHO / rho_hat) + (1 - RHO) * torch.log((1 - RHO) / (1 - rho_hat))).sum()
            loss = 0.5 * ((out - xb) ** 2).sum(1).mean() + BETA * kl + LAM / 2 * ((enc.weight ** 2).sum() + (dec.weight ** 2).sum())
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            total += loss.item() * len(idx)
        seconds.append(time.perf_counter() - start)
    return {"PyTorch 2.13 eager, float32": (len(x) / min(seconds[1:]), total / len(x))}


def step_products(hidden, batch)->list:
    "The five products of a step, (shape of a, shape of b, transpose a, transpose b): two forward, three backward."
    return [((batch, 784), (784, hidden), False, False), ((batch, hidden), (hidden, 784), False, False),
            ((batch, 784), (hidden, 784), False, True), ((batch, 784), (batch, hidden), True, False),
            ((batch, hidden), (batch, 784), True, False)]


def matmul_rate(hidden, batch)->dict:
    "FLOP/s of the step's five float32 products at their shapes (inputs change each call, outputs read whole), per kernel of this backend."
    shapes = step_products(hidden, batch)
    flops, rng = 10 * batch * 784 * hidden, np.random.default_rng(0)
    mats = [(rng.standard_normal(a, dtype=np.float32), rng.standard_normal(b, dtype=np.float32)) for a, b, _, _ in shapes]
    n = max(3, int(3e10 / flops))
    if keras.backend.backend() == "jax":
        import jax
        def five(mats, s):
            return sum((((a + s).T if ta else a + s) @ (b.T if tb else b)).sum() for (a, b), (_, _, ta, tb) in zip(mats, shapes))
        runs, mats = {"JAX (XLA)": jax.jit(five)}, [tuple(map(jax.numpy.asarray, m)) for m in mats]
        block = lambda r: r.block_until_ready()
    else:
        import tensorflow as tf
        mats = [tuple(map(tf.constant, m)) for m in mats]
        def five(mats, s):
            return tf.add_n([tf.reduce_sum(tf.matmul(a + s, b, transpose_a=ta, transpose_b=tb)) for (a, b), (_, _, ta, tb) in zip(mats, shapes)])
        runs = {"TF (tf.function)": tf.function(five), "TF (XLA)": tf.function(five, jit_compile=True)}
        block = lambda r: r.numpy()
    rates = {}
    for kernel, run in runs.items():
        block(run(mats, 0.0))
        best = 0.0
        for _ in range(3):
            start = time.perf_counter()
            for i in range(n): r = run(mats, np.float32(i * 1e-30))
            block(r)
            best = max(best, n * flops / (time.perf_counter() - start))
        rates[kernel] = best
    return rates


def in_jax_process(task, *args):
    "Run `task(*args)` of this script on Keras's JAX backend in a fresh process; returns what it prints as JSON."
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, __file__, "--task", task, "--args", json.dumps(args)], env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0: raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput_table(name, hidden, batch, examples, repeats, epochs):
    "Print the throughput table of one configuration (median and spread of `repeats` alternating runs); return its rows and ceiling."
    x, start_load = digits(examples), load()
    runs, loss, rates, round_tf_rates = {}, {}, {}, []
    for _ in range(repeats):
        rows = keras_rows(hidden, batch, x, epochs)
        rows.update({k: tuple(v) for k, v in in_jax_process("keras_rows", hidden, batch, examples, epochs).items()})
        rows.update(torch_rows(hidden, batch, x, epochs))
        for label, (r, l) in rows.items(): runs.setdefault(label, []).append(r); loss[label] = l
        round_rates = {**matmul_rate(hidden, batch), **in_jax_process("matmul_rate", hidden, batch)}
        for kernel, r in round_rates.items(): rates[kernel] = max(rates.get(kernel, 0.0), r)
        round_tf_rates.append(max(r for k, r in round_rates.items() if k.startswith("TF")))
    rate, tf_rate = max(rates.values()), max(r for k, r in rates.items() if k.startswith("TF"))
    ceiling, tf_ceiling = rate / (10 * 784 * hidden), tf_rate / (10 * 784 * hidden)
    med = {label: summary(r)[0] for label, r in runs.items()}
    tuned = lambda label: med.get(f"plain Keras fit, jit + 32 steps/execution ({label.rsplit('(', 1)[-1]}", math.nan)
    print(f"\n({name}) 784-{hidden}, batch {batch}, {examples} MNIST digits; each run one process per backend, the median "
          f"of its {epochs} epochs after the first; {repeats} runs taken in turn; load average {start_load} -> {load()}; "
          f"float32 matmul rate (best of {repeats} runs) " + ", ".join(f"{k} {r / 1e9:.0f}" for k, r in rates.items())
          + f" GFLOP/s -> ceiling {ceiling:,.0f} samples/s (the best kernel), {tf_ceiling:,.0f} (TensorFlow's best kernel)")
    print(f"{'implementation':58s} {'median/s':>9s} {'min-max':>15s} {'of ceiling':>10s} {'of TF ceiling':>13s} {'x tuned, same backend':>21s} {'last loss':>10s}")
    for label, r in runs.items():
        m, lo, hi = summary(r)
        print(f"{label:58s} {m:9,.0f} {f'{lo:,.0f}-{hi:,.0f}':>15s} {m / ceiling:10.2f} {m / tf_ceiling:13.2f} {m / tuned(label):21.2f} {loss[label]:10.4f}")
    paired_table(runs, round_tf_rates, hidden)
    return runs, ceiling


def paired_table(runs:dict, round_tf_rates:list, hidden:int):
    "Ratios taken within each run (against that run's TF ceiling and that run's tuned fit of the same backend): median and min-max."
    per_sample = 10 * 784 * hidden
    def spread(ratios): m, lo, hi = summary(ratios); return f"{m:.2f} ({lo:.2f}-{hi:.2f})"
    print(f"paired within each run (median, min-max over the {len(round_tf_rates)} runs): "
          "each run's rate over the TF ceiling measured in that run, and over the tuned fit of that run")
    print(f"{'implementation':58s} {'of TF ceiling':>19s} {'x tuned, same backend':>22s}")
    for label, r in runs.items():
        tuned = runs.get(f"plain Keras fit, jit + 32 steps/execution ({label.rsplit('(', 1)[-1]}")
        of_ceiling = [rate * per_sample / tf_rate for rate, tf_rate in zip(r, round_tf_rates)]
        x_tuned = spread([a / b for a, b in zip(r, tuned)]) if tuned else "-"
        print(f"{label:58s} {spread(of_ceiling):>19s} {x_tuned:>22s}")


# ------------------------------------------------------------------------------------------------------- (v) variants
def variant_models():
    "Every model of the package at the size of its chapter, with the data and batch size it trains on."
    from sparse_ae_tf.models import SparseAutoencoder
    from sparse_ae_tf.variants import ContractiveAutoencoder, ConvSparseAutoencoder, KSparseAutoencoder, StackedSparseAutoencoder
    from sparse_ae_tf.vae import VariationalAutoencoder
    return {"SparseAutoencoder 784-196 (KL)": (lambda: SparseAutoencoder(784, 196), 256, False),
            "SparseAutoencoder 784-196, masking noise": (lambda: SparseAutoencoder(784, 196, noise="masking", noise_level=0.3), 256, False),
            "SparseAutoencoder 784-196, Gaussian noise": (lambda: SparseAutoencoder(784, 196, noise="gaussian", noise_level=0.2), 256, False),
            "SparseAutoencoder 784-196, salt-and-pepper": (lambda: SparseAutoencoder(784, 196, noise="salt_pepper", noise_level=0.3), 256, False),
            "ConvSparseAutoencoder 28x28, 16 filters": (lambda: ConvSparseAutoencoder((28, 28, 1), filters=(16,)), 128, False),
            "ContractiveAutoencoder 784-196": (lambda: ContractiveAutoencoder(784, 196), 256, False),
            "KSparseAutoencoder 784-256, k=16": (lambda: KSparseAutoencoder(784, 256, k=16), 256, False),
            "KSparseAutoencoder 784-256, k=16, BatchTopK": (lambda: KSparseAutoencoder(784, 256, k=16, activation="batchtopk"), 256, False),
            "KSparseAutoencoder 784-256, k=16, JumpReLU": (lambda: KSparseAutoencoder(784, 256, k=16, activation="jumprelu"), 256, False),
            "StackedSparseAutoencoder 784-200-200-10": (lambda: StackedSparseAutoencoder(784, (200, 200), 10), 256, True),
            "VariationalAutoencoder 784-256-2": (lambda: VariationalAutoencoder(784, 2), 128, False)}


def variant_rows(examples, epochs):
    "`{model: (samples/s, loss)}` of every model's `fit` with its default `compile()`, on this backend."
    from sparse_ae_tf.data import load_mnist
    (x, y), _ = load_mnist()
    x, y = np.concatenate([x] * -(-examples // len(x)))[:examples], np.concatenate([y] * -(-examples // len(y)))[:examples]
    rows = {}
    for label, (make, batch, labelled) in variant_models().items():
        keras.utils.set_random_seed(0)
        model = make(); model.compile()
        rows[label] = steady_rate(model, x, y if labelled else None, batch, epochs)
    return rows


def variants_table(repeats, epochs, examples=16384):
    "Print every model's samples/s on both backends: median and spread of `repeats` alternating runs, and TF / JAX."
    runs, start_load = {}, load()
    for _ in range(repeats):
        for backend, rows in (("tensorflow", variant_rows(examples, epochs)), ("jax", in_jax_process("variant_rows", examples, epochs))):
            for label, (r, _) in rows.items(): runs.setdefault((label, backend), []).append(r)
    print(f"\n(v) every model's fit, default compile, {examples} MNIST digits; median (min-max) of {repeats} runs taken in "
          f"turn, each the median of {epochs} epochs after the first; load average {start_load} -> {load()}")
    print(f"{'model':46s} {'TensorFlow':>22s} {'JAX':>22s} {'TF / JAX':>9s}")
    for label in variant_models():
        (tm, tlo, thi), (jm, jlo, jhi) = summary(runs[(label, "tensorflow")]), summary(runs[(label, "jax")])
        print(f"{label:46s} {f'{tm:,.0f} ({tlo:,.0f}-{thi:,.0f})':>22s} {f'{jm:,.0f} ({jlo:,.0f}-{jhi:,.0f})':>22s} {tm / jm:9.2f}")
    return runs


# ---------------------------------------------------------------------------------------------------------- (c) UFLDL
def ufldl_numpy(theta, x, hidden=25, rho=0.01, beta=3.0, lam=1e-4):
    "UFLDL's sparseAutoencoderCost in NumPy (float64): objective and gradient."
    d = x.shape[1]; m = len(x)
    W1 = theta[:d * hidden].reshape(d, hidden); W2 = theta[d * hidden:2 * d * hidden].reshape(hidden, d)
    b1 = theta[2 * d * hidden:2 * d * hidden + hidden]; b2 = theta[2 * d * hidden + hidden:]
    a2 = 1 / (1 + np.exp(-(x @ W1 + b1))); a3 = 1 / (1 + np.exp(-(a2 @ W2 + b2)))
    rho_hat = a2.mean(0)
    J = 0.5 * ((a3 - x) ** 2).sum() / m + lam / 2 * ((W1 ** 2).sum() + (W2 ** 2).sum()) \
        + beta * (rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))).sum()
    d3 = (a3 - x) * a3 * (1 - a3)
    d2 = (d3 @ W2.T + beta * (-rho / rho_hat + (1 - rho) / (1 - rho_hat))) * a2 * (1 - a2)
    grad = np.concatenate([(x.T @ d2 / m + lam * W1).ravel(), (a2.T @ d3 / m + lam * W2).ravel(), d2.mean(0), d3.mean(0)])
    return J, grad


def ufldl_table():
    "Time to UFLDL's L-BFGS objective: SciPy on NumPy against `train_lbfgs`."
    import scipy.optimize
    from sparse_ae_tf.data import natural_patches
    from sparse_ae_tf.models import SparseAutoencoder
    from sparse_ae_tf.training import train_lbfgs
    patches = natural_patches(10000, size=8, seed=0).astype("float64")
    rng = np.random.default_rng(0); r = np.sqrt(6 / (64 + 25 + 1))
    theta0 = np.concatenate([rng.uniform(-r, r, 2 * 64 * 25), np.zeros(25 + 64)])
    start = time.perf_counter()
    result = scipy.optimize.minimize(ufldl_numpy, theta0, args=(patches,), jac=True, method="L-BFGS-B",
                                     options={"maxiter": 400, "maxfun": 800})
    t_ref, j_ref = time.perf_counter() - start, result.fun
    keras.utils.set_random_seed(0)
    model = SparseAutoencoder(64, 25, rho=0.01, beta=3.0, weight_decay=1e-4)
    start = time.perf_counter(); h = train_lbfgs(model, patches.astype("float32"), max_iter=400, verbose=0)
    rows = {"SciPy L-BFGS-B, NumPy float64": (t_ref, j_ref, result.nit),
            "train_lbfgs (TF, XLA, float64 objective)": (time.perf_counter() - start, h["objective"][-1], len(h["objective"]))}
    print(f"\n(c) UFLDL 64-25-64 on 10,000 patches, 400 L-BFGS iterations; within 1% of SciPy: {1.01 * j_ref:.4f}")
    print(f"{'method':45s} {'seconds':>8s} {'objective':>10s} {'iterations':>10s} {'time / SciPy':>12s} {'within 1%':>9s}")
    for label, (t, j, it) in rows.items():
        print(f"{label:45s} {t:8.2f} {j:10.4f} {it:10d} {t / t_ref:12.2f} {str(j <= 1.01 * j_ref):>9s}")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,v,c", help="comma-separated tables: a, b, v, c")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per fit (after one that compiles)")
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:  # a JAX-backend child process
        task = {"keras_rows": lambda h, b, n, e: keras_rows(h, b, digits(n), e), "matmul_rate": matmul_rate,
                "variant_rows": variant_rows}[args.task]
        print(json.dumps(task(*json.loads(args.args)))); return
    from sparse_ae_tf.base import cpu_capabilities
    import tensorflow as tf
    caps = {k: v for k, v in os.environ.items() if k in ("ONEDNN_MAX_CPU_ISA", "XLA_FLAGS")}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {cpu_capabilities()} {caps}; "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}, NumPy {np.__version__}")
    for name in args.only.split(","):
        if name in CONFIGS: throughput_table(name, repeats=args.repeats, epochs=args.epochs, **CONFIGS[name])
        elif name == "v": variants_table(args.repeats, args.epochs)
        elif name == "c": ufldl_table()


if __name__ == "__main__":
    main()
