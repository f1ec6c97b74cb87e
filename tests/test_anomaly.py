"""Cross-module checks of the anomaly detector and the denoising mode: pickling, cloning, rules, noisy training."""
import os
import pickle

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from sparse_ae_tf.anomaly import RULES, SparseAEDetector, threshold_from_scores
from sparse_ae_tf.noise import corrupt


def _blobs(n, seed, shift=0.0):
    "Points near a 3-D plane inside a 20-D unit cube; `shift` moves them off it."
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(0).normal(size=(3, 20))
    x = 0.5 + 0.1 * rng.normal(size=(n, 3)) @ basis / 3 + 0.01 * rng.normal(size=(n, 20))
    return np.clip(x + shift * rng.normal(size=(n, 20)), 0, 1).astype("float32")


@pytest.fixture(scope="module")
def fitted():
    return SparseAEDetector(hidden_dim=16, epochs=30, learning_rate=1e-2, batch_size=32, random_state=0).fit(_blobs(600, 1))


def test_scores_separate_anomalies(fitted):
    normal, odd = _blobs(200, 2), _blobs(50, 3, shift=0.2)
    scores = fitted.decision_function(np.r_[normal, odd])
    assert roc_auc_score(np.r_[np.zeros(200), np.ones(50)], scores) > 0.95


@pytest.mark.parametrize("rule,kw", [("mean_std", dict(n_std=2.0)), ("max", {}), ("contamination", dict(contamination=0.2)),
                                     ("value", dict(threshold_value=0.1))])
def test_every_rule_matches_threshold_from_scores(fitted, rule, kw):
    assert rule in RULES
    det = clone(fitted)
    det.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    det.set_threshold(rule, **kw)
    assert det.threshold_ == pytest.approx(threshold_from_scores(fitted.decision_scores_, rule, **kw))
    x = _blobs(100, 4, shift=0.1)
    np.testing.assert_array_equal(det.predict(x), (det.decision_function(x) > det.threshold_).astype(int))


def test_pickle_round_trip_keeps_scores_and_threshold(fitted, tmp_path):
    x = _blobs(20, 5)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.decision_function(x), fitted.decision_function(x), rtol=1e-6)
    assert again.threshold_ == fitted.threshold_ and again.contamination == fitted.contamination


def test_denoising_detector_trains_on_noise_and_scores_clean_inputs():
    det = SparseAEDetector(hidden_dim=8, epochs=3, noise="gaussian", noise_level=0.05, random_state=0).fit(_blobs(200, 6))
    det.set_threshold("max")
    assert det.model_.corruption is not None
    x = _blobs(10, 7)
    np.testing.assert_array_equal(det.decision_function(x), det.decision_function(x))  # no noise at inference
    assert det.predict(_blobs(200, 6)).sum() == 0


def test_corrupt_is_seeded_and_leaves_the_input_alone():
    x = _blobs(5, 8)
    before = x.copy()
    a, b = corrupt(x, "salt_pepper", 0.3, seed=4), corrupt(x, "salt_pepper", 0.3, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, before)
