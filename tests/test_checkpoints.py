"""Files are whole or absent: atomic writes, checkpoints that survive SIGKILL, exact resume, no empty run folders.

The kill test runs `kerasface.train.train` in a subprocess whose weight writer
truncates the file it was given to half and blocks, as a save interrupted half
way; the test kills it with SIGKILL there. Keras' own callbacks write in place
(keras/src/callbacks/backup_and_restore.py `_save_model`, model_checkpoint.py
`_save_model`), so the same kill would leave a damaged backup.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import kerasface.zoo  # noqa: F401  (registers the objects of the saved models)
from kerasface import checkpoints
from kerasface.checkpoints import AtomicBackupAndRestore, AtomicModelCheckpoint, atomic_path, removed_on_failure
from kerasface.train import train

RECIPE = "lenetpp_center"  # LeNet++ with centre loss: weights, centres and optimiser state must all resume
IMAGES = 32
# One full batch per epoch: the order Keras shuffles the arrays in cannot change the result.
SETTINGS = dict(epochs=3, batch_size=IMAGES, verbose=0)


def arrays():
    rng = np.random.default_rng(0)
    labels = np.arange(IMAGES) % 4
    images = rng.integers(0, 60, (IMAGES, 28, 28, 1)).astype(np.uint8)
    for label in range(4):  # each class its own bright band
        images[labels == label, label * 7 : label * 7 + 7] += 150
    return images, labels


def weights_of(model):
    return [np.asarray(w) for w in model.get_weights()] + [np.asarray(v) for v in model.optimizer.variables]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The weights and optimiser state after the uninterrupted run."""
    model, history = train(RECIPE, arrays(), tmp_path_factory.mktemp("reference") / "run", **SETTINGS)
    assert len(history.history["loss"]) == 3
    return weights_of(model)


def assert_same_state(model, reference):
    state = weights_of(model)
    assert len(state) == len(reference)
    for got, expected in zip(state, reference):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


class Stop(Exception):
    pass


class StopAt(keras.callbacks.Callback):
    """Raises at the end of `batch` of `epoch` (0-based), as a crash would."""

    def __init__(self, epoch, batch=None):
        super().__init__()
        self.epoch, self.batch = epoch, batch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch and self.batch is None:
            raise Stop

    def on_train_batch_end(self, batch, logs=None):
        if self.batch is not None and batch == self.batch:
            raise Stop


# === Atomic writes ===


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.keras"
    checkpoints.write_bytes(target, b"first")
    with pytest.raises(Stop), atomic_path(target) as partial:
        assert partial.parent == tmp_path and partial.name.startswith(".model.partial-")
        assert partial.name.endswith(".keras")  # Keras checks the suffix
        partial.write_bytes(b"half")
        raise Stop
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_a_folder_replaces_a_folder_and_a_killed_write_is_cleaned_on_the_next(tmp_path):
    target = tmp_path / "saved_model"
    for version in ("1", "2"):
        with atomic_path(target) as partial:
            partial.mkdir()
            (partial / "saved_model.pb").write_text(version)
    assert (target / "saved_model.pb").read_text() == "2" and len(list(tmp_path.iterdir())) == 1
    leftover = checkpoints.partial_path(target)  # what a SIGKILL during a write leaves
    leftover.mkdir()
    checkpoints.write_text(tmp_path / "other.json", "{}")
    assert leftover.exists()  # another target's write leaves it alone
    with atomic_path(target) as partial:
        partial.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json", "saved_model"]


@pytest.mark.backends
def test_model_checkpoint_keeps_the_last_whole_checkpoint_when_a_save_fails(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    path = tmp_path / "checkpoint.keras"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[AtomicModelCheckpoint(str(path))])
    saved = path.read_bytes()
    save = keras.Model.save

    def half_save(self, filepath, *args, **kwargs):
        save(self, filepath, *args, **kwargs)
        with open(filepath, "r+b") as handle:
            handle.truncate(os.path.getsize(filepath) // 2)
        raise Stop

    monkeypatch.setattr(keras.Model, "save", half_save)
    with pytest.raises(Stop):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[AtomicModelCheckpoint(str(path))])
    assert path.read_bytes() == saved and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.keras"]
    monkeypatch.undo()
    keras.saving.load_model(path)


@pytest.mark.backends
def test_backups_written_by_keras_own_callback_still_resume(tmp_path):
    def fit(callback, stop=None):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile("sgd", "mse")
        x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
        return model.fit(x, y, epochs=4, verbose=0, callbacks=[callback] + ([stop] if stop else []))

    with pytest.raises(Stop):
        fit(keras.callbacks.BackupAndRestore(str(tmp_path)), StopAt(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.weights.h5", "training_metadata.json"]
    history = fit(AtomicBackupAndRestore(str(tmp_path)))
    assert len(history.history["loss"]) == 2  # epochs 3 and 4


@pytest.mark.backends
def test_a_damaged_backup_is_refused_naming_the_file(tmp_path):
    (tmp_path / "training_metadata.json").write_text('{"epo')
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="training_metadata.json.* is damaged"):
        model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0, callbacks=[AtomicBackupAndRestore(str(tmp_path))])


# === Resume after a crash or a kill ===


def test_a_crash_between_the_weights_and_the_metadata_resumes_from_the_previous_backup(
    tmp_path, reference, monkeypatch
):
    """The old layout's failure: new weights written, epoch counter not; here the old backup stays whole."""
    out = tmp_path / "run"
    write_text, commits = checkpoints.write_text, []

    def fail_second_commit(path, text, **kwargs):
        commits.append(path)
        if len(commits) == 2:
            raise Stop
        write_text(path, text, **kwargs)

    monkeypatch.setattr(checkpoints, "write_text", fail_second_commit)
    with pytest.raises(Stop):
        train(RECIPE, arrays(), out, **SETTINGS)
    monkeypatch.undo()
    backup = out / "backup"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    assert sorted(p.name for p in backup.glob("*.h5")) == ["epoch-1-batch-0.weights.h5", "epoch-2-batch-0.weights.h5"]
    model, history = train(RECIPE, arrays(), out, resume=True, **SETTINGS)
    assert len(history.history["loss"]) == 2  # epochs 2 and 3 again
    assert_same_state(model, reference)


KILLED_TRAINING = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    import keras
    import numpy as np

    from kerasface.train import train

    data, out, signal_file = np.load(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    save_weights, calls = keras.Model.save_weights, []

    def interrupted_save_weights(self, filepath, *args, **kwargs):
        save_weights(self, filepath, *args, **kwargs)
        calls.append(filepath)
        if len(calls) == 2:  # the backup of epoch 2: half written when the kill comes
            with open(filepath, "r+b") as handle:
                handle.truncate(os.path.getsize(filepath) // 2)
            signal_file.write_text(str(filepath))
            time.sleep(600)

    keras.Model.save_weights = interrupted_save_weights
    train(sys.argv[4], (data["images"], data["labels"]), out, epochs=3, batch_size=int(sys.argv[5]), verbose=0)
    """
)


def test_sigkill_during_a_save_leaves_a_checkpoint_that_resumes_exactly(tmp_path, reference):
    out, signal_file, data = tmp_path / "run", tmp_path / "saving", tmp_path / "data.npz"
    images, labels = arrays()
    np.savez(data, images=images, labels=labels)
    (tmp_path / "killed.py").write_text(KILLED_TRAINING)
    command = [sys.executable, str(tmp_path / "killed.py"), str(data), str(out), str(signal_file), RECIPE, str(IMAGES)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not signal_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert signal_file.exists(), process.stderr.read().decode()[-3000:] if process.poll() is not None else "timeout"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    half_written = signal_file.read_text()
    assert ".partial-" in half_written and os.path.exists(half_written)  # the kill hit a temporary, not the backup
    assert json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    checkpoint = keras.saving.load_model(out / "checkpoint.keras")  # epoch 1's, whole
    assert int(checkpoint.optimizer.iterations) == 1
    assert not (out / "model.keras").exists()

    model, history = train(RECIPE, arrays(), out, resume=True, **SETTINGS)
    assert len(history.history["loss"]) == 2 and int(model.optimizer.iterations) == 3
    assert not os.path.exists(half_written)  # resume cleared what the kill left
    assert not list(out.rglob(".*partial-*"))
    assert_same_state(model, reference)
    keras.saving.load_model(out / "model.keras")


# === No empty run folders ===


def test_a_run_failing_in_its_first_epoch_leaves_no_folder(tmp_path):
    out = tmp_path / "runs" / "new" / "run"
    with pytest.raises(Stop):
        train(RECIPE, arrays(), out, callbacks=[StopAt(0, batch=0)], **SETTINGS)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_keeps_a_folder_that_existed_and_what_was_in_it(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(Stop):
        train(RECIPE, arrays(), out, callbacks=[StopAt(0, batch=0)], **SETTINGS)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    with pytest.raises(ValueError):  # fails before writing anything
        train("no_such_recipe", arrays(), out, **SETTINGS)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_run_failing_after_a_checkpoint_keeps_it_for_resume(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(Stop):
        train(RECIPE, arrays(), out, callbacks=[StopAt(1)], **SETTINGS)
    assert {"checkpoint.keras", "backup", "recipe.json", "log.csv"} <= {p.name for p in out.iterdir()}


def test_removed_on_failure_removes_only_what_the_block_wrote(tmp_path):
    (tmp_path / "old.txt").write_text("old")
    with pytest.raises(Stop), removed_on_failure(tmp_path / "a" / "b"):
        (tmp_path / "a" / "b").mkdir(parents=True)
        (tmp_path / "a" / "b" / "new.txt").write_text("new")
        raise Stop
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"]
    with removed_on_failure(tmp_path / "c"):  # success: nothing removed
        (tmp_path / "c").mkdir()
    assert (tmp_path / "c").is_dir()
