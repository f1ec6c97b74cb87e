"""The standard Keras callbacks with `fit`: EarlyStopping, ModelCheckpoint, BackupAndRestore and TensorBoard, and an
EarlyStopping run interrupted and resumed with `TrainingCheckpoint`."""
import glob

import keras
import numpy as np
import pytest
import tensorflow as tf

from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.training import TrainingCheckpoint

(X, _), (X_VAL, _) = load_mnist()
X, X_VAL = X[:1000], X_VAL[:300]


def fresh(seed=0, learning_rate=1e-3):
    "A compiled 784-24 model; `set_random_seed` also seeds NumPy's generator, from which `fit` draws its shuffling seed."
    keras.utils.set_random_seed(seed)
    model = SparseAutoencoder(784, 24)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def test_early_stopping_stops_and_restores_the_best_weights():
    model, stop = fresh(learning_rate=0.1), keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = model.fit(X, epochs=80, batch_size=100, verbose=0, validation_data=X_VAL, callbacks=[stop]).history
    assert stop.stopped_epoch > 0 and len(history["loss"]) == stop.stopped_epoch + 1 < 80
    best = model.evaluate(X_VAL, batch_size=100, verbose=0, return_dict=True)["loss"]
    assert best == pytest.approx(min(history["val_loss"]), rel=1e-4)


def test_model_checkpoint_saves_every_epoch_and_the_last_one_is_the_model(tmp_path):
    model = fresh()
    model.fit(X, epochs=3, batch_size=100, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.keras"))])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1.keras", "e2.keras", "e3.keras"]
    saved = keras.models.load_model(tmp_path / "e3.keras")
    np.testing.assert_array_equal(saved.predict(X_VAL, verbose=0), model.predict(X_VAL, verbose=0))


def test_model_checkpoint_save_best_only_monitors_val_loss(tmp_path):
    path = tmp_path / "best.weights.h5"
    check = keras.callbacks.ModelCheckpoint(str(path), monitor="val_loss", save_best_only=True, save_weights_only=True)
    history = fresh().fit(X, epochs=4, batch_size=100, verbose=0, validation_data=X_VAL, callbacks=[check]).history
    restored = fresh(1)
    restored.build((None, 784)); restored.load_weights(path)
    loss = restored.evaluate(X_VAL, batch_size=100, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(min(history["val_loss"]), rel=1e-4)


class Interrupt(keras.callbacks.Callback):
    "Raise at the end of epoch `at` (0-based), as a crash would."
    def __init__(self, at): super().__init__(); self.at = at
    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at: raise KeyboardInterrupt


def test_backup_and_restore_resumes_exactly_where_the_run_stopped(tmp_path):
    reference = fresh()
    reference.fit(X, epochs=4, batch_size=100, verbose=0)
    model, backup = fresh(), str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, epochs=4, batch_size=100, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(backup), Interrupt(1)])
    # A new process: Keras's backup holds the weights and the optimizer, not the shuffling seed, which `fit` draws from
    # NumPy's generator, so the process seeds as the first did; its weights are perturbed, and the backup must overwrite them.
    resumed = fresh()
    resumed.build((None, 784))
    rng = np.random.default_rng(7)  # not NumPy's global generator
    resumed.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in resumed.get_weights()])
    history = resumed.fit(X, epochs=4, batch_size=100, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(backup)]).history
    assert len(history["loss"]) == 2  # epochs 3 and 4 only
    for a, b in zip(resumed.get_weights(), reference.get_weights()): np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "backup").exists()  # deleted after a finished run


def test_early_stopping_resumed_with_training_checkpoint_stops_at_the_same_epoch(tmp_path):
    def run(model, *callbacks):
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
        history = model.fit(X, epochs=60, batch_size=100, verbose=0, validation_data=X_VAL, callbacks=[stop, *callbacks]).history
        return stop, history
    whole = fresh(learning_rate=0.1)
    whole_stop, whole_history = run(whole)
    assert 0 < whole_stop.stopped_epoch < 59, whole_stop.stopped_epoch
    at = whole_stop.stopped_epoch - 1  # the epoch before the stop: EarlyStopping has waited patience - 1 epochs
    path = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        run(fresh(learning_rate=0.1), TrainingCheckpoint(path), Interrupt(at))
    # a new process, seeded otherwise: the checkpoint restores the weights, the shuffling and EarlyStopping's count
    # (a checkpoint belongs to a run with the same callbacks, so the `Interrupt` is there, never firing)
    resumed, ckpt = fresh(seed=7, learning_rate=0.1), TrainingCheckpoint(path)
    stop, history = run(resumed, ckpt, Interrupt(-1))
    assert stop.stopped_epoch == whole_stop.stopped_epoch
    # the crash came within epoch `at`'s end, before every callback had seen it: the checkpoint holds the epochs before
    assert len(history["loss"]) == whole_stop.stopped_epoch - at + 1  # this fit ran from epoch `at` to the stop
    assert set(ckpt.history) == set(whole_history)
    for k, values in whole_history.items(): np.testing.assert_array_equal(ckpt.history[k], values, err_msg=k)
    for a, b in zip(resumed.get_weights(), whole.get_weights()): np.testing.assert_array_equal(a, b)  # the best epoch's


def test_tensorboard_writes_the_objective_and_its_parts(tmp_path):
    fresh().fit(X, epochs=2, batch_size=100, verbose=0, validation_data=X_VAL,
                callbacks=[keras.callbacks.TensorBoard(str(tmp_path), update_freq="epoch")])
    tags = {}
    for run in ("train", "validation"):
        for path in glob.glob(str(tmp_path / run / "events.out.tfevents.*")):
            for record in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    tags.setdefault((run, value.tag), []).append(event.step)
    for part in ("loss", "reconstruction", "sparsity", "weight_decay"):
        assert tags[("train", f"epoch_{part}")] == [0, 1]
        assert tags[("validation", f"epoch_{part}")] == [0, 1]
