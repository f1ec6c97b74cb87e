"""Bad input, one table: every public entry point refuses it before any training starts, with a `ValueError` or
`TypeError` (the CLI: exit status 2 and one line on stderr) whose message names the argument and the value received."""
import contextlib
import io
import os

import keras
import numpy as np
import pytest

from sparse_ae_tf import cli, data, files, metrics, noise, sparsity
from sparse_ae_tf.anomaly import SparseAEDetector
from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.training import train_lbfgs
from sparse_ae_tf.validation import check_array

X = np.random.default_rng(0).uniform(0, 1, (64, 20)).astype("float32")
NAN = X.copy(); NAN[3, 4] = np.nan
INF = X.copy(); INF[5, 0] = np.inf


def model(**kw): return SparseAutoencoder(20, 8, **kw)


def compiled(**kw):
    m = model(**kw)
    m.compile()
    return m


CASES = [
    # (name, call, exception, text the message must contain)
    ("rho zero", lambda: model(rho=0.0), ValueError, "rho=0.0"),
    ("rho one", lambda: model(rho=1.0), ValueError, "rho=1.0"),
    ("rho text", lambda: model(rho="0.1"), ValueError, "rho='0.1'"),
    ("beta negative", lambda: model(beta=-1.0), ValueError, "beta=-1.0"),
    ("beta nan", lambda: model(beta=float("nan")), ValueError, "beta=nan"),
    ("lambda negative", lambda: model(weight_decay=-1e-4), ValueError, "weight_decay=-0.0001"),
    ("l1 negative", lambda: model(sparsity="l1", l1=-1.0), ValueError, "l1=-1.0"),
    ("k above hidden", lambda: model(sparsity="topk", k=9, hidden_activation="relu"), ValueError, "k=9"),
    ("k zero", lambda: model(sparsity="topk", k=0, hidden_activation="relu"), ValueError, "k=0"),
    ("topk without k", lambda: model(sparsity="topk", hidden_activation="relu"), ValueError, "k=None"),
    ("kl on relu", lambda: model(hidden_activation="relu"), ValueError, "hidden_activation='relu'"),
    ("kl on tanh", lambda: model(hidden_activation="tanh"), ValueError, "hidden_activation='tanh'"),
    ("unknown sparsity", lambda: model(sparsity="kld"), ValueError, "sparsity='kld'"),
    ("unknown loss", lambda: model(loss="l2"), ValueError, "loss='l2'"),
    ("bce on linear output", lambda: model(loss="bce", output_activation="linear"), ValueError, "output_activation='linear'"),
    ("input_dim zero", lambda: SparseAutoencoder(0, 8), ValueError, "input_dim=0"),
    ("hidden_dim float", lambda: SparseAutoencoder(20, 8.5), ValueError, "hidden_dim=8.5"),
    ("KLSparsity rho", lambda: sparsity.KLSparsity(rho=1.2), ValueError, "rho=1.2"),
    ("KLSparsity beta", lambda: sparsity.KLSparsity(beta=-2), ValueError, "beta=-2"),
    ("L1Sparsity l1", lambda: sparsity.L1Sparsity(-0.5), ValueError, "l1=-0.5"),
    ("TopK k", lambda: sparsity.TopK(-1), ValueError, "k=-1"),
    ("TopK k above units", lambda: sparsity.TopK(30)(X), ValueError, "k=30"),
    ("HalfL2 lam", lambda: sparsity.HalfL2(-1.0), ValueError, "lam=-1.0"),
    ("fit NaN", lambda: model().fit(NAN), ValueError, "NaN or infinite"),
    ("fit inf", lambda: model().fit(INF), ValueError, "NaN or infinite"),
    ("fit wrong features", lambda: model().fit(X[:, :5]), ValueError, "must have 20 features"),
    ("fit 1-D", lambda: model().fit(X[0]), ValueError, "got shape (20,)"),
    ("fit empty", lambda: model().fit(X[:0]), ValueError, "must not be empty"),
    ("fit strings", lambda: model().fit(np.full((3, 20), "a")), TypeError, "dtype <U1"),
    ("fit bce targets", lambda: model(loss="bce").fit(X * 3), ValueError, "needs `x` in [0, 1]"),
    ("compiled fit NaN", lambda: compiled().fit(NAN, verbose=0), ValueError, "NaN or infinite"),
    ("fit wrong rank", lambda: compiled().fit(X[None], verbose=0), ValueError, "got shape (1, 64, 20)"),
    ("compiled fit wrong features", lambda: compiled().fit(X[:, :19], verbose=0), ValueError, "must have 20 features"),
    ("fit epochs", lambda: compiled().fit(X, epochs=0, verbose=0), ValueError, "epochs=0"),
    ("fit batch_size", lambda: compiled().fit(X, batch_size=2.5, verbose=0), ValueError, "batch_size=2.5"),
    ("compile steps_per_execution", lambda: model().compile(steps_per_execution=0), ValueError, "steps_per_execution=0"),
    ("fit uncompiled", lambda: model().fit(X, verbose=0), ValueError, "compile the model before `fit`"),
    ("compiled fit bce targets", lambda: compiled(loss="bce").fit(X * 2, verbose=0), ValueError, "needs `x` in [0, 1]"),
    ("lbfgs inf", lambda: train_lbfgs(model(), INF, verbose=0), ValueError, "NaN or infinite"),
    ("lbfgs max_iter", lambda: train_lbfgs(model(), X, max_iter=0, verbose=0), ValueError, "max_iter=0"),
    ("check_array object", lambda: check_array(np.array([[object()]]), "data"), TypeError, "`data` must hold numbers"),
    ("load_mnist test_size", lambda: data.load_mnist(test_size=1.5), ValueError, "test_size=1.5"),
    ("load_mnist digits", lambda: data.load_mnist(digits=[11]), ValueError, "digits=[11]"),
    ("natural_patches n", lambda: data.natural_patches(n=0), ValueError, "n=0"),
    ("metrics shapes", lambda: metrics.reconstruction_error(X, X[:, :3]), ValueError, "x_hat"),
    ("psnr range", lambda: metrics.psnr(X, X, data_range=-1), ValueError, "data_range=-1"),
    ("save_model suffix", lambda: files.save_model(model(), "m.h5"), ValueError, "path='m.h5'"),
    ("load_model missing", lambda: files.load_model("/nonexistent/m.keras"), FileNotFoundError, "/nonexistent/m.keras"),
    ("noise kind", lambda: model(noise="blur"), ValueError, "noise='blur'"),
    ("noise level negative", lambda: model(noise="gaussian", noise_level=-0.1), ValueError, "noise_level=-0.1"),
    ("masking rate above 1", lambda: model(noise="masking", noise_level=1.5), ValueError, "noise_level=1.5"),
    ("GaussianCorruption", lambda: noise.GaussianCorruption(-1.0), ValueError, "-1.0"),
    ("SaltPepperCorruption", lambda: noise.SaltPepperCorruption(2.0), ValueError, "2.0"),
    ("corrupt level", lambda: noise.corrupt(X, "gaussian", -0.5), ValueError, "noise_level=-0.5"),
    ("detector rule", lambda: SparseAEDetector(rule="median"), ValueError, "rule='median'"),
    ("detector contamination", lambda: SparseAEDetector(rule="contamination", contamination=0.7), ValueError, "contamination=0.7"),
    ("detector n_std", lambda: SparseAEDetector(n_std=-1), ValueError, "n_std=-1"),
    ("detector value missing", lambda: SparseAEDetector(rule="value"), ValueError, "threshold_value=None"),
    ("detector epochs", lambda: SparseAEDetector(epochs=0), ValueError, "epochs=0"),
    ("detector learning_rate", lambda: SparseAEDetector(learning_rate=0), ValueError, "learning_rate=0"),
    ("detector fit NaN", lambda: SparseAEDetector(epochs=1).fit(NAN), ValueError, "NaN or infinite"),
    ("detector fit rho", lambda: SparseAEDetector(rho=2.0, epochs=1).fit(X), ValueError, "rho=2.0"),
    ("detector fit k", lambda: SparseAEDetector(sparsity="topk", k=100, hidden_activation="relu", epochs=1).fit(X), ValueError, "k=100"),
    ("detector score features", lambda: SparseAEDetector(hidden_dim=4, epochs=1).fit(X).score_samples(X[:, :3]), ValueError, "features"),
    ("detector set_threshold", lambda: SparseAEDetector(hidden_dim=4, epochs=1).fit(X).set_threshold(contamination=0.9), ValueError, "contamination=0.9"),
]


@pytest.mark.parametrize("name, call, error, text", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly(name, call, error, text):
    with pytest.raises(error) as info: call()
    assert text in str(info.value), f"{name}: message {str(info.value)!r} lacks {text!r}"


def test_refused_before_any_training():
    "A refused call leaves the model's weights as they were."
    m = compiled(); m.build((None, 20)); before = [w.copy() for w in m.get_weights()]
    for bad in (NAN, X[:, :5], X[:0]):
        with pytest.raises(ValueError): m.fit(bad, verbose=0)
    for a, b in zip(before, m.get_weights()): np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    np.save(d / "nan.npy", NAN); np.save(d / "ok.npy", X); np.save(d / "rank3.npy", X[None])
    (d / "text.csv").write_text("a,b\nc,d\n"); (d / "empty.csv").write_text("")
    (d / "corrupt.keras").write_bytes(b"PK\x03\x04 truncated")
    return d


CLI_CASES = [
    ("missing data file", ["train", "--data", "{d}/none.npy"], "does not exist"),
    ("NaN data", ["train", "--data", "{d}/nan.npy"], "NaN or infinite"),
    ("wrong rank", ["train", "--data", "{d}/rank3.npy"], "2-D"),
    ("non-numeric csv", ["train", "--data", "{d}/text.csv"], "text.csv"),
    ("empty csv", ["train", "--data", "{d}/empty.csv"], "empty.csv"),
    ("unknown suffix", ["train", "--data", "{d}/data.txt"], ".txt"),
    ("rho", ["train", "--data", "{d}/ok.npy", "--rho", "1.5"], "rho"),
    ("beta", ["train", "--data", "{d}/ok.npy", "--beta", "-1"], "beta"),
    ("lam", ["train", "--data", "{d}/ok.npy", "--lam", "-0.1"], "weight_decay"),
    ("epochs", ["train", "--epochs", "0"], "--epochs"),
    ("batch size", ["train", "--batch-size", "x"], "--batch-size"),
    ("corrupt model", ["encode", "{d}/corrupt.keras", "{d}/ok.npy", "--output", "{d}/f.npy"], "corrupt.keras"),
    ("missing model", ["score", "{d}/none.keras", "{d}/ok.npy"], "none.keras"),
]


@pytest.mark.parametrize("name, argv, text", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(name, argv, text, data_files, tmp_path):
    argv = [a.format(d=data_files) for a in argv]
    if argv[0] == "train": argv += ["--output", str(tmp_path / "out")]
    err = io.StringIO()
    with contextlib.redirect_stderr(err): status = cli.main(argv)
    lines = err.getvalue().strip().splitlines()
    assert status == 2, f"{name}: exit status {status}"
    assert len(lines) == 1 and lines[0].startswith("sparse-ae: error:"), lines
    assert text in lines[0], f"{name}: {lines[0]!r} lacks {text!r}"
    assert not (tmp_path / "out").exists() and not (data_files / "f.npy").exists()
