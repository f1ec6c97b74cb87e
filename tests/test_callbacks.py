"""The standard Keras callbacks with `train`: EarlyStopping, ModelCheckpoint, BackupAndRestore and TensorBoard."""
import glob

import keras
import numpy as np
import pytest
import tensorflow as tf

from sparse_ae_tf.data import load_mnist
from sparse_ae_tf.models import SparseAutoencoder
from sparse_ae_tf.training import train

(X, _), (X_VAL, _) = load_mnist()
X, X_VAL = X[:1000], X_VAL[:300]


def fresh(seed=0):
    keras.utils.set_random_seed(seed)
    return SparseAutoencoder(784, 24)


def test_early_stopping_stops_and_restores_the_best_weights():
    model, stop = fresh(), keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = train(model, X, epochs=80, batch_size=100, learning_rate=0.1, verbose=0, validation_data=X_VAL, callbacks=[stop])
    assert stop.stopped_epoch > 0 and len(history["objective"]) == stop.stopped_epoch + 1 < 80
    best = model.evaluate(X_VAL, batch_size=100, verbose=0, return_dict=True)["loss"]
    assert best == pytest.approx(min(history["val_objective"]), rel=1e-4)


def test_model_checkpoint_saves_every_epoch_and_the_last_one_is_the_model(tmp_path):
    model = fresh()
    train(model, X, epochs=3, batch_size=100, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.keras"))])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1.keras", "e2.keras", "e3.keras"]
    saved = keras.models.load_model(tmp_path / "e3.keras")
    np.testing.assert_array_equal(saved.predict(X_VAL, verbose=0), model.predict(X_VAL, verbose=0))


def test_model_checkpoint_save_best_only_monitors_val_loss(tmp_path):
    path = tmp_path / "best.weights.h5"
    check = keras.callbacks.ModelCheckpoint(str(path), monitor="val_loss", save_best_only=True, save_weights_only=True)
    history = train(fresh(), X, epochs=4, batch_size=100, verbose=0, validation_data=X_VAL, callbacks=[check])
    restored = fresh(1)
    restored.build((None, 784)); restored.compile(); restored.load_weights(path)
    loss = restored.evaluate(X_VAL, batch_size=100, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(min(history["val_objective"]), rel=1e-4)


class Interrupt(keras.callbacks.Callback):
    "Raise at the end of epoch `at` (0-based), as a crash would."
    def __init__(self, at): super().__init__(); self.at = at
    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at: raise KeyboardInterrupt


def test_backup_and_restore_resumes_exactly_where_the_run_stopped(tmp_path):
    reference = fresh()
    train(reference, X, epochs=4, batch_size=100, verbose=0)
    model, backup = fresh(), str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        train(model, X, epochs=4, batch_size=100, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(backup), Interrupt(1)])
    resumed = fresh(7)  # a new process would start from other weights: the backup must overwrite them
    history = train(resumed, X, epochs=4, batch_size=100, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(backup)])
    assert len(history["objective"]) == 2  # epochs 3 and 4 only
    for a, b in zip(resumed.get_weights(), reference.get_weights()): np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "backup").exists()  # deleted after a finished run


def test_tensorboard_writes_the_objective_and_its_parts(tmp_path):
    train(fresh(), X, epochs=2, batch_size=100, verbose=0, validation_data=X_VAL,
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
    assert tags[("validation", "epoch_loss")] == [0, 1]
