"""Cross-module checks of the anomaly detector and the denoising mode: pickling, cloning, rules, noisy training."""
import os
import pickle
import re

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
    return SparseAEDetector(hidden_dim=16, epochs=30, learning_rate=1e-2, batch_size=32, n_estimators=1, random_state=0).fit(_blobs(600, 1))


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


def test_huge_finite_float32_rows_get_finite_ordered_scores(fitted):
    "Finite float32 values up to 3.4e38 are not rounded to inf scores (which would tie): float64 scores, in order."
    import warnings
    x = _blobs(4, 9)
    x[0, 0], x[1, 0], x[2], x[3, ::2] = 1e20, 1e30, 3e38, -3e38
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "overflow encountered in cast"
        scores = fitted.decision_function(x)
    assert scores.dtype == np.float64 and np.isfinite(scores).all()
    assert fitted.threshold_ < scores[0] < scores[1] < scores[3]
    np.testing.assert_array_equal(fitted.predict(x), np.ones(4, int))
    np.testing.assert_allclose(scores, fitted.decision_function(x.astype(np.float64)), rtol=1e-6)
    assert fitted.decision_scores_.dtype == np.float64


@pytest.mark.parametrize("rule,kw,message", [
    ("max", dict(n_std=2), "`n_std` applies to rule='mean_std' only, got n_std=2 with rule='max'"),
    ("mean_std", dict(contamination=0.2), "got contamination=0.2 with rule='mean_std'"),
    ("contamination", dict(threshold_value=0.5), "got threshold_value=0.5 with rule='contamination'"),
    ("value", dict(threshold_value=0.5, n_std=1.0), "got n_std=1.0 with rule='value'"),
    ("median", dict(n_std=1.0), "rule='median'"),
])
def test_set_threshold_refuses_a_parameter_the_rule_does_not_use(fitted, rule, kw, message):
    det = clone(fitted)
    det.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    before = det.threshold_, det.get_params()
    with pytest.raises(ValueError, match=re.escape(message)):
        det.set_threshold(rule, **kw)
    assert (det.threshold_, det.get_params()) == before


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


# ---- the defaults: an ensemble of full-batch autoencoders (issue 20) and the refit contract (issue 19, class 8)
import sys
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).parent))
from refit_contract import assert_failed_fit_changes_nothing  # noqa: E402
from sparse_ae_tf.anomaly import SparseAEOutlierDetector  # noqa: E402


def test_defaults_are_named_in_get_params():
    params = SparseAEDetector().get_params()
    assert {k: params[k] for k in ("n_estimators", "hidden_dim", "scaling", "output_activation", "epochs", "batch_size", "validation_fraction")} == \
        dict(n_estimators=3, hidden_dim="auto", scaling="minmax", output_activation="sigmoid", epochs="auto", batch_size=4096,
             validation_fraction=0.0)


def test_ensemble_score_is_the_mean_error_and_random_state_reproduces_it_bit_for_bit():
    x, probe = _blobs(120, 11), _blobs(30, 12, shift=0.1)
    a = SparseAEDetector(hidden_dim=4, epochs=50, n_estimators=3, random_state=5).fit(x)
    b = SparseAEDetector(hidden_dim=4, epochs=50, n_estimators=3, random_state=5).fit(x)
    np.testing.assert_array_equal(a.decision_function(probe), b.decision_function(probe))
    assert len(a.models_) == 3 and a.model_ is a.models_[0] and len({id(m) for m in a.models_}) == 3
    singles = [SparseAEDetector(hidden_dim=4, epochs=50, n_estimators=3, random_state=5).fit(x) for _ in range(1)]
    errors = []
    for m in a.models_:
        one = clone(singles[0]); one.__dict__.update(singles[0].__dict__); one.models_ = [m]
        errors.append(one.decision_function(probe))
    np.testing.assert_allclose(a.decision_function(probe), np.mean(errors, 0), rtol=1e-6)
    c = SparseAEDetector(hidden_dim=4, epochs=50, n_estimators=3, random_state=6).fit(x)
    assert not np.array_equal(a.decision_function(probe), c.decision_function(probe))


def test_full_batch_steps_are_the_epochs():
    det = SparseAEDetector(hidden_dim=4, epochs=60, n_estimators=1, random_state=0).fit(_blobs(50, 13))
    assert int(keras.ops.convert_to_numpy(det.model_.optimizer.iterations)) == 60


def _interrupt_second_member(monkeypatch):
    calls, fit = [], keras.Model.fit
    def second_fails(model, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2: raise KeyboardInterrupt
        return fit(model, *args, **kwargs)
    monkeypatch.setattr(keras.Model, "fit", second_fails)


REFIT_CASES = {  # name: (parameters set before the fit, the failing fit)
    "nan-rows": ({}, lambda est: est.fit(np.full((5, 20), np.nan))),
    "new-width-bad-hidden-dim": (dict(hidden_dim=0), lambda est: est.fit(_blobs(40, 14)[:, :7])),
    "new-width-bad-ensemble": (dict(n_estimators=0), lambda est: est.fit(_blobs(40, 14)[:, :7])),
    "one-dimensional": ({}, lambda est: est.fit(np.ones(6))),
}


@pytest.mark.parametrize("cls,methods", [(SparseAEDetector, ("decision_function", "predict", "predict_proba", "transform")),
                                         (SparseAEOutlierDetector, ("score_samples", "decision_function", "predict"))])
@pytest.mark.parametrize("case", list(REFIT_CASES))
def test_failed_refit_leaves_the_detector_as_it_was(cls, methods, case):
    det = cls(hidden_dim=3, epochs=5, n_estimators=2, random_state=0).fit(_blobs(60, 15))
    params, (change, fit) = det.get_params(), REFIT_CASES[case]
    vars(det).update(change)  # as attributes: SparseAEDetector.set_params refuses them, as its constructor does
    assert_failed_fit_changes_nothing(det, fit, _blobs(7, 16), methods, expect=ValueError)
    vars(det).update(params)


@pytest.mark.parametrize("cls", [SparseAEDetector, SparseAEOutlierDetector])
def test_interrupt_while_training_the_second_autoencoder_changes_nothing(cls, monkeypatch):
    det = cls(hidden_dim=3, epochs=5, n_estimators=2, random_state=0).fit(_blobs(60, 15))
    det.set_params(hidden_dim=5, random_state=1)
    _interrupt_second_member(monkeypatch)
    assert_failed_fit_changes_nothing(det, lambda est: est.fit(_blobs(80, 17)[:, :9]), _blobs(7, 16), ("decision_function",),
                                      expect=KeyboardInterrupt)
    _interrupt_second_member(monkeypatch)
    fresh = cls(hidden_dim=3, epochs=5, n_estimators=2, random_state=0)
    assert_failed_fit_changes_nothing(fresh, lambda est: est.fit(_blobs(80, 17)), _blobs(7, 16), ("decision_function",),
                                      expect=KeyboardInterrupt)
    assert not any(k.endswith("_") for k in vars(fresh))


def test_detector_passes_check_estimator_as_a_transformer():
    "scikit-learn's checks run on the PyOD face as on a transformer; the one refused is PyOD's own convention of checking in `__init__`."
    import warnings
    from sklearn.utils.estimator_checks import check_estimator
    det = SparseAEDetector(n_estimators=1, epochs=2, random_state=0)
    assert det.__sklearn_tags__().transformer_tags is not None
    pyod = "PyOD's detectors check their parameters in __init__; set_params refuses what __init__ refuses"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(det, expected_failed_checks={"check_do_not_raise_errors_in_init_or_set_params": pyod},
                                  on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    assert len(results) > 40 and not failed, failed
