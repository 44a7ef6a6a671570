"""Files that are whole or absent: atomic writes and the checkpoint callbacks of `kerasface.train`.

A file is written under a temporary name in its own folder, flushed to disk
and renamed over the target with `os.replace`, which POSIX and Windows make
atomic within one file system. A process killed during the write (SIGKILL,
power cut) leaves the previous file as it was, plus a `.NAME.partial-*` file
that the next write of the same target removes.

`AtomicModelCheckpoint` and `AtomicBackupAndRestore` are Keras'
`ModelCheckpoint` and `BackupAndRestore` with these writes. Keras 3's
`BackupAndRestore` writes `latest.weights.h5` and then `training_metadata.json`
in place (keras/src/callbacks/backup_and_restore.py, `_save_model`): a kill
during the first leaves damaged weights, between the two leaves the weights of
epoch N+1 with the epoch counter of N, and resuming trains an epoch twice.
Here each backup's weights go to a new file named after its epoch and the
metadata, written last, names that file: replacing the metadata is the one
step that commits a backup, and the previous backup's weights are deleted
only after it.
"""

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path

import keras

PARTIAL = ".partial-"


def _split_name(name):
    """`"latest.weights.h5"` -> `("latest", ".weights.h5")`: Keras checks the suffixes, so they are kept."""
    stem, dot, suffixes = name.partition(".")
    return (stem, dot + suffixes) if stem else (name, "")


def partial_path(path):
    """A fresh temporary name beside `path` that keeps its suffixes: `.checkpoint.partial-1a2b3c.keras`."""
    path = Path(path)
    stem, suffixes = _split_name(path.name)
    return path.with_name(f".{stem}{PARTIAL}{secrets.token_hex(4)}{suffixes}")


def remove_partials(path):
    """Removes the temporary files left beside `path` by writes that were killed."""
    path = Path(path)
    stem, suffixes = _split_name(path.name)
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{stem}{PARTIAL}*{suffixes}"):
            _remove(stale)


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fsync(path):
    """Flushes a written file, or every file of a written folder, and the folder entry, to disk."""
    path = Path(path)
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    for name in files:
        with open(name, "rb") as handle:
            os.fsync(handle.fileno())
    with contextlib.suppress(OSError):  # folders cannot be opened on Windows
        descriptor = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; when the block ends without error it becomes `path`.

    The block writes a file or a folder (a SavedModel) at the yielded path.
    On error the temporary is removed and `path` is untouched. A folder
    replaces an existing folder in two renames (the old one is moved aside,
    then deleted), so between them `path` is briefly absent, never partial.

    Example:
        >>> with atomic_path("runs/model.keras") as partial:
        ...     model.save(partial)
    """
    path = Path(path)
    remove_partials(path)
    partial = partial_path(path)
    try:
        yield partial
        if not partial.exists():
            raise FileNotFoundError(f"Nothing was written to {str(path)!r} (its temporary {str(partial)!r} is missing).")
        _fsync(partial)
        if partial.is_dir() and path.exists():
            old = partial_path(path)
            os.replace(path, old)
            os.replace(partial, path)
            _remove(old)
        else:
            os.replace(partial, path)
    except BaseException:
        _remove(partial)
        raise


def write_bytes(path, data):
    """`Path(path).write_bytes(data)`, atomically."""
    with atomic_path(path) as partial:
        partial.write_bytes(data)


def write_text(path, text, encoding="utf-8"):
    """`Path(path).write_text(text)`, atomically."""
    with atomic_path(path) as partial:
        partial.write_text(text, encoding=encoding)


def save_model(model, path, **kwargs):
    """`model.save(path)`, atomically: a kill during the save leaves the previous file loadable."""
    with atomic_path(path) as partial:
        model.save(partial, **kwargs)


@contextlib.contextmanager
def removed_on_failure(folder, keep=()):
    """Removes what the block wrote under `folder` if it raises before writing any of `keep`.

    `keep` names the entries that make a failed run worth resuming (a
    checkpoint, a backup folder). If the block created or changed one of them,
    everything stays. Otherwise the entries of `folder` the block created are
    removed, then the folders it created (`folder` and missing parents) if
    empty; entries that existed before the block are never touched.
    """
    folder = Path(folder)
    missing = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    before = {entry.name for entry in folder.iterdir()} if folder.is_dir() else set()
    kept_before = _state(folder, keep)
    try:
        yield
    except BaseException:
        if folder.is_dir() and _state(folder, keep) == kept_before:
            for entry in list(folder.iterdir()):
                if entry.name not in before:
                    _remove(entry)
            for created in missing:  # innermost first
                with contextlib.suppress(OSError):
                    created.rmdir()
        raise


def _state(folder, names):
    """Path -> (size, modification time) of the entries `names` of `folder` and everything under them."""
    state = {}
    for name in names:
        top = folder / name
        for path in (top, *(top.rglob("*") if top.is_dir() else ())):
            with contextlib.suppress(OSError):
                info = path.stat()
                state[path] = (info.st_size, info.st_mtime_ns)
    return state


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` whose saves replace the file atomically.

    Takes the same arguments. Keras' `_save_model` decides whether to save
    (`save_best_only`) and writes to `_get_file_path()`; here that is a
    temporary beside the target, which replaces the target once written. A
    process killed during a save leaves the previous checkpoint whole.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._target = self._partial = None

    def _save_model(self, epoch, batch, logs):
        self._target = Path(super()._get_file_path(epoch, batch, logs))
        remove_partials(self._target)
        self._partial = partial_path(self._target)
        try:
            super()._save_model(epoch, batch, logs)
            if self._partial.exists():  # else not saved this time (save_best_only)
                _fsync(self._partial)
                os.replace(self._partial, self._target)
        finally:
            _remove(self._partial)
            self._target = self._partial = None

    def _get_file_path(self, epoch, batch, logs):
        if self._partial is not None:
            return str(self._partial)
        return super()._get_file_path(epoch, batch, logs)

    def _should_save_model(self, epoch, batch, logs, filepath):
        # Its messages name the checkpoint, not the temporary.
        return super()._should_save_model(epoch, batch, logs, str(self._target or filepath))


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backups are committed in one atomic step.

    Takes the same arguments. Each backup writes `epoch-E-batch-B.weights.h5`
    (atomically), then `training_metadata.json` naming it (atomically; this
    commits the backup), then deletes the weights of older backups. A process
    killed at any point leaves a backup that resumes exactly: the new one if
    its metadata was replaced, else the previous one. Restores also read
    backups written by Keras' own callback (`latest.weights.h5`).
    """

    def on_train_begin(self, logs=None):
        backup_dir = Path(self.backup_dir)
        if backup_dir.is_dir():
            for stale in backup_dir.glob(f".*{PARTIAL}*"):
                _remove(stale)
        super().on_train_begin(logs)

    def _load_model(self):
        metadata_path = Path(self._training_metadata_path)
        if not metadata_path.exists():
            return super()._load_model()
        try:
            metadata = json.loads(metadata_path.read_text())
            weights_name, epoch = metadata.get("weights"), metadata["epoch"]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(
                f"The backup {str(metadata_path)!r} is damaged ({type(error).__name__}: {error}); training cannot "
                "resume from it. Remove the folder to start again."
            ) from error
        if weights_name is None:  # written by keras.callbacks.BackupAndRestore
            return super()._load_model()
        weights_path = Path(self.backup_dir) / weights_name
        if not weights_path.is_file():
            raise FileNotFoundError(
                f"The backup {str(metadata_path)!r} names the weights {str(weights_path)!r}, which are missing; "
                "training cannot resume from it."
            )
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(weights_path))
        self.model._initial_epoch = epoch

    def _save_model(self):
        backup_dir = Path(self.backup_dir)
        backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{self._current_epoch}-batch-{self._last_batch_seen}.weights.h5"
        with atomic_path(backup_dir / name) as partial:
            self.model.save_weights(str(partial), overwrite=True)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name}
        write_text(self._training_metadata_path, json.dumps(metadata))
        for old in backup_dir.glob("*.weights.h5"):
            if old.name != name:
                _remove(old)
