"""Folders of face images with one sub-folder per identity (the layout of
CASIA-WebFace, VGGFace2 and aligned LFW), read with tf.data."""

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasface._checks import check_positive_int
from kerasface.data.images import (
    IMAGE_EXTENSIONS,
    check_on_error,
    decode_image,
    drop_unreadable,
    finish,
    image_size_pair,
)

CHANNELS = (1, 3)


def check_channels(channels, where):
    if channels not in CHANNELS:
        raise ValueError(f"{where}: channels must be one of {CHANNELS}. Received: channels={channels!r}")
    return channels


def list_image_folder(path, class_names=None, where="image_folder"):
    """Lists the images of a folder of identity folders.

    Args:
        path: the root folder; each sub-folder holds one identity's images
            (searched recursively for .jpg, .jpeg, .png and .bmp files).
        class_names: optional list fixing the label of each folder name
            (label = position in the list), e.g. names saved with a
            checkpoint. Defaults to the sorted folder names.
        where: the caller's name, used in error messages.

    Returns:
        `(paths, labels, class_names)`, paths sorted within each identity.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{where}: image folder {root} does not exist or is not a directory.")
    folders = sorted(entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if class_names is None:
        class_names = folders
    elif len(set(class_names)) != len(class_names):
        raise ValueError(f"{where}: class_names contains duplicates. Received: class_names={class_names!r}")
    unknown = sorted(set(folders) - set(class_names))
    if unknown:
        raise ValueError(
            f"{where}: {len(unknown)} folders of {root} are not in class_names, e.g. {unknown[:5]}. "
            "Pass the full list of names, or class_names=None to label the folders in sorted order."
        )
    paths, labels = [], []
    for label, name in enumerate(class_names):
        files = sorted(
            str(file) for file in (root / name).rglob("*") if file.suffix.lower() in IMAGE_EXTENSIONS and file.is_file()
        )
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise ValueError(
            f"{where}: no images ({', '.join(IMAGE_EXTENSIONS)}) found in the sub-folders of {root}. "
            f"Expected one folder per identity: {root}/<identity>/<image>.jpg."
        )
    return paths, labels, list(class_names)


def readable_image_folder(path, class_names, on_error, where):
    """`list_image_folder` without the files that cannot be decoded."""
    check_on_error(on_error, where)
    paths, labels, class_names = list_image_folder(path, class_names, where)
    paths, labels, skipped = drop_unreadable(paths, labels, on_error, where)
    if not paths:
        raise ValueError(f"{where}: none of the {len(skipped)} image files under {path} can be decoded.")
    return paths, np.asarray(labels, "int32"), class_names, skipped


def image_folder(
    path,
    image_size,
    batch_size,
    channels=3,
    shuffle=True,
    seed=None,
    flip=True,
    normalize=None,
    on_error="skip",
    class_names=None,
):
    """A `tf.data.Dataset` of `(images, labels)` batches from identity folders.

    Labels are the positions of the folder names in the sorted list of
    names (or in `class_names`), so the same folders always get the same
    labels; save the names beside a checkpoint with `save_class_names`.

    Files are checked before the first epoch: a cheap structural check
    (JPEG end marker, PNG chunk CRCs, BMP length) and a full decode of the
    files that fail it. Files that cannot be decoded are left out with one
    warning naming them and giving their count. Should a file still fail to
    decode during an epoch, that image is dropped (and TensorFlow logs it)
    instead of stopping training.

    Args:
        path: root folder, one sub-folder of images per identity.
        image_size: `(height, width)` (or an int for square images) that
            every image is resized to (bilinear).
        batch_size: images per batch; the last batch may be smaller.
        channels: 3 (RGB) or 1 (grayscale).
        shuffle: reshuffle the files every epoch.
        seed: seed of the shuffling and flipping.
        flip: flip each image left-right with probability 1/2.
        normalize: optional callable or Keras layer applied to each float32
            batch of values in [0, 255], e.g.
            `keras.layers.Rescaling(1 / 127.5, offset=-1)`.
        on_error: `"skip"` (warn and leave out unreadable files) or
            `"raise"` (a `ValueError` naming the first one).
        class_names: optional list of folder names that fixes the labels.

    Returns:
        The dataset, with attributes `class_names` (label -> folder name),
        `skipped_files` (the files left out) and `num_images` (those kept).

    Example:

    ```python
    train = image_folder("casia_aligned/", (112, 96), batch_size=256, seed=0)
    save_class_names(train.class_names, "run/class_names.json")
    ```
    """
    where = "image_folder"
    image_size = image_size_pair(image_size, where)
    batch_size = check_positive_int(batch_size, "batch_size", where)
    channels = check_channels(channels, where)
    paths, labels, class_names, skipped = readable_image_folder(path, class_names, on_error, where)
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    if shuffle:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(
        lambda file, label: (decode_image(tf.io.read_file(file), image_size, channels), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).ignore_errors(log_warning=True)
    dataset = finish(dataset, batch_size, flip=flip, seed=seed, normalize=normalize)
    dataset.class_names = class_names
    dataset.skipped_files = skipped
    dataset.num_images = len(paths)
    return dataset


def save_class_names(class_names, path):
    """Writes the label -> name list as JSON (e.g. beside a checkpoint)."""
    Path(path).write_text(json.dumps(list(class_names), indent=0, ensure_ascii=False) + "\n", encoding="utf-8")


def load_class_names(path):
    """Reads a list written by `save_class_names`."""
    names = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"{path} does not hold a JSON list of class names.")
    return names
