"""A failed refit leaves a SparseAETransformer exactly as before (issue 19, class 8): a seeded table of fits that raise
(bad data, a width change with a training that then fails, warnings turned into errors, an interrupt inside Keras's
fit, a divergence) from a fitted and from an unfitted transformer; `tests/refit_contract.py` holds the check."""
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from refit_contract import assert_failed_fit_changes_nothing
from sparse_ae_tf.estimators import SparseAETransformer
from sparse_ae_tf.models import SparseAutoencoder

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 6))
X7 = rng.normal(size=(60, 7))

def interrupt(*args, **kwargs): raise KeyboardInterrupt

def with_warnings_as_errors(fit):
    def run(est):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit(est)
    return run

CASES = {  # name: (parameters set before the fit, the failing fit)
    "nan-rows": ({}, lambda est: est.fit(np.full((5, 6), np.nan))),
    "nan-dataframe-new-names": ({}, lambda est: est.fit(pd.DataFrame(np.full((5, 3), np.nan), columns=list("abc")))),
    "one-dimensional": ({}, lambda est: est.fit(np.ones(6))),
    "new-width-bad-hidden-dim": (dict(hidden_dim=0), lambda est: est.fit(X7)),
    "new-width-bad-epochs": (dict(epochs=0), lambda est: est.fit(X7)),
    "new-width-kl-with-relu": (dict(hidden_activation="relu"), lambda est: est.fit(X7)),
    "output-range-warning-as-error": (dict(output_activation="sigmoid"), with_warnings_as_errors(lambda est: est.fit(X7))),
    "divergence-warning-as-error": (dict(learning_rate=1e30, sparsity=None, hidden_activation="linear"),
                                    with_warnings_as_errors(lambda est: est.fit(X7 * 1e18))),
}

@pytest.fixture
def fitted():
    return SparseAETransformer(hidden_dim=3, epochs=2, batch_size=16, random_state=0).fit(X)

@pytest.mark.parametrize("case", list(CASES))
def test_failed_refit_of_a_fitted_transformer(case, fitted):
    params, (change, fit) = fitted.get_params(), CASES[case]
    fitted.set_params(**change)
    assert_failed_fit_changes_nothing(fitted, fit, X[:7], ("transform", "get_feature_names_out"), expect=(ValueError, Warning))
    fitted.set_params(**params)
    assert fitted.transform(X[:3]).shape == (3, 3)  # still takes its own data

@pytest.mark.parametrize("case", ["nan-dataframe-new-names", "new-width-bad-hidden-dim", "output-range-warning-as-error"])
def test_failed_first_fit_leaves_it_unfitted(case):
    change, fit = CASES[case]
    est = SparseAETransformer(hidden_dim=3, epochs=1, random_state=0).set_params(**change)
    assert_failed_fit_changes_nothing(est, fit, X[:7], ("transform",), expect=(ValueError, Warning))
    assert not any(k.endswith("_") for k in vars(est))

def test_interrupt_inside_keras_fit(fitted, monkeypatch):
    monkeypatch.setattr(SparseAutoencoder, "fit", interrupt)
    assert_failed_fit_changes_nothing(fitted, lambda est: est.fit(X7), X[:7], ("transform",), expect=KeyboardInterrupt)

@pytest.mark.parametrize("seed", range(3))
def test_random_failures(seed, fitted, monkeypatch):
    "Property, seeded: train on a random width and rows, failing at a random step of Keras's fit; nothing changes."
    r = np.random.default_rng(seed)
    width, step = int(r.integers(2, 9)), int(r.integers(1, 4))
    calls = {"n": 0}
    class Fail(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            calls["n"] += 1
            if calls["n"] == step: raise RuntimeError(f"failure injected at step {step}")
    original = SparseAutoencoder.fit
    monkeypatch.setattr(SparseAutoencoder, "fit", lambda self, *a, **k: original(self, *a, **{**k, "callbacks": [Fail()]}))
    Xr = r.normal(size=(int(r.integers(20, 50)), width))
    assert_failed_fit_changes_nothing(fitted, lambda est: est.fit(Xr), X[:7], ("transform",), expect=RuntimeError)
