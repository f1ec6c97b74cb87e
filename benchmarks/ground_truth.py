"""Ground truth: can a sparse dictionary find features that are known? Sparse combinations of `n_features` random
unit directions in a space of `dim < n_features` dimensions (features in superposition, as in "Toy models of
superposition" and SAELens's synthetic evaluations) are the data; each dictionary family of the package is trained on
them through `fit`, and its decoder directions are compared with the true features:

- MMCS, the mean over true features of the largest cosine similarity with any decoder direction;
- recovered, the share of true features whose best decoder direction has cosine similarity above 0.9.

    python benchmarks/ground_truth.py                          # the table of BENCHMARKS.md (3 seeds)
    python benchmarks/ground_truth.py --seeds 0 --families topk --epochs 5

Each example has each feature active independently with probability `l0 / n_features` (so `l0` active on average),
with a magnitude uniform in [0.5, 1.5]; the data are `a F` (a: activations, F: the features as rows), centred by the
dictionary's pre-bias. Every dictionary has `n_features` latents (`--expansion` times that with `--expansion`) and
TopK/BatchTopK use k = `l0`, the true mean L0; JumpReLU is given an L0 coefficient and L1 a penalty weight, and their
measured mean L0 is reported beside their recovery.
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import numpy as np

from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.variants import KSparseAutoencoder


def make_features(n_features:int=256, dim:int=64, seed:int=0):
    "The true features: `n_features` random unit directions in `dim` dimensions, shape (n_features, dim)."
    f = np.random.default_rng(seed).standard_normal((n_features, dim))
    return (f / np.linalg.norm(f, axis=1, keepdims=True)).astype("float32")


def sample(features, n:int, l0:float=4, seed:int=0):
    "`n` examples `a F`: each feature on with probability `l0 / n_features`, magnitude uniform in [0.5, 1.5]."
    rng = np.random.default_rng(seed + 1000)
    on = rng.random((n, len(features))) < l0 / len(features)
    a = np.where(on, rng.uniform(0.5, 1.5, on.shape), 0.0).astype("float32")
    return a @ features, a


def recovery(features, directions, cutoff:float=0.9):
    "MMCS of the true `features` by the (row) `directions`, and the share recovered above `cutoff`."
    d = directions / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    best = (features @ d.T).max(axis=1)
    return float(best.mean()), float((best > cutoff).mean())


def train(family:str, x, n_latents:int, true_l0:float, seed:int=0, epochs:int=10, batch_size:int=256, lr:float=1e-3, **kw):
    "One dictionary of `family` trained on `x` through `fit`; returns its decoder directions (rows) and mean L0 on `x`."
    keras.utils.set_random_seed(seed)
    if family in ("topk", "batchtopk", "jumprelu"):
        args = dict(k=int(round(true_l0)), dead_after=len(x) // 4, activation=family) | kw
        model = KSparseAutoencoder(x.shape[1], n_latents, **args).init_pre_bias(x)
    else:
        model = SparseAutoencoder(x.shape[1], n_latents, hidden_activation="relu", output_activation="linear",
                                  sparsity="l1", **({"l1": 0.05} | kw))
    model.compile(keras.optimizers.Adam(lr))
    model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0)
    if family == "l1":
        h = keras.ops.convert_to_numpy(model.encoder(x))
        return keras.ops.convert_to_numpy(model.decoder_dense.kernel), float((h > 0).sum(1).mean())
    return model.dictionary, float((model.encode(x) > 0).sum(1).mean())


FAMILIES = {"topk": {}, "batchtopk": {}, "jumprelu": {"l0": 0.1}, "l1": {"l1": 0.1}}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-features", type=int, default=256); p.add_argument("--dim", type=int, default=64)
    p.add_argument("--l0", type=float, default=4.0, help="true mean number of active features per example")
    p.add_argument("--n", type=int, default=32768, help="training examples")
    p.add_argument("--expansion", type=float, default=2.0, help="latents per true feature")
    p.add_argument("--epochs", type=int, default=20); p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seeds", default="0,1,2"); p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--options", default="{}", help='JSON, per family: {"jumprelu": {"l0": 0.03}}')
    args = p.parse_args()
    options = json.loads(args.options)
    rows = []
    for family in args.families.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            features = make_features(args.n_features, args.dim, seed)
            x, a = sample(features, args.n, args.l0, seed)
            start = time.time()
            directions, l0 = train(family, x, int(args.expansion * args.n_features), args.l0, seed, args.epochs, lr=args.lr,
                                   **(FAMILIES[family] | options.get(family, {})))
            mmcs, recovered = recovery(features, directions)
            rows.append(dict(family=family, seed=seed, mmcs=mmcs, recovered=recovered, l0=l0, true_l0=float((a > 0).sum(1).mean()),
                             seconds=time.time() - start))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n| family | MMCS (mean, min-max over {len(args.seeds.split(','))} seeds) | recovered > 0.9 | mean L0 (true {args.l0:g}) |")
    print("|---|---|---|---|")
    for family in dict.fromkeys(r["family"] for r in rows):
        rs = [r for r in rows if r["family"] == family]
        cell = lambda k, f: f"{np.mean([r[k] for r in rs]):{f}} ({min(r[k] for r in rs):{f}}-{max(r[k] for r in rs):{f}})"
        print(f"| {family} | {cell('mmcs', '.3f')} | {cell('recovered', '.3f')} | {cell('l0', '.1f')} |")


if __name__ == "__main__":
    main()
