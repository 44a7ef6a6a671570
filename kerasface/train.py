"""Training a recipe on a data set, with checkpoints, logs and exact resume."""

import contextlib
import importlib.util
import json
from pathlib import Path

import keras
import numpy as np

from kerasface import zoo
from kerasface.callbacks import ImagesPerSecond, VerificationCallback
from kerasface.checkpoints import (
    AtomicBackupAndRestore,
    AtomicModelCheckpoint,
    removed_on_failure,
    save_model,
    write_text,
)

FASHION_MNIST = "fashion-mnist"
CHECKPOINT, BACKUP = "checkpoint.keras", "backup"


def training_data(spec, data, seed=0, initial_epoch=0):
    """`(inputs, labels or None, num_classes, class_names, steps_per_epoch)` for `data`.

    `data` is `"fashion-mnist"` (IDX files, see `load_fashion_mnist`), an
    `(images, labels)` pair of arrays, a folder of identity folders, an
    insightface `train.rec` (with its `.idx`), or an insightface data folder
    holding `train.rec` (MS1M, Glint360K, ...). Batches have
    `spec.batch_size` images; recipes with P x K batches (FaceNet, SphereReID)
    get identity-balanced ones of `spec.identities_per_batch` x
    `spec.images_per_identity` (from folders or arrays). Every epoch is
    shuffled from `(seed, epoch)` and datasets start at `initial_epoch`, so a
    resumed run sees the batches an uninterrupted one would have. Datasets
    repeat, so `fit` needs the returned `steps_per_epoch`.
    """
    from kerasface.data import identity_balanced, image_folder, load_fashion_mnist, recordio_dataset

    batch_size = spec.batch_size
    if isinstance(data, str) and data == FASHION_MNIST:
        (images, labels), _ = load_fashion_mnist()
        data = (images, labels)
    height, width, channels = spec.input_shape
    if isinstance(data, tuple):
        source, classes = data, int(np.max(data[1])) + 1
        if not spec.identities_per_batch:
            return data[0], data[1], classes, None, int(np.ceil(len(data[0]) / batch_size))
    else:
        rec = recordio_file(data)
        if rec is not None:
            if spec.identities_per_batch:
                raise ValueError(
                    f"Recipe {spec.name!r} samples P x K batches, which read identity folders; a RecordIO file is "
                    f"read in record order. Received: data={str(data)!r}"
                )
            if channels != 3:
                raise ValueError(f"RecordIO faces are RGB; recipe {spec.name!r} takes {channels} channel(s).")
            dataset = recordio_dataset(
                str(rec), image_size=(height, width), batch_size=batch_size, seed=seed, initial_epoch=initial_epoch,
                repeat=True,
            )
            classes = dataset.num_classes
            if classes is None:
                raise ValueError(
                    f"{rec} has no insightface header record, so its number of identities is unknown: pass "
                    "num_classes (--set num_classes=N)."
                )
            return dataset, None, classes, None, int(np.ceil(dataset.num_images / batch_size))
        if not Path(data).is_dir():
            raise FileNotFoundError(f"Training data {str(data)!r} is not a folder or a .rec file.")
        source = str(data)
        if not spec.identities_per_batch:
            dataset = image_folder(
                source, (height, width), batch_size, channels=channels, seed=seed, initial_epoch=initial_epoch,
                repeat=True,
            )
            steps = int(np.ceil(dataset.num_images / batch_size))
            return dataset, None, len(dataset.class_names), dataset.class_names, steps
    dataset = identity_balanced(
        source, spec.identities_per_batch, spec.images_per_identity, (height, width), seed=seed, channels=channels,
        flip=True, initial_epoch=initial_epoch, repeat=True,
    )
    classes = len(dataset.class_names) if dataset.class_names else classes
    return dataset, None, classes, dataset.class_names, dataset.steps_per_epoch


def recordio_file(data):
    """The `train.rec` that `data` names (the file, or an insightface folder holding one), else None."""
    if isinstance(data, tuple):
        return None
    path = Path(data)
    if path.suffix == ".rec":
        if not path.is_file():
            raise FileNotFoundError(f"RecordIO file {str(path)!r} does not exist.")
        return path
    if path.is_dir() and (path / "train.rec").is_file():
        return path / "train.rec"
    return None


def verification_sets(verify, data):
    """`{name: path}` of the `.bin` pair sets to verify on: `verify` as given, or `"auto"`: those beside the `.rec`."""
    if verify is None:
        return {}
    if isinstance(verify, str) and verify == "auto":
        rec = recordio_file(data)
        paths = sorted(rec.parent.glob("*.bin")) if rec is not None else []
        if not paths:
            raise ValueError(f"verify='auto' looks for .bin files beside train.rec; none found for data={data!r}")
    else:
        paths = [Path(path) for path in ([verify] if isinstance(verify, (str, Path)) else verify)]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"Verification file(s) not found. Received: {missing}")
    return {path.stem: str(path) for path in paths}


def resumed_epoch(backup):
    """The number of epochs an interrupted run completed (0 for a new run)."""
    metadata = Path(backup) / "training_metadata.json"
    if not metadata.exists():
        return 0
    try:
        return int(json.loads(metadata.read_text())["epoch"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"The backup {str(metadata)!r} is damaged ({type(error).__name__}: {error}); training cannot resume "
            "from it. Remove the backup folder to start again."
        ) from error


def train(
    name,
    data,
    out,
    epochs=None,
    resume=False,
    batch_size=None,
    seed=0,
    callbacks=(),
    verbose="auto",
    verify=None,
    verify_every=2000,
    learning_rate=None,
    precision=None,
    devices=None,
    **overrides,
):
    """Trains recipe `name` on `data`, writing everything under `out`.

    Writes `recipe.json` (the recipe as trained), `checkpoint.keras` every epoch, `log.csv`, `tensorboard/` (when
    TensorBoard is installed),
    `class_names.json` (for folders), and at the end `model.keras` and
    `embedder.keras`; `callbacks` are added to those. `resume=True` continues an interrupted run exactly
    (optimiser state, SphereFace lambda counter, centres, epoch); without it,
    an `out` that already holds a run is refused rather than overwritten.

    Files are whole or absent: checkpoints, the backup and the final models
    are replaced atomically (`kerasface.checkpoints`), so a process killed
    while saving leaves the previous checkpoint loadable and `resume=True`
    continues from it. A run that fails before its first checkpoint removes
    what it wrote, and `out` itself if it created it; a folder that existed
    before or holds a checkpoint or backup is kept.

    Units: `batch_size` is the global batch (all devices). When it differs
    from the recipe's, the learning rates are scaled linearly and
    iteration-counted schedules stretched (`Recipe.for_batch_size`), and the
    change is printed. Steps per epoch come from the data; a recipe counted
    in iterations trains `ceil(steps / steps_per_epoch)` epochs unless
    `epochs` is given.

    At insightface's scale: `data` may be a `train.rec` (or its folder);
    `verify` (`.bin` paths, or `"auto"` for those beside the `.rec`) runs
    insightface's verification protocol every `verify_every` steps, logging
    to `verification.csv` and keeping `best.keras`; `learning_rate` sets the
    schedule's first rate (the others scale with it); `precision`
    (`"mixed_float16"` / `"mixed_bfloat16"`) trains in mixed precision;
    `devices` (an int) trains data-parallel on that many accelerators
    (`MirroredStrategy` on TensorFlow, `keras.distribution.DataParallel` on
    JAX), `batch_size` staying global. Partial FC: `head_args={..., "sample_rate": 0.1}`.
    The logs carry `images_per_second`.

    Returns:
        `(model, history)`.
    """
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1):
        raise ValueError(f"epochs must be a whole number >= 1, or None for the recipe's. Received: epochs={epochs!r}")
    if Path(out).exists() and not Path(out).is_dir():
        raise FileExistsError(f"The output {str(out)!r} is a file; train writes a folder there.")
    # A run that fails before its first checkpoint leaves nothing behind; one that got further can be resumed.
    with removed_on_failure(out, keep=(CHECKPOINT, BACKUP)):
        with training_precision(precision), distribution(devices) as scope:
            return _train(
                name, data, out, epochs=epochs, resume=resume, batch_size=batch_size, seed=seed, callbacks=callbacks,
                verbose=verbose, verify=verify, verify_every=verify_every, learning_rate=learning_rate, scope=scope,
                **overrides,
            )


PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@contextlib.contextmanager
def training_precision(precision):
    """Keras' global dtype policy set to `precision` for the run, then restored."""
    if precision is None:
        yield
        return
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}. Received: precision={precision!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def distribution(devices):
    """Data parallelism over `devices` accelerators; yields the scope to build the model in."""
    if devices is None or devices == 1:
        yield contextlib.nullcontext()
        return
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ValueError(f"devices must be a whole number >= 1. Received: devices={devices!r}")
    available = keras.distribution.list_devices()
    accelerators = [d for d in available if "cpu" not in d.lower()] or available
    if len(accelerators) < devices:
        raise ValueError(f"devices={devices}, but only {len(accelerators)} device(s) are visible: {accelerators}")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        names = [f"/{d.split(':', 1)[0].lower()}:{d.rsplit(':', 1)[1]}" for d in accelerators[:devices]]
        yield tf.distribute.MirroredStrategy(names).scope()
        return
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=accelerators[:devices]))
    try:
        yield contextlib.nullcontext()
    finally:
        keras.distribution.set_distribution(previous)


def _train(
    name, data, out, epochs, resume, batch_size, seed, callbacks, verbose, verify, verify_every, learning_rate,
    scope, **overrides,
):
    """`train`, which removes what this leaves of a run that failed early."""
    from kerasface.data import save_class_names

    out = Path(out)
    backup = out / BACKUP
    if backup.exists() and not resume:
        raise FileExistsError(
            f"{out} holds an interrupted run. Pass resume=True (--resume) to continue it, or choose another output."
        )
    if resume and not backup.exists():
        raise FileNotFoundError(f"{out} holds no interrupted run to resume.")
    if (out / "model.keras").exists() and not resume:
        raise FileExistsError(f"{out} already holds a trained model.keras; choose another output directory.")
    spec = zoo.recipe(name).replace(**overrides) if overrides else zoo.recipe(name)
    if batch_size is not None and batch_size != spec.batch_size:
        scaled = spec.for_batch_size(batch_size)
        print(
            f"{spec.name}: global batch {batch_size} instead of the recipe's {spec.batch_size}: learning rate scaled "
            f"by {batch_size / spec.batch_size:g} (linear scaling rule)"
            + (", iteration schedule stretched to match" if spec.schedule_unit == "step" else "")
            + (f", {scaled.identities_per_batch} identities x {scaled.images_per_identity} images" if spec.images_per_identity else "")
            + "."
        )
        spec = scaled
    if learning_rate is not None:
        spec = spec.with_learning_rate(learning_rate)
    sets = verification_sets(verify, data)
    keras.utils.set_random_seed(seed)
    initial_epoch = resumed_epoch(backup) if resume else 0
    inputs, labels, classes, class_names, steps_per_epoch = training_data(spec, data, seed, initial_epoch)
    out.mkdir(parents=True, exist_ok=True)
    if class_names is not None:
        save_class_names(class_names, out / "class_names.json")
    if spec.head is not None:
        spec = spec.replace(num_classes=classes)
    # The recipe as trained (after batch scaling and overrides), for whoever reads the run later.
    write_text(out / "recipe.json", json.dumps(spec.to_config(), indent=2))
    with scope:
        model = zoo.from_recipe(spec, steps_per_epoch=steps_per_epoch)
    # Checkpoints are replaced atomically: a process killed while saving leaves the previous one loadable.
    callbacks = [
        AtomicBackupAndRestore(str(backup)),
        AtomicModelCheckpoint(str(out / CHECKPOINT)),
        ImagesPerSecond(spec.batch_size),
        *([VerificationCallback(sets, verify_every, out=out)] if sets else []),
        keras.callbacks.CSVLogger(str(out / "log.csv"), append=resume),
        *callbacks,
    ]
    if importlib.util.find_spec("tensorboard"):
        callbacks.append(keras.callbacks.TensorBoard(str(out / "tensorboard")))
    epochs = epochs or spec.epochs or -(-spec.steps // steps_per_epoch)
    history = model.fit(
        inputs,
        labels,
        batch_size=None if labels is None else spec.batch_size,
        epochs=epochs,
        steps_per_epoch=None if labels is not None else steps_per_epoch,
        callbacks=callbacks,
        shuffle=labels is not None,  # datasets arrive shuffled; for them Keras would warn that it ignores shuffle
        verbose=verbose,
    )
    save_model(model, out / "model.keras")
    save_model(model.embedder, out / "embedder.keras")
    return model, history
