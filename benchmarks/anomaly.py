"""Anomaly-detection benchmark on every labelled set that loads offline: this package's detector (defaults) against
PCA reconstruction error, IsolationForest, OneClassSVM, LocalOutlierFactor (novelty), PyOD's ECOD, KNN and AutoEncoder.

Novelty protocol: train on 70% of the normal rows (one split per set, seed 0), test on the other normal rows plus every
anomaly. Each detector runs with 5 seeds (its `random_state`; deterministic detectors run once, spread 0). Prints, per
set, the mean AUROC and average precision with the spread (max - min) over the seeds, each detector's mean rank and
its fit + score time.

    nice -n 10 python benchmarks/anomaly.py                   # everything (minutes)
    nice -n 10 python benchmarks/anomaly.py --sets breast_cancer ecg_mitdb --detectors sparse_ae iforest
    python benchmarks/anomaly.py --json results.json          # also write every number
    python benchmarks/anomaly.py --merge a.json b.json --json all.json   # runs made in parts: one table
    python benchmarks/anomaly.py --cost --sets breast_cancer yahoo       # fit time: the default before issue 20 and now

Benchmark-only dependency: torch (PyOD's AutoEncoder), see benchmarks/requirements.txt.
"""
from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

SEEDS = (0, 1, 2, 3, 4)


# ---------------------------------------------------------------- data: each set gives (X, y) tasks, y = 1 for anomalies
def _windows(series, labels, width, stride):
    "Sliding windows of a series; a window is anomalous if any of its points is labelled."
    starts = range(0, len(series) - width + 1, stride)
    X = np.stack([series[s:s + width] for s in starts]).astype(np.float64)
    return X, np.array([labels[s:s + width].max() for s in starts], int)


def _sktime_series(name):
    path = importlib.resources.files("sktime.datasets").joinpath("data", name, f"{name}.csv")
    data = np.genfromtxt(str(path), delimiter=",", skip_header=1)
    return data[:, 0], data[:, 1].astype(int)


def _one_vs_rest(X, y, max_normal=None, max_anomalies=None, seed=0):
    "Ten tasks: class c normal, every other class anomalous (optionally subsampled)."
    rng, tasks = np.random.default_rng(seed), []
    for c in np.unique(y):
        normal, odd = np.flatnonzero(y == c), np.flatnonzero(y != c)
        if max_normal: normal = rng.choice(normal, min(max_normal, len(normal)), replace=False)
        if max_anomalies: odd = rng.choice(odd, min(max_anomalies, len(odd)), replace=False)
        rows = np.r_[normal, odd]
        tasks.append((X[rows].astype(np.float64), np.r_[np.zeros(len(normal), int), np.ones(len(odd), int)]))
    return tasks


def _pyod_synthetic(n_features, contamination):
    from pyod.utils.data import generate_data
    Xtr, Xte, ytr, yte = generate_data(n_train=700, n_test=300, n_features=n_features, contamination=contamination,
                                       random_state=42)
    return [(np.r_[Xtr, Xte], np.r_[ytr, yte].astype(int))]


def _mnist():
    from sparse_ae_tf.data import _mnist_raw
    images, labels = _mnist_raw()
    return _one_vs_rest(images.reshape(len(images), -1) / 255.0, labels, max_normal=200, max_anomalies=200)


SETS = {
    "breast_cancer": lambda: [(load_breast_cancer().data, 1 - load_breast_cancer().target)],  # malignant (0) anomalous
    "digits_1vr": lambda: _one_vs_rest(load_digits().data, load_digits().target),
    "mnist_1vr": _mnist,
    "pyod_d5_c05": lambda: _pyod_synthetic(5, 0.05),
    "pyod_d20_c10": lambda: _pyod_synthetic(20, 0.1),
    "pyod_d50_c20": lambda: _pyod_synthetic(50, 0.2),
    "ecg_mitdb": lambda: [_windows(*_sktime_series("mitdb"), width=64, stride=16)],
    "yahoo": lambda: [_windows(*_sktime_series("yahoo"), width=16, stride=4)],
    "wine_1vr": lambda: _one_vs_rest(load_wine().data, load_wine().target),
    "iris_1vr": lambda: _one_vs_rest(load_iris().data, load_iris().target),
}


def novelty_split(X, y, seed=0, train_share=0.7):
    "Train on `train_share` of the normal rows; test on the rest plus every anomaly."
    normal = np.random.default_rng(seed).permutation(np.flatnonzero(y == 0))
    n_train = int(round(train_share * len(normal)))
    test = np.r_[normal[n_train:], np.flatnonzero(y == 1)]
    return X[normal[:n_train]], X[test], y[test]


# ---------------------------------------------------------------- detectors: each gives a fitted-scorer factory
class _Scorer:
    "fit(X) then score(X): higher = more anomalous."
    def __init__(self, make, sign=1.0, method="decision_function"): self.make, self.sign, self.method = make, sign, method
    def fit(self, X): self.model = self.make().fit(X); return self
    def score(self, X): return self.sign * getattr(self.model, self.method)(X)


class _PCAError:
    "Squared reconstruction error from the principal components explaining 90% of the standardised variance."
    def fit(self, X):
        self.scaler = StandardScaler().fit(X); self.pca = PCA(0.9, svd_solver="full").fit(self.scaler.transform(X)); return self
    def decision_function(self, X):
        Z = self.scaler.transform(X)
        return ((Z - self.pca.inverse_transform(self.pca.transform(Z))) ** 2).sum(1)


def _ours(seed):
    from sparse_ae_tf.anomaly import SparseAEDetector
    return _Scorer(lambda: SparseAEDetector(random_state=seed))


def _pyod(name, seed):
    def make():
        if name == "ecod":
            from pyod.models.ecod import ECOD; return ECOD()
        if name == "knn":
            from pyod.models.knn import KNN; return make_pipeline(StandardScaler(), KNN())
        from pyod.models.auto_encoder import AutoEncoder
        return AutoEncoder(random_state=seed, verbose=0)
    return _Scorer(make)


DETECTORS = {  # name: (factory of seed, draws at random)
    "sparse_ae": (_ours, True),
    "pca": (lambda s: _Scorer(_PCAError), False),
    "iforest": (lambda s: _Scorer(lambda: IsolationForest(random_state=s), -1.0, "score_samples"), True),
    "ocsvm": (lambda s: _Scorer(lambda: make_pipeline(StandardScaler(), OneClassSVM()), -1.0), False),
    "lof": (lambda s: _Scorer(lambda: make_pipeline(StandardScaler(), LocalOutlierFactor(novelty=True)), -1.0, "score_samples"), False),
    "ecod": (lambda s: _pyod("ecod", s), False),
    "knn": (lambda s: _pyod("knn", s), False),
    "pyod_ae": (lambda s: _pyod("ae", s), True),
}


def evaluate(set_name, detector, seeds=SEEDS, max_tasks=None):
    "AUROC, AP (one value per seed, each the mean over the set's tasks) and mean fit+score seconds."
    factory, random = DETECTORS[detector]
    tasks = [novelty_split(X, y) for X, y in SETS[set_name]()][:max_tasks]
    auroc, ap, secs = [], [], []
    for seed in (seeds if random else seeds[:1]):
        a, p, t0 = [], [], time.perf_counter()
        for Xtr, Xte, yte in tasks:
            s = factory(seed).fit(Xtr).score(Xte)
            a.append(roc_auc_score(yte, s)); p.append(average_precision_score(yte, s))
        secs.append((time.perf_counter() - t0) / len(tasks))
        auroc.append(float(np.mean(a))); ap.append(float(np.mean(p)))
    if not random: auroc, ap = auroc * len(seeds), ap * len(seeds)
    return dict(auroc=auroc, ap=ap, seconds=float(np.mean(secs)))


BEFORE_ISSUE_20 = dict(n_estimators=1, epochs=200, batch_size=64, validation_fraction=0.1, patience=10, jit_compile="auto")


def cost(set_name, repeats=2):
    "Fit + score seconds (medians of `repeats`, taken in turn) of the default before issue 20 and of today's, on the set's first task."
    from sparse_ae_tf.anomaly import SparseAEDetector
    Xtr, Xte, _ = novelty_split(*SETS[set_name]()[0])
    seconds = {"before": [], "now": []}
    for seed in range(repeats):
        for label, options in (("before", BEFORE_ISSUE_20), ("now", {})):
            start = time.perf_counter()
            SparseAEDetector(random_state=seed, **options).fit(Xtr).decision_function(Xte)
            seconds[label].append(time.perf_counter() - start)
    return len(Xtr), float(np.median(seconds["before"])), float(np.median(seconds["now"]))


def stats(r:dict)->dict:
    "Mean, spread (max - min) and std of AUROC, mean and spread of AP, from the per-seed lists (or the stored summary)."
    if "auroc" not in r: return r  # a summary recovered from a run's printed log: no per-seed lists
    return dict(auroc_mean=float(np.mean(r["auroc"])), auroc_spread=float(np.ptp(r["auroc"])), auroc_std=float(np.std(r["auroc"])),
                ap_mean=float(np.mean(r["ap"])), ap_spread=float(np.ptp(r["ap"])), seconds=r["seconds"])


def mean_ranks(results, sets, detectors):
    "Each detector's rank by mean AUROC on each set (1 = best, ties share), averaged over the sets."
    from scipy.stats import rankdata
    ranks = np.array([rankdata([-stats(results[s][d])["auroc_mean"] for d in detectors]) for s in sets])
    return dict(zip(detectors, ranks.mean(0)))


def table(results, sets, detectors)->str:
    "The markdown table: mean AUROC (spread), mean AP (spread) and seconds per set; the mean rank last."
    lines = ["| set | " + " | ".join(detectors) + " |", "|---" * (len(detectors) + 1) + "|"]
    for s in sets:
        cells = []
        best = max(stats(results[s][d])["auroc_mean"] for d in detectors)
        for d in detectors:
            r = stats(results[s][d])
            mark = "**" if r["auroc_mean"] >= best - 0.01 else ""
            ap_spread = f" ±{r['ap_spread']:.3f}" if r.get("ap_spread") is not None else ""
            cells.append(f"{mark}{r['auroc_mean']:.3f}{mark} ±{r['auroc_spread']:.3f} / {r['ap_mean']:.3f}{ap_spread} / {r['seconds']:.2f}s")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    ranks = mean_ranks(results, sets, detectors)
    lines.append("| **mean rank** (AUROC) | " + " | ".join(f"{ranks[d]:.2f}" for d in detectors) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    ap.add_argument("--seeds", type=int, default=len(SEEDS))
    ap.add_argument("--tasks", type=int, help="at most this many tasks per set (one-vs-rest sets have 10)")
    ap.add_argument("--json", help="write every number to this file")
    ap.add_argument("--merge", nargs="+", metavar="FILE", help="run nothing: merge these --json files (a later file's "
                    "entry replaces an earlier one's), print their table and write the merge to --json")
    ap.add_argument("--cost", action="store_true", help="run nothing else: time the default before issue 20 against today's on "
                    "the first task of each of --sets")
    args = ap.parse_args(argv)
    if args.cost:
        print("| set (training rows) | before | now | now / before |\n|---|---|---|---|")
        for s in args.sets:
            n, before, now = cost(s)
            print(f"| {s} ({n}) | {before:.1f} s | {now:.1f} s | {now / before:.2f} |", flush=True)
        return
    if args.merge:
        results = {}
        for path in args.merge:
            with open(path) as f:
                for s, by_detector in json.load(f).items(): results.setdefault(s, {}).update(by_detector)
        sets = [s for s in SETS if s in results]
        detectors = [d for d in DETECTORS if all(d in results[s] for s in sets)]
        if args.json:
            with open(args.json, "w") as f: json.dump({s: {d: results[s][d] for d in detectors} for s in sets}, f, indent=1)
        print(table(results, sets, detectors)); return
    seeds, results = tuple(range(args.seeds)), {}
    for s in args.sets:
        results[s] = {}
        for d in args.detectors:
            results[s][d] = evaluate(s, d, seeds, args.tasks)
            r = stats(results[s][d])
            print(f"{s:14s} {d:10s} AUROC {r['auroc_mean']:.3f} (spread {r['auroc_spread']:.3f}, std {r['auroc_std']:.3f})"
                  f"  AP {r['ap_mean']:.3f} (spread {r['ap_spread']:.3f})  {r['seconds']:.2f}s", flush=True)
            if args.json:  # after every detector, so that an interrupted run keeps what it measured
                with open(args.json, "w") as f: json.dump(results, f, indent=1)
    print("\nAUROC ±spread / AP ±spread / fit+score seconds per task; bold: within 0.01 AUROC of the set's best\n")
    print(table(results, args.sets, args.detectors))


if __name__ == "__main__":
    main()
