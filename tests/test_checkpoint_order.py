"""Resume equals the uninterrupted run whatever the place of `TrainingCheckpoint` among EarlyStopping,
ReduceLROnPlateau, ModelCheckpoint and a custom stateful callback, and a malformed or missing entry of the file is
refused before anything is assigned: the model, its optimizer and the random generators stay bit-identical
(issue 19, class 7)."""
import json
import random

import keras
import numpy as np
import pytest

from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.files import read_checkpoint, save_checkpoint
from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.training import TrainingCheckpoint

X = load_mnist()[0][0][:96]


class Counter(keras.callbacks.Callback):
    "A stateful callback of the user's: counts epochs and sums the loss, at epoch end."
    state_attributes = ("epochs_seen", "loss_sum")
    def __init__(self): super().__init__(); self.epochs_seen, self.loss_sum = 0, 0.0
    def on_train_begin(self, logs=None): self.epochs_seen, self.loss_sum = 0, 0.0
    def on_epoch_end(self, epoch, logs=None): self.epochs_seen += 1; self.loss_sum += float(logs["loss"])


def others(tmp, stop=False):
    "The four stateful callbacks, in a fixed order; `stop`: EarlyStopping stops after 2 epochs, restoring the best weights."
    early = (keras.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=1, restore_best_weights=True) if stop
             else keras.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=10))  # counts every epoch
    return [early, keras.callbacks.ReduceLROnPlateau(monitor="loss", min_delta=1e9, patience=1, factor=0.5, min_lr=0.0),
            keras.callbacks.ModelCheckpoint(str(tmp / "best.keras"), monitor="loss", save_best_only=True), Counter()]


def fresh(seed=0):
    keras.utils.set_random_seed(seed)
    m = SparseAutoencoder(784, 8)
    m.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    return m


def summary(model, callbacks):
    "What must match: weights, optimizer variables (the learning rate included), the callbacks' counts."
    early, plateau, _, counter = callbacks
    return ([w.copy() for w in model.get_weights()], [np.array(v.numpy()) for v in model.optimizer.variables],
            (early.wait, early.stopped_epoch, plateau.wait, plateau.cooldown_counter, counter.epochs_seen, counter.loss_sum))


def assert_same(a, b):
    for x, y in zip(a[0] + a[1], b[0] + b[1]): np.testing.assert_array_equal(x, y)
    assert a[2] == b[2]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whole")
    model, cbs = fresh(), others(tmp)
    model.fit(X, epochs=4, batch_size=32, verbose=0, callbacks=cbs)
    return summary(model, cbs)


ORDERS = [(pos, rev) for pos in range(5) for rev in (False, True)]

@pytest.mark.parametrize("position, reverse", ORDERS, ids=[f"at{p}{'-reversed' if r else ''}" for p, r in ORDERS])
def test_resume_equals_uninterrupted_in_any_order(position, reverse, whole, tmp_path):
    def callbacks(run):
        cbs = others(tmp_path)
        order = cbs[::-1] if reverse else list(cbs)
        order.insert(position, run)
        return cbs, order
    cbs, order = callbacks(TrainingCheckpoint(tmp_path / "run.npz"))
    fresh().fit(X, epochs=2, batch_size=32, verbose=0, callbacks=order)  # interrupted after 2 epochs
    model = fresh(seed=5)  # other initial weights: the file replaces them
    cbs, order = callbacks(run := TrainingCheckpoint(tmp_path / "run.npz"))
    model.fit(X, epochs=4, batch_size=32, verbose=0, callbacks=order)
    assert_same(summary(model, cbs), whole)
    assert len(run.history["loss"]) == 4
    for c in order:  # the checkpoint's hooks are gone after the run
        assert "on_epoch_end" not in vars(c) and "on_train_begin" not in vars(c)


@pytest.mark.parametrize("position", [0, 4])
def test_resume_after_early_stop(position, tmp_path):
    "The run stopped itself after 2 of 4 epochs; resuming it runs no epoch and ends where it ended (best weights)."
    model, cbs = fresh(), others(tmp_path, stop=True)
    model.fit(X, epochs=4, batch_size=32, verbose=0, callbacks=cbs)
    stopped = summary(model, cbs)
    assert cbs[0].stopped_epoch == 1
    def run(seed):
        m, c = fresh(seed), others(tmp_path, stop=True)
        order = list(c); order.insert(position, TrainingCheckpoint(tmp_path / "stop.npz"))
        h = m.fit(X, epochs=4, batch_size=32, verbose=0, callbacks=order).history
        return m, c, h
    run(0)
    m, c, h = run(5)
    assert h.get("loss", []) == []  # no epoch ran
    assert_same(summary(m, c), stopped)


def _edit(path, change):
    arrays, state = read_checkpoint(path)
    change(arrays, state)
    save_checkpoint(path, arrays, state)

MALFORMED = {
    "rng-missing": lambda a, s: s.pop("rng"),
    "rng-garbage": lambda a, s: s.__setitem__("rng", {"numpy": [1, 2], "python": None}),
    "rng-python-bad": lambda a, s: s["rng"].__setitem__("python", [3, [1, 2], None]),
    "seed-missing": lambda a, s: s.pop("seed"),
    "seed-negative": lambda a, s: s.__setitem__("seed", -1),
    "seed-string": lambda a, s: s.__setitem__("seed", "7"),
    "epoch-missing": lambda a, s: s.pop("epoch"),
    "epoch-zero": lambda a, s: s.__setitem__("epoch", 0),
    "epoch-float": lambda a, s: s.__setitem__("epoch", 2.0),
    "history-missing": lambda a, s: s.pop("history"),
    "history-too-long": lambda a, s: s["history"].__setitem__("loss", [1.0] * 9),
    "history-strings": lambda a, s: s["history"].__setitem__("loss", ["a", "b"]),
    "callbacks-missing": lambda a, s: s.pop("callbacks"),
    "callback-state-foreign": lambda a, s: s["callbacks"][0]["state"].__setitem__("patience", 0),
    "callback-state-none": lambda a, s: s["callbacks"][0].__setitem__("state", None),
    "stopped-not-bool": lambda a, s: s.__setitem__("stopped", "yes"),
    "weights-missing": lambda a, s: a.pop("model/0"),
    "weights-nan": lambda a, s: a["model/1"].fill(np.nan),
    "optimizer-wrong-shape": lambda a, s: a.__setitem__("optimizer/2", np.zeros(3, "float32")),
}

@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("good")
    fresh().fit(X, epochs=2, batch_size=32, verbose=0, callbacks=[TrainingCheckpoint(tmp / "run.npz")] + others(tmp))
    return tmp / "run.npz"

@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_entry_assigns_nothing(case, good_checkpoint, tmp_path):
    path = tmp_path / "run.npz"
    path.write_bytes(good_checkpoint.read_bytes())
    _edit(path, MALFORMED[case])
    model = fresh(seed=5)
    model.build((None, 784)); model.optimizer.build(model.trainable_variables)
    before = ([np.array(v.numpy()) for v in model.variables + model.optimizer.variables],
             )
    with pytest.raises(ValueError, match="run.npz"):
        model.fit(X, epochs=4, batch_size=32, verbose=0, callbacks=[TrainingCheckpoint(path)] + others(tmp_path))
    after = [np.array(v.numpy()) for v in model.variables + model.optimizer.variables]
    for a, b in zip(before[0], after): np.testing.assert_array_equal(a, b)
