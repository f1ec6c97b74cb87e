"""Where a TensorFlow training step's time goes, in two measurements (issue 22):

- `--parts`: the explicit-gradient step at 784-4096 / 1024 (the step `fit` takes there on an AVX-512 CPU) cut into its
  pieces, each timed on a fixed batch in its own `tf.function`: one of the five products, the explicit gradient
  (products, elementwise stages, weight decay), the compiled update (Adam and the guard), the whole guarded step.
- `--sums`: the sum of a weight matrix's squares as XLA's reduction and as a product with a vector of ones (what
  `sum_entries` does on TensorFlow), in a compiled loop of calls, on TensorFlow and on JAX.
- `--guard`: the package's fit with its guard whole, with its finiteness checks but no copies to restore from,
  and with no guard at all, against a plain tuned Keras fit, 3-epoch fits taken in turn. The patches are the step's
  (`steps`); a fit that runs in chunks keeps, in every version, the one copy a chunk takes for its replay (*Feeds*).

    python benchmarks/step_parts.py --parts
    python benchmarks/step_parts.py --sums
    python benchmarks/step_parts.py --guard --hidden 196 --batch 256 --rows 32768
    python benchmarks/step_parts.py --guard --hidden 4096 --batch 1024 --rows 8192
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import suite  # noqa: E402


def best_ms(run, calls=10, repeats=3)->float:
    "Milliseconds a call of `run` takes: the best of `repeats` runs of `calls` calls, results read back."
    import tensorflow as tf
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls): out = run()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e3


def parts(hidden=4096, batch=1024):
    "The explicit step's pieces on a fixed batch, in ms."
    import tensorflow as tf
    from sparse_ae_tf import steps
    x = suite.digits(8 * batch)
    model = suite.package_model(hidden)
    model.fit(x, batch_size=batch, epochs=1, verbose=0)
    if not model._explicit_step: sys.exit("fit did not take the explicit step here (it needs an AVX-512 CPU and a large step)")
    xb = tf.constant(x[:batch])
    gradients = tf.function(lambda: model.explicit_gradients(xb, None, None))
    loss, _, grads = gradients()
    update, step = steps._compiled_apply(model), tf.function(lambda: steps._tf_train_step(model, (xb,)))
    w1 = tf.constant(np.random.default_rng(0).random((784, hidden), dtype=np.float32))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(xb, w1)))
    print(f"784-{hidden} / {batch}, TensorFlow, best of 3 runs of 10 calls, load {suite.load()}")
    for name, run in [("one product (x W1)", product), ("explicit gradient", gradients),
                      ("compiled update (Adam, guard)", lambda: update(loss, grads)), ("whole guarded step", step)]:
        print(f"  {name:32s} {best_ms(run):8.1f} ms")


def sums(shapes=((784, 196), (784, 4096)), repeats=5):
    "Microseconds a sum of squares takes inside a compiled loop, as a reduction and as a product with ones, TF and JAX."
    import jax
    import jax.numpy as jnp
    import tensorflow as tf
    ways = {"reduction": (lambda v: tf.reduce_sum(tf.square(v)), lambda v: jnp.sum(jnp.square(v))),
            "product with ones": (lambda v: tf.reduce_sum(tf.linalg.matvec(tf.square(v), tf.ones(v.shape[-1]))),
                                  lambda v: jnp.sum(jnp.square(v) @ jnp.ones(v.shape[-1])))}
    print(f"sum of squares in a compiled loop of n calls (each on a slightly changed matrix), best of {repeats}, load {suite.load()}")
    for shape in shapes:
        w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        n = 200 if shape[1] < 1000 else 20
        for name, (tf_sum, jax_sum) in ways.items():
            tw = tf.constant(w)
            @tf.function(jit_compile=True, autograph=False)
            def tf_loop():
                return tf.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, a + tf_sum(tw + tf.cast(i, tf.float32) * 1e-9)), (0, 0.0))[1]
            jax_loop = jax.jit(lambda v: jax.lax.fori_loop(0, n, lambda i, a: a + jax_sum(v + i * 1e-9), 0.0))
            jw = jnp.asarray(w)
            times = {}
            for backend, run in (("TF", lambda: tf_loop().numpy()), ("JAX", lambda: jax_loop(jw).block_until_ready())):
                run(); best = float("inf")
                for _ in range(repeats):
                    start = time.perf_counter(); run(); best = min(best, time.perf_counter() - start)
                times[backend] = best / n * 1e6
            print(f"  {shape[0]} x {shape[1]:<5d} {name:18s} TF {times['TF']:8.1f} us   JAX {times['JAX']:8.1f} us")


def guard(hidden, batch, rows, rounds=4, epochs=3):
    "Samples/s of the package's fit with its guard whole, partial and off, and of a plain tuned fit, alternating."
    import tensorflow as tf
    from sparse_ae_tf import steps
    x = suite.digits(rows)
    whole = {name: getattr(steps, name) for name in ("_apply_checked", "_restore_unless", "_snapshot")}
    def no_copies(model):
        steps._build_optimizer(model)
        return steps._guarded_state(model), None
    def no_check(optimizer, loss, grads, variables, logged):
        optimizer.apply(grads, variables)
        return tf.constant(True)
    def no_restore(applied, state, before): return applied
    def package(patch):
        def fit(model, timer):
            for name, value in patch.items(): setattr(steps, name, value)
            try: model.fit(x, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer])
            finally:
                for name, value in whole.items(): setattr(steps, name, value)
        return suite.package_model(hidden), fit
    paths = {"plain Keras fit, jit + 32 steps/execution": (suite.plain_keras(hidden, True), lambda m, t: m.fit(x, x, batch_size=batch, epochs=epochs, verbose=0, callbacks=[t])),
             "package, guard whole": package({}),
             "package, checks without copies or restore": package({"_restore_unless": no_restore, "_snapshot": no_copies}),
             "package, no guard": package({"_apply_checked": no_check, "_restore_unless": no_restore, "_snapshot": no_copies})}
    for model, fit in paths.values(): fit(model, suite.EpochTimer())  # compiles
    rates, names = {name: [] for name in paths}, list(paths)
    for r in range(rounds):  # each round starts one path later: a fit right after the plain Keras fit measured slower
        for name in names[r % len(names):] + names[:r % len(names)]:
            model, fit = paths[name]
            timer = suite.EpochTimer(); fit(model, timer); rates[name].append(rows / np.median(timer.seconds[1:]))
    print(f"784-{hidden} / {batch}, {rows} digits, TensorFlow, medians of {rounds} {epochs}-epoch fits taken in turn, each round starting one path later (each the median epoch after the first), load {suite.load()}")
    for name, r in rates.items():
        print(f"  {name:48s} {np.median(r):9,.0f} samples/s ({min(r):,.0f}-{max(r):,.0f}), {batch / np.median(r) * 1e3:7.2f} ms a step")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", action="store_true"); ap.add_argument("--guard", action="store_true")
    ap.add_argument("--sums", action="store_true")
    ap.add_argument("--hidden", type=int, default=4096); ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--rows", type=int, default=8192); ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    if args.parts: parts(args.hidden, args.batch)
    if args.sums: sums()
    if args.guard: guard(args.hidden, args.batch, args.rows, args.rounds)
    if not (args.parts or args.guard or args.sums): ap.print_help()
