"""scikit-learn conformance of `SparseAETransformer` and `SparseAEOutlierDetector` (with its defaults too): every `check_estimator` check,
pipelines and grid search on real data (`load_digits`), parameter errors, and the outlier detector's conventions."""
import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import sparse_ae_tf.estimators as estimators
from sparse_ae_tf.anomaly import SparseAEDetector, SparseAEOutlierDetector
from sparse_ae_tf.estimators import SparseAETransformer

# Checks that cannot apply to these estimators, with the reason. None: every check applies and passes.
EXPECTED_FAILED_CHECKS = {}


def _tiny(cls, **kw):
    "An estimator small enough for scikit-learn's ~50 checks per estimator (93 fits in all)."
    # batch_size above the checks' sample counts (<= 300): one compiled call per epoch, so each fit traces `train`'s
    # step once; tracing, not training, is what a fit costs here (81 s -> 63 s for the suite)
    small = dict(hidden_dim=4, epochs=2, batch_size=512, random_state=0)
    if "n_estimators" in cls._get_param_names(): small["n_estimators"] = 2  # an ensemble all the same, in fewer fits
    return cls(**{**small, **kw})


# the detector twice: a fixed small code, and the default code (hidden size from PCA)
@parametrize_with_checks([_tiny(SparseAETransformer), _tiny(SparseAEOutlierDetector), _tiny(SparseAEOutlierDetector, hidden_dim="auto")],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def _classifier(scaler, **sae):
    return Pipeline([("scale", scaler),
                     ("sae", SparseAETransformer(**{**dict(epochs=20, learning_rate=1e-2, random_state=0), **sae})),
                     ("clf", LogisticRegression(max_iter=1000))])


# Measured test accuracy (random_state 0, 1, 2): standardised + linear output 0.898, 0.927, 0.918;
# [0, 1] + sigmoid output, KL 0.869, 0.853, 0.878; [0, 1] + sigmoid output, TopK 8 of 32: 0.940, 0.933, 0.944.
@pytest.mark.parametrize("scaler, sae, floor", [
    (StandardScaler(), dict(hidden_dim=32), 0.87),
    (MinMaxScaler(), dict(hidden_dim=32, output_activation="sigmoid"), 0.83),
    (MinMaxScaler(), dict(hidden_dim=32, output_activation="sigmoid", sparsity="topk", k=8, hidden_activation="relu"), 0.91),
])
def test_pipeline_on_digits(digits, scaler, sae, floor):
    X_train, X_test, y_train, y_test = digits
    pipe = _classifier(scaler, **sae).fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > floor
    codes = pipe[:-1].transform(X_test)
    assert codes.shape == (len(X_test), 32)
    if sae.get("sparsity") == "topk": assert ((codes > 0).sum(1) <= 8).all()
    assert list(pipe[:-1].get_feature_names_out()[:2]) == ["sparseaetransformer0", "sparseaetransformer1"]


def test_grid_search_on_digits(digits):
    "A 4-unit code is far worse than a 32-unit one (measured, 2 folds, random_state 0-2: 0.62-0.63 against 0.89-0.92)."
    X_train, X_test, y_train, y_test = digits
    search = GridSearchCV(_classifier(StandardScaler(), epochs=10), {"sae__hidden_dim": [4, 32]}, cv=2).fit(X_train, y_train)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"sae__hidden_dim": 32}
    assert scores[1] > 0.85 and scores[0] < scores[1] - 0.15, scores
    assert search.score(X_test, y_test) > 0.87
    assert search.best_estimator_.named_steps["sae"].n_features_in_ == 64


@pytest.mark.parametrize("cls", [SparseAETransformer, SparseAEOutlierDetector])
def test_params_round_trip(cls):
    est = cls(hidden_dim=7, sparsity="topk", k=3, hidden_activation="relu", epochs=3, random_state=5)
    params = est.get_params()
    assert params["hidden_dim"] == 7 and params["k"] == 3 and params["random_state"] == 5
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    assert cls(**params).get_params() == params
    assert twin.set_params(hidden_dim=9, k=2) is twin and twin.get_params()["hidden_dim"] == 9
    assert est.get_params()["hidden_dim"] == 7
    assert "hidden_dim=7" in repr(est)


def _boom(*args, **kwargs):
    raise AssertionError("training started before the parameters were checked")


@pytest.mark.parametrize("cls", [SparseAETransformer, SparseAEOutlierDetector])
@pytest.mark.parametrize("params, message", [
    (dict(hidden_dim=0), "hidden_dim=0"),
    (dict(epochs=0), "epochs=0"),
    (dict(batch_size=1.5), "batch_size=1.5"),
    (dict(learning_rate=0), "learning_rate=0"),
    (dict(sparsity="kl1"), "sparsity='kl1'"),
    (dict(rho=1.5), "rho=1.5"),
    (dict(sparsity="topk", k=None), "k=None"),
    (dict(sparsity="topk", k=9, hidden_dim=4, hidden_activation="relu"), "k=9"),
    (dict(hidden_activation="relu"), "hidden_activation='relu'"),
    (dict(output_activation="softish"), "output_activation='softish'"),
    (dict(loss="l2"), "loss='l2'"),
    (dict(noise="blur"), "noise='blur'"),
    (dict(random_state="seed"), "random_state='seed'"),
])
def test_bad_params_named_before_training(monkeypatch, cls, params, message):
    monkeypatch.setattr(estimators.SparseAutoencoder, "fit", _boom)
    est = cls(**params)  # the constructor only stores
    with pytest.raises(ValueError, match=re.escape(message)):
        est.fit(np.random.default_rng(0).normal(size=(20, 5)))


@pytest.mark.parametrize("contamination", [0.0, 0.6, -0.1, "most", None])
def test_bad_contamination(monkeypatch, contamination):
    monkeypatch.setattr(estimators.SparseAutoencoder, "fit", _boom)
    with pytest.raises(ValueError, match=re.escape(f"contamination={contamination!r}")):
        SparseAEOutlierDetector(contamination=contamination).fit(np.zeros((10, 3)))


def test_bce_refuses_data_outside_unit_interval(monkeypatch):
    monkeypatch.setattr(estimators.SparseAutoencoder, "fit", _boom)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        SparseAETransformer(loss="bce", output_activation="sigmoid").fit(np.arange(12.0).reshape(4, 3))
    with pytest.warns(UserWarning, match="output_activation='tanh'"):
        with pytest.raises(AssertionError, match="training started"):
            SparseAETransformer(output_activation="tanh").fit(np.arange(12.0).reshape(4, 3))


@pytest.fixture(scope="module")
def fitted_detectors(digits):
    "One scaler and detector per contamination, fitted on the training digits 0-4."
    X_train, X_test, y_train, y_test = digits
    scaler = StandardScaler().fit(X_train[y_train <= 4])
    Xn = scaler.transform(X_train[y_train <= 4])
    fitted = {c: SparseAEOutlierDetector(contamination=c, random_state=0).fit(Xn)  # its defaults
              for c in ("auto", 0.1, 0.25)}
    return scaler, Xn, scaler.transform(X_test), y_test >= 5, fitted


def test_detector_flags_contamination_share(fitted_detectors):
    _, Xn, _, _, fitted = fitted_detectors
    for c in (0.1, 0.25):
        det = fitted[c]
        flagged = det.predict(Xn) == -1
        assert abs(flagged.mean() - c) <= 1 / len(Xn), (c, flagged.mean())
        assert np.isclose(det.threshold_, np.percentile(det.decision_scores_, 100 * (1 - c)))
    auto = fitted["auto"]
    assert np.isclose(auto.threshold_, auto.decision_scores_.mean() + 3 * auto.decision_scores_.std())
    assert 0 < (auto.predict(Xn) == -1).mean() < 0.05


def test_detector_sign_conventions(fitted_detectors):
    _, Xn, X_test, is_outlier, fitted = fitted_detectors
    det = fitted[0.1]
    scores, decision, pred = det.score_samples(X_test), det.decision_function(X_test), det.predict(X_test)
    assert scores.dtype == np.float64 and pred.dtype.kind == "i" and set(np.unique(pred)) == {-1, 1}
    assert np.all(scores <= 0)  # minus a reconstruction error
    np.testing.assert_allclose(decision, scores - det.offset_)
    assert det.offset_ == -det.threshold_
    np.testing.assert_array_equal(pred == -1, -scores > det.threshold_)
    np.testing.assert_array_equal(pred, np.where(decision < 0, -1, 1))
    np.testing.assert_allclose(-det.score_samples(Xn), det.decision_scores_)
    # higher score = more normal: the unseen digits 5-9 score lower (measured AUROC 0.957, random_state 0)
    assert roc_auc_score(is_outlier, -scores) > 0.93
    assert (pred[is_outlier] == -1).mean() > 2 * (pred[~is_outlier] == -1).mean()
    np.testing.assert_array_equal(det.fit_predict(Xn), det.predict(Xn))


def test_detector_scores_match_pyod_style_detector(fitted_detectors):
    "Same settings and seed: the PyOD-style `SparseAEDetector` computes the same errors, with the opposite sign."
    _, Xn, X_test, _, _ = fitted_detectors
    kw = dict(hidden_dim=8, rho=0.1, output_activation="linear", epochs=3, learning_rate=1e-2)
    ours = SparseAEOutlierDetector(random_state=4, **kw).fit(Xn)
    pyod = SparseAEDetector(random_state=4, contamination=0.1, **kw).fit(Xn)
    np.testing.assert_allclose(ours.decision_scores_, pyod.decision_scores_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(-ours.score_samples(X_test), pyod.decision_function(X_test), rtol=1e-4, atol=1e-5)


def test_dataframe_in_and_out():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 3)), columns=["a", "b", "c"])
    sae = SparseAETransformer(hidden_dim=5, epochs=2, random_state=0).set_output(transform="pandas").fit(X)
    assert list(sae.feature_names_in_) == ["a", "b", "c"]
    out = sae.transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == [f"sparseaetransformer{i}" for i in range(5)]
    assert sae.inverse_transform(out.to_numpy()).shape == (40, 3)
    with pytest.raises(ValueError, match="5 columns"):
        sae.inverse_transform(X.to_numpy())


def test_random_state_repeatable_and_none_varies():
    X = np.random.default_rng(1).normal(size=(60, 6))
    a, b = (SparseAETransformer(hidden_dim=4, epochs=3, batch_size=16, random_state=11).fit(X) for _ in range(2))
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    c, d = (SparseAETransformer(hidden_dim=4, epochs=3).fit(X) for _ in range(2))
    assert not np.allclose(c.transform(X), d.transform(X))
    rng_fit = SparseAETransformer(hidden_dim=4, epochs=1, random_state=np.random.RandomState(0)).fit(X)
    assert rng_fit.transform(X).shape == (60, 4)


@pytest.mark.parametrize("cls", [SparseAETransformer, SparseAEOutlierDetector])
@pytest.mark.parametrize("user_seed", [None, 7])
def test_seeded_fit_puts_tensorflow_global_seed_back(cls, user_seed):
    "`keras.utils.set_random_seed` sets TensorFlow's global seed; a seeded fit puts it back as it was, None included."
    tf = pytest.importorskip("tensorflow")
    from tensorflow.python.eager import context
    try:
        if user_seed is None: context.set_global_seed(None)
        else: tf.random.set_seed(user_seed)
        cls(hidden_dim=3, epochs=1, random_state=0).fit(np.random.default_rng(0).random((20, 4)))
        assert context.global_seed() == user_seed
    finally:
        context.set_global_seed(None)


def test_k_is_ignored_by_the_other_sparsities_so_a_grid_search_may_vary_sparsity_alone():
    from sklearn.model_selection import GridSearchCV
    X = np.random.default_rng(0).random((60, 6))
    search = GridSearchCV(SparseAETransformer(hidden_dim=4, k=2, hidden_activation="relu", epochs=1, random_state=0),
                          {"sparsity": ["topk", "l1", None]}, cv=2, error_score="raise",
                          scoring=lambda est, X, y=None: -float(np.mean((est.inverse_transform(est.transform(X)) - X) ** 2))).fit(X)
    assert len(search.cv_results_["mean_test_score"]) == 3 and np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.model_.k == (2 if search.best_estimator_.sparsity == "topk" else None)
