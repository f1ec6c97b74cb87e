"""Where a TensorFlow training step's time goes (issue 22):

- `--parts`: the explicit-gradient step at 784-4096 / 1024 (the step `fit` takes there on an AVX-512 CPU) cut into its
  pieces, each timed on a fixed batch in its own `tf.function`: one of the five products, the explicit gradient
  (products, elementwise stages, weight decay), the compiled update (Adam and the guard), the whole guarded step.
- `--sums`: the sum of a weight matrix's squares as XLA's reduction, as a product with a vector of ones, and by
  `sum_entries` (that product, in rows whose vector of ones stays under 16 KB), in a compiled loop of calls, on
  TensorFlow and on JAX (where `sum_entries` is the reduction).
- `--timeline`: one epoch of the package's TensorFlow fit under the profiler (784-4096 / 1024: the explicit step), each
  step cut into the time its oneDNN products run, each XLA computation in the order it runs (the stages between the
  products, the weight decay, the update) and the rest; beside it, the five products at the rate of the suite's TF
  ceiling, measured in the same run.
- `--adam`: one Adam update of the four variables of 784-4096, by Keras's Adam compiled with XLA (as the guarded
  update runs it) and by TensorFlow's fused kernel `ResourceApplyAdam` (one loop per variable, outside XLA).
- `--passes`: the memory traffic of each XLA computation of that step, read from its optimized HLO (a fit with
  `--xla_dump_to`): for each computation the loops (fusions and dots) over arrays of 1 MB or more, and the megabytes
  they read and write, counted in passes over the weights (XLA on a CPU gives each output of a computation a loop
  of its own, which reads its inputs again).
- `--levers`: four small A/Bs at 784-4096 / 1024, each pair of calls taken in turn: the hidden layer as the step
  runs it (a oneDNN product, then the XLA stage) against oneDNN's product with the bias and sigmoid fused into it;
  the suite's five ceiling products independent in one `tf.function` (as the ceiling runs them) against chained one
  after another (as the step's dependencies order them); the loop that writes Adam's new weights,
  `w - a m / (sqrt(v) + eps)`, against the same loop without the square root and the division, compiled alone;
  W2's Adam update (its three new arrays and the guard's sum) and the step's last product, `x^T delta2`, independent
  in one `tf.function` (could TensorFlow overlap the two?) against one after the other, and each alone.
- `--guard`: the package's fit with its guard whole, with its finiteness checks but no copies to restore from,
  and with no guard at all, against a plain tuned Keras fit, 3-epoch fits taken in turn. The patches are the step's
  (`steps`); a fit that runs in chunks keeps, in every version, the one copy a chunk takes for its replay (*Feeds*).

    python benchmarks/step_parts.py --parts
    python benchmarks/step_parts.py --sums
    python benchmarks/step_parts.py --timeline
    python benchmarks/step_parts.py --adam
    python benchmarks/step_parts.py --passes
    python benchmarks/step_parts.py --levers
    python benchmarks/step_parts.py --guard --hidden 196 --batch 256 --rows 32768
    python benchmarks/step_parts.py --guard --hidden 4096 --batch 1024 --rows 8192
"""
import argparse
import os
import re
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
    from sparse_ae_tf.sparsity import sum_entries
    ways = {"reduction": (lambda v: tf.reduce_sum(tf.square(v)), lambda v: jnp.sum(jnp.square(v))),
            "product with ones": (lambda v: tf.reduce_sum(tf.linalg.matvec(tf.square(v), tf.ones(v.shape[-1]))),
                                  lambda v: jnp.sum(jnp.square(v) @ jnp.ones(v.shape[-1]))),
            "sum_entries": (lambda v: sum_entries(tf.square(v)), lambda v: jnp.sum(jnp.square(v)))}  # rows under 16 KB
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


STAGES = ("hidden", "output error", "hidden error", "weight decay", "update (Adam, guard)")  # the explicit step's XLA computations, in order


def _profiled_events(run)->list:
    "(start, end, name) in picoseconds of every event on the threads that run operations, while `run()` runs under the profiler."
    import glob
    import tempfile
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir); run(); tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb").read())
    events = []
    for plane in space.planes:
        for line in plane.lines:
            if line.name == "python": continue
            for ev in line.events:
                start = line.timestamp_ns * 1000 + ev.offset_ps
                events.append((start, start + ev.duration_ps, plane.event_metadata[ev.metadata_id].name))
    return sorted(events)


def _union(intervals)->float:
    "Total length of the union of (start, end) intervals."
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach: total, reach = total + end - start, end
        elif end > reach: total, reach = total + end - reach, end
    return total


def triad_rate(entries:int, calls=20, repeats=5)->float:
    "Bytes/s of an XLA loop fusion that reads two float32 arrays of `entries` and writes a third (best of `repeats`)."
    import tensorflow as tf
    a, b, c = (tf.Variable(tf.random.normal((entries,))) for _ in range(3))
    triad = tf.function(lambda s: c.assign(a * s + b), jit_compile=True)
    triad(np.float32(1.0)); best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(calls): triad(np.float32(1 + i * 1e-7))
        c.numpy(); best = min(best, (time.perf_counter() - start) / calls)
    return 3 * 4 * entries / best


def timeline(hidden=4096, batch=1024, rows=8192):
    "Milliseconds of a step of the package's TensorFlow fit: its products, each XLA computation, the rest (medians over the steps of a profiled epoch)."
    x = suite.digits(rows)
    model = suite.package_model(hidden)
    fit = lambda: model.fit(x, batch_size=batch, epochs=1, verbose=0)
    fit(); fit()
    if not model._explicit_step: sys.exit("fit did not take the explicit step here (it needs an AVX-512 CPU and a large step)")
    events = _profiled_events(fit)
    starts = [s for s, _, name in events if name.endswith("/MatMul:_MklMatMul")]  # the first product: a step begins
    rows_ms = []
    for s0, s1 in zip(starts, starts[1:]):
        inside = [(s, e, name) for s, e, name in events if s0 <= s < s1]
        products = _union((s, e) for s, e, name in inside if name.endswith(":_MklMatMul"))
        xla = [e - s for s, e, name in inside if name == "CpuExecutable::ExecuteAsyncOnStream"]
        rows_ms.append([(s1 - s0) / 1e9, products / 1e9] + [t / 1e9 for t in xla])
    widths = {len(r) for r in rows_ms}
    if widths != {2 + len(STAGES)}: sys.exit(f"expected {len(STAGES)} XLA computations a step, found {sorted(widths)}")
    step, products, *stages = np.median(np.array(rows_ms), axis=0)
    flop_rate = suite.matmul_rate(hidden, batch)["TF (tf.function)"]
    at_ceiling = 10 * batch * 784 * hidden / flop_rate * 1e3
    print(f"784-{hidden} / {batch}, TensorFlow, one profiled epoch of {len(rows_ms)} whole steps (medians), load {suite.load()}")
    print(f"  {'whole step':32s} {step:8.1f} ms")
    print(f"  {'oneDNN products (their union)':32s} {products:8.1f} ms   (the five at the TF ceiling's rate, {flop_rate / 1e9:.0f} GFLOP/s: {at_ceiling:.1f} ms)")
    for name, ms in zip(STAGES, stages): print(f"  {'XLA: ' + name:32s} {ms:8.1f} ms")
    print(f"  {'the rest (launches, gather, gaps)':32s} {step - products - sum(stages):8.1f} ms")
    print(f"  of the TF ceiling: {at_ceiling / step:.2f}; with every product at the ceiling's rate it would be {at_ceiling / (step - products + at_ceiling):.2f}")
    weights = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    memory_rate = triad_rate(weights)
    print(f"  memory: an XLA triad over arrays of the weights' size ({weights:,} entries) moves {memory_rate / 1e9:.1f} GB/s, so one pass over"
          f" the weights (read or write) takes {4 * weights / memory_rate * 1e3:.2f} ms")


_BYTES = {"f32": 4, "bf16": 2, "f16": 2, "s64": 8, "s32": 4, "u32": 4, "pred": 1, "u8": 1, "s8": 1}


def _array_bytes(shape_text:str)->list:
    "Bytes of each array in an HLO shape (`f32[784,4096]{1,0}` or a tuple of them)."
    return [_BYTES.get(dtype, 4) * int(np.prod([int(d) for d in dims.split(",") if d] or [1]))
            for dtype, dims in re.findall(r"([a-z]+[0-9]*)\[([0-9,]*)\]", shape_text)]


def hlo_traffic(path:str, large=1 << 20)->tuple:
    "Loops over large arrays in the entry computation of an optimized HLO dump: (loops, bytes read, bytes written)."
    sizes, loops, read, written = {}, 0, 0, 0
    entry = open(path).read().split("\nENTRY ", 1)[1]
    for line in entry.splitlines()[1:]:
        m = re.match(r"\s*(ROOT )?%(\S+) = (\(.*?\)|\S+) (\w[\w-]*)\((.*?)\)", line)
        if not m: continue
        _, name, shape, op, operands = m.groups()
        sizes[name] = sum(_array_bytes(shape))
        if op not in ("fusion", "dot"): continue
        ins = [sizes.get(o, 0) for o in re.findall(r"%([\w.-]+)", operands)]
        outs = [b for b in _array_bytes(shape) if b >= large]
        if not outs and not any(b >= large for b in ins): continue
        loops, read, written = loops + 1, read + sum(b for b in ins if b >= large), written + sum(outs)
    return loops, read, written


def passes(hidden=4096, batch=1024, rows=4096):
    "The memory traffic of each XLA computation of the explicit step, from the optimized HLO of a fit dumped in a child process."
    import glob
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as dump:
        env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={dump} --xla_dump_hlo_as_text".strip()}
        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); import suite; "
                f"model = suite.package_model({hidden}); model.fit(suite.digits({rows}), batch_size={batch}, epochs=1, verbose=0); "
                f"print('explicit step:', model._explicit_step)")
        child = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
        if "explicit step: True" not in child.stdout: sys.exit("fit did not take the explicit step here (it needs an AVX-512 CPU and a large step)")
        files = sorted(glob.glob(f"{dump}/*after_optimizations.txt"))
        weight_bytes = 4 * (784 * hidden * 2 + hidden + 784)
        print(f"784-{hidden} / {batch}, the explicit step's XLA computations (optimized HLO); one pass over the weights: {weight_bytes / 1e6:.1f} MB")
        print(f"  {'computation':28s} {'loops':>5s} {'read MB':>9s} {'written MB':>10s} {'in passes over the weights':>27s}")
        total = 0
        for f in files:
            name = re.search(r"a_inference_(.*?)_\d+__", Path(f).name).group(1).replace("_lambda_", "update (Adam, guard)")
            loops, read, written = hlo_traffic(f)
            total += read + written
            print(f"  {name:28s} {loops:5d} {read / 1e6:9.1f} {written / 1e6:10.1f} {(read + written) / weight_bytes:27.1f}")
        print(f"  {'all':28s} {'':5s} {'':9s} {'':10s} {total / weight_bytes:27.1f}")


def _in_turn(runs:dict, rounds:int, calls:int=10)->dict:
    "Milliseconds a call of each of `runs` takes ({name: [ms of each round]}), the runs taken in turn, results read back."
    import tensorflow as tf
    read = lambda out: tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
    for run in runs.values(): read(run())
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(calls): out = run()
            read(out); times[name].append((time.perf_counter() - start) / calls * 1e3)
    return times


def adam(hidden=4096, rounds=3):
    "Milliseconds of one Adam update of W1, b1, W2, b2: Keras's Adam under XLA against TensorFlow's fused kernel, in turn."
    import keras
    import tensorflow as tf
    rng = np.random.default_rng(0)
    shapes = [(784, hidden), (hidden,), (hidden, 784), (784,)]
    make = lambda: [tf.Variable(rng.standard_normal(s, dtype=np.float32) * 0.01) for s in shapes]
    grads = [tf.constant(rng.standard_normal(s, dtype=np.float32) * 0.01) for s in shapes]
    weights, optimizer = make(), keras.optimizers.Adam(1e-3)
    optimizer.build(weights)
    keras_xla = tf.function(lambda g: optimizer.apply(g, weights), jit_compile=True)
    fused_weights, step = make(), tf.Variable(0.0)
    moments = [[tf.Variable(tf.zeros(s)) for s in shapes] for _ in range(2)]
    @tf.function
    def fused(g):
        t = step.assign_add(1.0)
        for w, m, v, gw in zip(fused_weights, *moments, g):
            tf.raw_ops.ResourceApplyAdam(var=w.handle, m=m.handle, v=v.handle, beta1_power=tf.pow(0.9, t), beta2_power=tf.pow(0.999, t),
                                         lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-7, grad=gw)
        return t
    times = _in_turn({"Keras Adam, XLA": lambda: (keras_xla(grads), weights[0])[1],  # the first weight read back
                      "ResourceApplyAdam": lambda: (fused(grads), fused_weights[0])[1]}, rounds)
    print(f"one Adam update of 784-{hidden}'s four variables, medians of {rounds} runs of 10 taken in turn, load {suite.load()}")
    for name, t in times.items(): print(f"  {name:20s} {np.median(t):6.2f} ms ({min(t):.2f}-{max(t):.2f})")


def levers(hidden=4096, batch=1024, rounds=9):
    "Four A/Bs in ms, taken in turn: the fused hidden layer, the ceiling's products chained, Adam's weight loop without its division, W2's update beside the last product."
    import tensorflow as tf
    rng = np.random.default_rng(0)
    x = tf.constant(suite.digits(batch))
    W1 = tf.Variable(rng.standard_normal((784, hidden), dtype=np.float32) * 0.01)
    b1 = tf.Variable(np.zeros(hidden, np.float32))
    stage = tf.function(lambda z: tf.sigmoid(z + b1), jit_compile=True)
    product_then_stage = tf.function(lambda: stage(tf.matmul(x, W1)))
    fused = tf.function(lambda: tf.sigmoid(tf.nn.bias_add(tf.matmul(x, W1), b1)))  # grappler's remapper: one _MklNativeFusedMatMul
    gap = float(np.abs(fused().numpy() - product_then_stage().numpy()).max())
    shapes = suite.step_products(hidden, batch)
    mats = [tuple(tf.constant(rng.standard_normal(s, dtype=np.float32)) for s in (a, b)) for a, b, _, _ in shapes]
    shift = tf.Variable(0.0)  # each product's input is a + shift, written anew in both versions (as in the suite's ceiling)
    @tf.function
    def independent():
        return tf.add_n([tf.reduce_sum(tf.matmul(a + shift, b, transpose_a=ta, transpose_b=tb)) for (a, b), (_, _, ta, tb) in zip(mats, shapes)])
    @tf.function
    def chained():  # each product's input waits for the previous product's sum (times zero)
        total = tf.zeros(())
        for (a, b), (_, _, ta, tb) in zip(mats, shapes):
            total = total + tf.reduce_sum(tf.matmul(a + (shift + 0 * total), b, transpose_a=ta, transpose_b=tb))
        return total
    w, m, v = (tf.Variable(rng.random(784 * hidden, dtype=np.float32) + 0.1) for _ in range(3))
    with_division = tf.function(lambda: w.assign_sub(1e-9 * m / (tf.sqrt(v) + 1e-7)), jit_compile=True)
    without = tf.function(lambda: w.assign_sub(1e-9 * m * v), jit_compile=True)
    delta2, g2 = tf.constant(rng.standard_normal((batch, hidden), dtype=np.float32)), tf.constant(rng.standard_normal((hidden, 784), dtype=np.float32))
    w2, m2, v2 = (tf.Variable(rng.random((hidden, 784), dtype=np.float32) + 0.1) for _ in range(3))
    @tf.function(jit_compile=True)
    def update_w2():  # Adam's three new arrays for W2 and the guard's sum of the new weights, as the update computes them
        m_new, v_new = 0.9 * m2 + 0.1 * g2, 0.999 * v2 + 0.001 * g2 * g2
        w_new = w2 - 1e-3 * m_new / (tf.sqrt(v_new) + 1e-7)
        return w_new, m_new, v_new, tf.reduce_sum(w_new)
    last_product = lambda: tf.reduce_sum(tf.matmul(x, delta2, transpose_a=True))  # W1's gradient, the step's last product
    @tf.function
    def side_by_side(): return update_w2()[3] + last_product()
    @tf.function
    def after():
        done = update_w2()[3]
        with tf.control_dependencies([done]): return done + last_product()
    pairs = {"the hidden layer": {"oneDNN product, then the XLA stage": product_then_stage, "oneDNN product with bias and sigmoid fused": fused},
             "the ceiling's five products": {"independent (as the ceiling)": independent, "chained (as the step)": chained},
             "Adam's weight loop, compiled alone": {"w - a m / (sqrt(v) + eps)": with_division, "w - a m v": without},
             "W2's update and the last product (x^T delta2)": {"independent, one tf.function": side_by_side, "the product after the update": after,
                                                                "the product alone": tf.function(last_product), "the update alone": lambda: update_w2()[3]}}
    print(f"784-{hidden} / {batch}, TensorFlow, medians of {rounds} rounds of 10 calls, each pair taken in turn, load {suite.load()}")
    for title, runs in pairs.items():
        print(f"  {title}" + (f" (largest difference of the two outputs {gap:.1e})" if title == "the hidden layer" else ""))
        for name, t in _in_turn(runs, rounds).items(): print(f"    {name:44s} {np.median(t):7.2f} ms ({min(t):.2f}-{max(t):.2f})")
    print(f"  the five products' rate: {10 * batch * 784 * hidden / 1e6:.0f} MFLOP a call, divided by the times above")


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
    ap.add_argument("--sums", action="store_true"); ap.add_argument("--timeline", action="store_true")
    ap.add_argument("--adam", action="store_true"); ap.add_argument("--passes", action="store_true")
    ap.add_argument("--levers", action="store_true")
    ap.add_argument("--hidden", type=int, default=4096); ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--rows", type=int, default=8192); ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    if args.parts: parts(args.hidden, args.batch)
    if args.sums: sums()
    if args.guard: guard(args.hidden, args.batch, args.rows, args.rounds)
    if args.timeline: timeline(args.hidden, args.batch, args.rows)
    if args.adam: adam(args.hidden)
    if args.passes: passes(args.hidden, args.batch)
    if args.levers: levers(args.hidden, args.batch)
    if not (args.parts or args.guard or args.sums or args.timeline or args.adam or args.passes or args.levers): ap.print_help()
