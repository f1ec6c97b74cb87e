"""Training speed of sparse_ae_tf against plain Keras `fit`, PyTorch and the matmul ceiling, and time to objective
against SciPy's L-BFGS on UFLDL's natural-patch exercise; all side by side in one run.

    python benchmarks/suite.py [--only a,b,c] [--repeats 3]

(a) 784-196 sigmoid + KL, batch 256; (b) 784-4096, batch 1024, on real MNIST digits: samples per second of each
implementation (best of `repeats` epochs taken in turn, implementation after implementation, so that a change in the
machine's load hits all of them alike; a warm-up epoch first compiles each), its fraction of the matmul ceiling, its
ratio to plain Keras `fit` and its last epoch's mean loss (the same objective in every row but plain Keras fit, whose
reconstruction term is the mean squared error). The ceiling: a step costs 12*B*D*H flops (forward, backward, both
layers), so samples per second can never exceed rate / (12*D*H), with `rate` the float32 matmul rate of exactly those
six products, measured in this run (the bfloat16 rate is printed beside it).
(c) UFLDL's 64-25-64 on 10,000 whitened patches (rho=0.01, beta=3, lambda=1e-4): SciPy L-BFGS-B on a NumPy objective
and gradient for 400 iterations, against the package reaching within 1% of that objective."""
import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import numpy as np
import scipy.optimize
import tensorflow as tf

from sparse_ae_tf.data import load_mnist, natural_patches
from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.training import cpu_capabilities, fused_gradients, train, train_lbfgs

RHO, BETA, LAM = 0.1, 3.0, 3e-3
CONFIGS = {"a": dict(hidden=196, batch=256, examples=32768), "b": dict(hidden=4096, batch=1024, examples=8192)}


# ---------------------------------------------------------------------------------------------------- implementations
@keras.saving.register_keras_serializable(package="bench")
class UserKL(keras.layers.Layer):
    "The KL penalty as a Keras user writes it from the docs: a layer that calls `add_loss`."
    def call(self, h):
        rho_hat = keras.ops.mean(h, axis=0)
        self.add_loss(BETA * keras.ops.sum(RHO * keras.ops.log(RHO / rho_hat) + (1 - RHO) * keras.ops.log((1 - RHO) / (1 - rho_hat))))
        return h


def keras_user_fit(hidden, batch, jit_compile=False):
    "Plain Keras: Sequential model, L2 weight decay, the KL layer above, `fit(x, x)`."
    keras.utils.set_random_seed(0)
    decay = keras.regularizers.L2(LAM / 2)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(hidden, "sigmoid", kernel_regularizer=decay),
                              UserKL(), keras.layers.Dense(784, "sigmoid", kernel_regularizer=decay)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=jit_compile)
    return lambda x: model.fit(x, x, batch_size=batch, epochs=1, verbose=0).history["loss"][-1]


def package_fit(hidden, batch):
    "`SparseAutoencoder.compile()` + `fit(x)`."
    keras.utils.set_random_seed(0)
    model = SparseAutoencoder(784, hidden, rho=RHO, beta=BETA, weight_decay=LAM)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return lambda x: model.fit(x, batch_size=batch, epochs=1, verbose=0).history["loss"][-1]


def package_train(hidden, batch, **options):
    "`sparse_ae_tf.training.train` with `options`; each call returns the epoch's mean objective."
    keras.utils.set_random_seed(0)
    model, optimizer = SparseAutoencoder(784, hidden, rho=RHO, beta=BETA, weight_decay=LAM), keras.optimizers.Adam(1e-3)
    return lambda x: train(model, x, epochs=1, batch_size=batch, optimizer=optimizer, verbose=0, **options)["objective"][-1]


def torch_eager(hidden, batch):
    "The same model and optimiser in PyTorch, eager, float32."
    import torch
    torch.manual_seed(0)
    enc, dec = torch.nn.Linear(784, hidden), torch.nn.Linear(hidden, 784)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    def epoch(x):
        data, total = torch.from_numpy(x), 0.0
        for idx in torch.randperm(len(data)).split(batch):
            xb = data[idx]
            h = torch.sigmoid(enc(xb)); out = torch.sigmoid(dec(h))
            rho_hat = h.mean(0)
            kl = (RHO * torch.log(RHO / rho_hat) + (1 - RHO) * torch.log((1 - RHO) / (1 - rho_hat))).sum()
            loss = 0.5 * ((out - xb) ** 2).sum(1).mean() + BETA * kl + LAM / 2 * ((enc.weight ** 2).sum() + (dec.weight ** 2).sum())
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            total += loss.item() * len(idx)
        return total / len(data)
    return epoch


def matmul_probe(hidden, batch, dtype=tf.float32):
    "A function timing the six matrix products of one training step at their shapes (in `dtype`); it returns FLOP/s."
    def var(shape): return tf.Variable(tf.cast(tf.random.normal(shape), dtype))
    x, w1, w2, h, d3 = (var(s) for s in ((batch, 784), (784, hidden), (hidden, 784), (batch, hidden), (batch, 784)))
    @tf.function
    def six(n):
        acc = tf.zeros((), dtype)
        for i in tf.range(n):  # each product's inputs change with i, and each output is read whole
            s = tf.cast(i, dtype) * 1e-30
            for a, b, kw in ((x, w1, {}), (h, w2, {}), (d3, w2, dict(transpose_b=True)), (h, d3, dict(transpose_a=True)),
                             (x, h, dict(transpose_a=True)), (x, w1, {})):
                acc += tf.reduce_sum(tf.matmul(a + s, b, **kw))
        return acc
    n = max(4, int(2e10 / (12 * batch * 784 * hidden)))
    six(1).numpy()
    def rate():
        start = time.perf_counter(); six(n).numpy()
        return n * 12 * batch * 784 * hidden / (time.perf_counter() - start)
    return rate


def interleaved(runners, probes, x, repeats):
    "Best samples/s of each runner and best FLOP/s of each probe over `repeats` rounds that take them in turn."
    epochs = {label: make() for label, make in runners.items()}
    for run in epochs.values(): run(x)  # warm-up: tracing and compilation
    best, objective, flops = {label: float("inf") for label in epochs}, {}, {label: 0.0 for label in probes}
    for _ in range(repeats):
        for label, run in epochs.items():
            start = time.perf_counter(); objective[label] = run(x); best[label] = min(best[label], time.perf_counter() - start)
        for label, probe in probes.items(): flops[label] = max(flops[label], probe())
    return {label: len(x) / t for label, t in best.items()}, objective, flops


def throughput_table(name, hidden, batch, examples, repeats):
    "Print the throughput table of one configuration; return its rows."
    x = load_mnist()[0][0]
    x = np.concatenate([x] * -(-examples // len(x)))[:examples]
    runners = {
        "plain Keras fit (user KL layer)": lambda: keras_user_fit(hidden, batch),
        "plain Keras fit(jit_compile=True)": lambda: keras_user_fit(hidden, batch, True),
        "SparseAutoencoder.fit": lambda: package_fit(hidden, batch),
        "train(fused=False) (autodiff, XLA)": lambda: package_train(hidden, batch, fused=False),
        "train() default (fused, float32)": lambda: package_train(hidden, batch),
    }
    if cpu_capabilities()["bfloat16"]:  # elsewhere oneDNN emulates bfloat16, or (held to AVX2) aborts the process
        runners["train(precision='bfloat16')"] = lambda: package_train(hidden, batch, precision="bfloat16")
    try:
        import torch
        torch.set_num_threads(os.cpu_count())
        runners["PyTorch eager float32"] = lambda: torch_eager(hidden, batch)
    except ImportError: print("(PyTorch not installed: pip install -r benchmarks/requirements.txt)")
    probes = {"float32": matmul_probe(hidden, batch)}
    if cpu_capabilities()["bfloat16"]: probes["bfloat16"] = matmul_probe(hidden, batch, tf.bfloat16)
    rates, objective, rate = interleaved(runners, probes, x, repeats)
    flops, flops_bf16 = rate["float32"], rate.get("bfloat16", float("nan"))
    ceiling = flops / (12 * 784 * hidden)
    base = rates["plain Keras fit (user KL layer)"]
    print(f"\n({name}) 784-{hidden}, batch {batch}, {examples} MNIST digits, best of {repeats} rounds; matmul rate "
          f"float32 {flops / 1e9:.0f} GFLOP/s -> ceiling {ceiling:,.0f} samples/s (bfloat16 {flops_bf16 / 1e9:.0f} GFLOP/s "
          f"-> {flops_bf16 / (12 * 784 * hidden):,.0f})")
    print(f"{'implementation':40s} {'samples/s':>10s} {'of ceiling':>10s} {'x plain fit':>11s} {'last epoch loss':>16s}")
    for label, rate in rates.items():
        print(f"{label:40s} {rate:10,.0f} {rate / ceiling:10.2f} {rate / base:11.2f} {objective[label]:16.4f}")
    return rates, ceiling


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
    "Time to UFLDL's L-BFGS objective: SciPy on NumPy against the package's trainers."
    patches = natural_patches(10000, size=8, seed=0).astype("float64")
    rng = np.random.default_rng(0); r = np.sqrt(6 / (64 + 25 + 1))
    theta0 = np.concatenate([rng.uniform(-r, r, 2 * 64 * 25), np.zeros(25 + 64)])
    start = time.perf_counter()
    result = scipy.optimize.minimize(ufldl_numpy, theta0, args=(patches,), jac=True, method="L-BFGS-B",
                                     options={"maxiter": 400, "maxfun": 800})
    t_ref, j_ref = time.perf_counter() - start, result.fun
    target = 1.01 * j_ref
    print(f"\n(c) UFLDL 64-25-64 on 10,000 patches: SciPy L-BFGS-B (NumPy float64), 400 iterations: objective {j_ref:.4f} "
          f"in {t_ref:.2f} s; target {target:.4f} (within 1%)")
    rows = {"SciPy L-BFGS-B, NumPy": (t_ref, j_ref)}
    x32 = patches.astype("float32")
    def model():
        keras.utils.set_random_seed(0); m = SparseAutoencoder(64, 25, rho=0.01, beta=3.0, weight_decay=1e-4); m.build((None, 64)); return m
    # train_lbfgs: 400 iterations, as UFLDL
    m = model(); start = time.perf_counter(); h = train_lbfgs(m, x32, max_iter=400, verbose=0)
    rows["train_lbfgs (TF, XLA), 400 iterations"] = (time.perf_counter() - start, h["objective"][-1])
    # Adam with the fused step, checking the full-batch objective after each epoch until the target is reached
    for label, options in [("train() Adam, fused float32", {}), ("train() Adam, fused, no XLA", {"jit_compile": False})]:
        m = model(); opt = keras.optimizers.Adam(0.01); start = time.perf_counter(); j = float("inf"); epochs = 0
        while j > target and epochs < 300:
            train(m, x32, epochs=1, batch_size=500, optimizer=opt, seed=epochs, verbose=0, steps_per_call=20, **options)
            j = float(fused_gradients(m, tf.constant(x32))[0]); epochs += 1
        rows[f"{label}, {epochs} epochs"] = (time.perf_counter() - start, j)
    print(f"{'method':45s} {'seconds':>8s} {'objective':>10s} {'time / L-BFGS':>13s} {'reached':>8s}")
    for label, (t, j) in rows.items():
        print(f"{label:45s} {t:8.2f} {j:10.4f} {t / t_ref:13.2f} {str(j <= target):>8s}")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c", help="comma-separated configurations to run: a, b, c")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}, NumPy {np.__version__}")
    for name in args.only.split(","):
        if name in CONFIGS: throughput_table(name, repeats=args.repeats, **CONFIGS[name])
        elif name == "c": ufldl_table()


if __name__ == "__main__":
    main()
