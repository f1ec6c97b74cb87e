"""The package's SparseAutoencoder trained on Keras's JAX backend (a GPU without TensorFlow), side by side in one run.

    KERAS_BACKEND=jax python benchmarks/gpu_jax.py [--input 768 --hidden 16384 --batch 4096 --steps 50]

Needs keras, jax (with CUDA for a GPU), numpy and fastcore; not TensorFlow (`sparse_ae_tf.models` and the model base,
`.base` with `.defaults`, `.steps` and `.feeds`, import only Keras on this backend). Sigmoid + KL (rho=0.1, beta=3,
lambda=3e-3), Adam. Rows, each a measured steady state after a compiling warm-up:
- the package's `model.fit` on a NumPy array, with its default `compile()` (the array is put on the device once and
  the guarded step gathers its batches there), in float32 and with the `mixed_bfloat16` policy: the rows a user gets;
- reference loops: a `jax.jit` `lax.scan` over `model.stateless_call` + `jax.grad` + `optimizer.stateless_apply`
  (autodiff through the model, no guard), and the same with the explicit gradient (UFLDL's equations, as
  `sparse_ae_tf.models.fused_gradients`) in float32 and with bfloat16 matrix products (float32 accumulation).
FLOP/s count the five matrix products a step needs, 10*B*D*H, as the CPU suite does (12*B*D*H, which counts the
input gradient too, gives 1.2x these figures). The target for the package's `fit` is 400 TFLOP/s at 768-16384, batch
4096, bfloat16.
"""
import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import jax.numpy as jnp
import keras
import numpy as np

from sparse_ae_tf.models import SparseAutoencoder

RHO, BETA, LAM = 0.1, 3.0, 3e-3


def make_model(d, h, dtype="float32"):
    "The package's model with Adam, built and compiled."
    keras.utils.set_random_seed(0)
    model = SparseAutoencoder(d, h, rho=RHO, beta=BETA, weight_decay=LAM, dtype=dtype)
    model.build((None, d)); model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.build(model.trainable_variables)
    return model


def explicit_grads(params, x, dtype):
    "Objective and gradients of (W1, b1, W2, b2) by explicit backpropagation, matrix products in `dtype`."
    W1, b1, W2, b2 = params
    def mm(a, b): return jnp.dot(a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)
    m = x.shape[0]
    a2 = jax.nn.sigmoid(mm(x, W1) + b1)
    a3 = jax.nn.sigmoid(mm(a2, W2) + b2)
    diff = a3 - x
    rho_hat = a2.mean(0)
    kl = jnp.sum(RHO * jnp.log(RHO / rho_hat) + (1 - RHO) * jnp.log((1 - RHO) / (1 - rho_hat)))
    loss = 0.5 * jnp.sum(diff * diff) / m + BETA * kl + 0.5 * LAM * (jnp.sum(W1 * W1) + jnp.sum(W2 * W2))
    d3 = diff / m * a3 * (1 - a3)
    d2 = (mm(d3, W2.T) + BETA * (-RHO / rho_hat + (1 - RHO) / (1 - rho_hat)) / m) * a2 * (1 - a2)
    return loss, [mm(x.T, d2) + LAM * W1, d2.sum(0), mm(a2.T, d3) + LAM * W2, d3.sum(0)]


def scan_trainer(model, gradient):
    "A jitted `(state, batches) -> (state, losses)` running one Adam step per batch with `gradient(trainable, x)`."
    optimizer = model.optimizer
    def step(state, x):
        trainable, opt_vars = state
        loss, grads = gradient(trainable, x)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, opt_vars), loss
    @jax.jit
    def run(state, batches): return jax.lax.scan(step, state, batches)
    return run


def autodiff_gradient(model):
    "`gradient(trainable, x)` by `jax.value_and_grad` through `model.stateless_call` and the model's own objective."
    non_trainable = [v.value for v in model.non_trainable_variables]
    def loss_fn(trainable, x):
        y, _, losses = model.stateless_call(trainable, non_trainable, x, training=True, return_losses=True)
        return 0.5 * jnp.mean(jnp.sum((y - x) ** 2, axis=1)) + sum(losses)
    return jax.value_and_grad(loss_fn)


def explicit_gradient(model, dtype):
    "`gradient(trainable, x)` by `explicit_grads`, in the model's own variable order."
    order = [next(i for i, v in enumerate(model.trainable_variables) if v is w)
             for w in (model.encoder_dense.kernel, model.encoder_dense.bias, model.decoder_dense.kernel, model.decoder_dense.bias)]
    def gradient(trainable, x):
        loss, grads = explicit_grads([trainable[i] for i in order], x, dtype)
        by_position = dict(zip(order, grads))
        return loss, [by_position[i] for i in range(len(trainable))]
    return gradient


def time_scan(model, gradient, batches, repeats):
    "Best seconds per step of a scanned loop over `batches`, after a compiling call."
    run = scan_trainer(model, gradient)
    state = ([v.value for v in model.trainable_variables], [v.value for v in model.optimizer.variables])
    state, losses = run(state, batches); jax.block_until_ready(losses)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter(); state, losses = run(state, batches); jax.block_until_ready(losses)
        best = min(best, time.perf_counter() - start)
    return best / len(batches), float(losses[-1])


class EpochTimer(keras.callbacks.Callback):
    "Seconds of each epoch (the logs' loss is read, which waits for the epoch's last step)."
    def __init__(self): super().__init__(); self.seconds = []
    def on_epoch_begin(self, epoch, logs=None): self.start = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): float(logs["loss"]); self.seconds.append(time.perf_counter() - self.start)


def time_fit(model, x, batch, repeats):
    "Best seconds per step of the epochs of one `model.fit` on a NumPy array, the first (compiling) one left out."
    timer = EpochTimer()
    history = model.fit(x, batch_size=batch, epochs=repeats + 1, verbose=0, callbacks=[timer])
    return min(timer.seconds[1:]) / (len(x) // batch), history.history["loss"][-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=int, default=768)
    parser.add_argument("--hidden", type=int, default=16384)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=50, help="steps per timed call (and per fit epoch)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    d, h, b = args.input, args.hidden, args.batch
    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}, Keras {keras.__version__} ({keras.backend.backend()})")
    data = np.random.default_rng(0).uniform(0, 1, (args.steps * b, d)).astype("float32")
    batches = jax.device_put(data.reshape(args.steps, b, d))
    flops = 10 * b * d * h
    rows = {f"package fit, {dtype}": time_fit(make_model(d, h, dtype), data, b, args.repeats)
            for dtype in ("float32", "mixed_bfloat16")}
    model = make_model(d, h)
    rows["jit scan, autodiff (stateless_call)"] = time_scan(model, autodiff_gradient(model), batches, args.repeats)
    for name, dtype in (("float32", jnp.float32), ("bfloat16", jnp.bfloat16)):
        model = make_model(d, h)
        rows[f"jit scan, explicit gradient, {name}"] = time_scan(model, explicit_gradient(model, dtype), batches, args.repeats)
    base = rows["package fit, float32"][0]
    print(f"\n{d}-{h}, batch {b}, {args.steps} steps per call, best of {args.repeats}; {flops / 1e9:.1f} GFLOP per step")
    print(f"{'implementation':42s} {'ms/step':>8s} {'TFLOP/s':>8s} {'x fit':>6s} {'last loss':>10s}")
    for label, (seconds, loss) in rows.items():
        print(f"{label:42s} {seconds * 1e3:8.2f} {flops / seconds / 1e12:8.1f} {base / seconds:6.2f} {loss:10.4f}")


if __name__ == "__main__":
    main()
