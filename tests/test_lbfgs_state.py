"train_lbfgs copies back every variable its float64 twin's objective touched, trainable or not (issue 19, class 1)."
import numpy as np
import pytest
import keras

from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.training import _float64_twin, train_lbfgs
from sparse_ae_tf.variants import ContractiveAutoencoder, KSparseAutoencoder

CASES = {  # name: (constructor, the non-trainable variables the forward pass assigns)
    "batchtopk": (lambda: KSparseAutoencoder(784, 32, k=4, activation="batchtopk", momentum=0.5), ("threshold", "batches_seen", "since_fired")),
    "topk": (lambda: KSparseAutoencoder(784, 32, k=4), ("since_fired",)),
    "jumprelu": (lambda: KSparseAutoencoder(784, 32, k=4, activation="jumprelu", initial_threshold=0.05), ("since_fired",)),
    "sparse": (lambda: SparseAutoencoder(784, 16), ()),
    "contractive": (lambda: ContractiveAutoencoder(784, 16), ()),
}

@pytest.fixture(scope="module")
def x(): return load_mnist()[0][0][:128]

@pytest.mark.parametrize("name", list(CASES))
def test_every_touched_variable_comes_back(name, x, monkeypatch):
    make, touched = CASES[name]
    keras.utils.set_random_seed(0)
    model = make()
    twins = []
    import sparse_ae_tf.training as training
    def keep(m):
        twins.append(_float64_twin(m)); return twins[-1]
    monkeypatch.setattr(training, "_float64_twin", keep)
    before = {v.path: np.array(v.numpy()) for v in (model.weights if model.built else [])}
    train_lbfgs(model, x, max_iter=5, jit_compile=False, verbose=0)
    (twin,) = twins
    for mine, theirs in zip(model.weights, twin.weights):  # every weight, trainable or not, is the twin's
        np.testing.assert_allclose(mine.numpy(), theirs.numpy().astype(mine.dtype), rtol=0, atol=0, err_msg=mine.path)
    changed = {v.path.split("/")[-1] for v in model.non_trainable_weights
               if v.path not in before or not np.array_equal(before[v.path], v.numpy())}
    for t in touched: assert any(t == c for c in changed) or t in changed, (t, changed)
    for v in model.non_trainable_weights:
        assert np.isfinite(v.numpy()).all(), v.path

def test_batchtopk_threshold_learned(x):
    keras.utils.set_random_seed(0)
    model = KSparseAutoencoder(784, 32, k=4, activation="batchtopk", momentum=0.5)
    train_lbfgs(model, x, max_iter=5, jit_compile=False, verbose=0)
    threshold = float(model.sparsity_layer.threshold.numpy())
    assert threshold > 0
    l0 = (model.encode(x) > 0).sum(1).mean()
    assert 0 < l0 < 16, l0  # about k = 4 per example, not every positive latent (threshold 0 would give ~half of 32)
