"""Training a recipe on a data set, with checkpoints, logs and exact resume."""

import importlib.util
import json
from pathlib import Path

import keras
import numpy as np

from kerasface import zoo
from kerasface.checkpoints import (
    AtomicBackupAndRestore,
    AtomicModelCheckpoint,
    removed_on_failure,
    save_model,
    write_text,
)

FASHION_MNIST = "fashion-mnist"
CHECKPOINT, BACKUP = "checkpoint.keras", "backup"


def training_data(spec, data, seed=0):
    """`(inputs, labels or None, num_classes, class_names, steps_per_epoch)` for `data`.

    `data` is `"fashion-mnist"` (IDX files, see `load_fashion_mnist`), an
    `(images, labels)` pair of arrays, or a folder of identity folders.
    Batches have `spec.batch_size` images; recipes with P x K batches
    (FaceNet, SphereReID) get identity-balanced ones of
    `spec.identities_per_batch` x `spec.images_per_identity`.
    Datasets repeat, so `fit` needs the returned `steps_per_epoch`: Keras
    takes one step too many at the end of a dataset of unknown length.
    """
    from kerasface.data import identity_balanced, image_folder, load_fashion_mnist

    batch_size = spec.batch_size
    if isinstance(data, str) and data == FASHION_MNIST:
        (images, labels), _ = load_fashion_mnist()
        data = (images, labels)
    height, width, channels = spec.input_shape
    if isinstance(data, tuple):
        source, classes, class_names = data, int(np.max(data[1])) + 1, None
        if not spec.identities_per_batch:
            return data[0], data[1], classes, None, int(np.ceil(len(data[0]) / batch_size))
    else:
        if not Path(data).is_dir():
            raise FileNotFoundError(f"Training data directory {str(data)!r} does not exist.")
        source = str(data)
        if not spec.identities_per_batch:
            dataset = image_folder(source, (height, width), batch_size, channels=channels, seed=seed)
            steps = int(np.ceil(dataset.num_images / batch_size))
            return dataset.repeat(), None, len(dataset.class_names), dataset.class_names, steps
    dataset = identity_balanced(
        source, spec.identities_per_batch, spec.images_per_identity, (height, width), seed=seed, channels=channels,
        flip=True,
    )
    classes = len(dataset.class_names) if dataset.class_names else classes
    return dataset.repeat(), None, classes, dataset.class_names, dataset.steps_per_epoch


def train(
    name, data, out, epochs=None, resume=False, batch_size=None, seed=0, callbacks=(), verbose="auto", **overrides
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

    Returns:
        `(model, history)`.
    """
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1):
        raise ValueError(f"epochs must be a whole number >= 1, or None for the recipe's. Received: epochs={epochs!r}")
    if Path(out).exists() and not Path(out).is_dir():
        raise FileExistsError(f"The output {str(out)!r} is a file; train writes a folder there.")
    # A run that fails before its first checkpoint leaves nothing behind; one that got further can be resumed.
    with removed_on_failure(out, keep=(CHECKPOINT, BACKUP)):
        return _train(
            name, data, out, epochs=epochs, resume=resume, batch_size=batch_size, seed=seed, callbacks=callbacks,
            verbose=verbose, **overrides,
        )


def _train(name, data, out, epochs, resume, batch_size, seed, callbacks, verbose, **overrides):
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
    keras.utils.set_random_seed(seed)
    inputs, labels, classes, class_names, steps_per_epoch = training_data(spec, data, seed)
    out.mkdir(parents=True, exist_ok=True)
    if class_names is not None:
        save_class_names(class_names, out / "class_names.json")
    if spec.head is not None:
        spec = spec.replace(num_classes=classes)
    # The recipe as trained (after batch scaling and overrides), for whoever reads the run later.
    write_text(out / "recipe.json", json.dumps(spec.to_config(), indent=2))
    model = zoo.from_recipe(spec, steps_per_epoch=steps_per_epoch)
    # Checkpoints are replaced atomically: a process killed while saving leaves the previous one loadable.
    callbacks = [
        AtomicBackupAndRestore(str(backup)),
        AtomicModelCheckpoint(str(out / CHECKPOINT)),
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
