"""Folders of face images with one sub-folder per identity (the layout of
CASIA-WebFace, VGGFace2 and aligned LFW), read with tf.data."""

import json
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasface._checks import check_positive_int
from kerasface.data.images import (
    IMAGE_EXTENSIONS,
    FailureLog,
    check_on_error,
    decode_batches,
    decode_image,
    drop_unreadable,
    finish,
    image_size_pair,
    name_files,
)

CHANNELS = (1, 3)


def check_channels(channels, where):
    if channels not in CHANNELS:
        raise ValueError(f"{where}: channels must be one of {CHANNELS}. Received: channels={channels!r}")
    return channels


def _scan_image_folder(root, class_names, where):
    """`(paths, labels, class_names, skipped)`; `skipped` pairs each file
    left out with the reason. Hidden files and folders (".name") are ignored."""
    if not root.is_dir():
        raise FileNotFoundError(f"{where}: image folder {root} does not exist or is not a directory.")
    entries = sorted(entry for entry in root.iterdir() if not entry.name.startswith("."))
    folders = [entry.name for entry in entries if entry.is_dir()]
    skipped = [(str(entry), "not in an identity folder") for entry in entries if entry.is_file()]
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
    without_folder = [name for name in class_names if name not in set(folders)]
    if without_folder:
        raise ValueError(
            f"{where}: {len(without_folder)} of the class_names have no folder in {root}, e.g. "
            f"{without_folder[:5]}; each would be a class without images. Pass the names of the folders "
            "that exist, or restore the missing folders."
        )
    paths, labels, empty = [], [], []
    for label, name in enumerate(class_names):
        files = sorted(
            file
            for file in (root / name).rglob("*")
            if file.is_file() and not any(part.startswith(".") for part in file.relative_to(root).parts)
        )
        images = [str(file) for file in files if file.suffix.lower() in IMAGE_EXTENSIONS]
        skipped += [
            (str(file), f"{file.suffix or 'no extension'} is not an image format read here")
            for file in files
            if file.suffix.lower() not in IMAGE_EXTENSIONS
        ]
        if not images:
            empty.append(name)
        paths += images
        labels += [label] * len(images)
    if not paths:
        raise ValueError(
            f"{where}: no images ({', '.join(IMAGE_EXTENSIONS)}) found in the sub-folders of {root}. "
            f"Expected one folder per identity: {root}/<identity>/<image>.jpg."
        )
    if empty:
        raise ValueError(
            f"{where}: {len(empty)} identity folders of {root} hold no images ({', '.join(IMAGE_EXTENSIONS)}), "
            f"e.g. {empty[:5]}; each would be a class without images. Remove them or add images."
        )
    return paths, labels, list(class_names), skipped


def _warn_skipped(skipped, where):
    if skipped:
        named = name_files([f"{path} ({reason})" for path, reason in skipped])
        warnings.warn(f"{where}: skipped files that are not images of an identity: {named}.", stacklevel=3)


def list_image_folder(path, class_names=None, where="image_folder"):
    """Lists the images of a folder of identity folders.

    Files that are not images of an identity (files in the root folder,
    files whose extension is not an image format read here) are named in a
    warning; hidden files and folders (".name") are ignored.

    Args:
        path: the root folder; each sub-folder holds one identity's images
            (searched recursively for the extensions in `IMAGE_EXTENSIONS`:
            JPEG, PNG, BMP, GIF, WebP, TIFF, JPEG 2000 and PNM).
        class_names: optional list fixing the label of each folder name
            (label = position in the list), e.g. names saved with a
            checkpoint. Defaults to the sorted folder names.
        where: the caller's name, used in error messages.

    Returns:
        `(paths, labels, class_names)`, paths sorted within each identity.

    Raises:
        ValueError: when a folder is missing from `class_names`, a name of
            `class_names` has no folder, or an identity folder holds no
            images (a class that would never be trained).
    """
    paths, labels, class_names, skipped = _scan_image_folder(Path(path), class_names, where)
    _warn_skipped(skipped, where)
    return paths, labels, class_names


def readable_image_folder(path, class_names, on_error, where):
    """`list_image_folder` without the files that fail the up-front check.

    Returns:
        `(paths, labels, class_names, skipped)`, `skipped` naming every file
        left out (not an image of an identity, or unreadable).
    """
    check_on_error(on_error, where)
    paths, labels, class_names, not_images = _scan_image_folder(Path(path), class_names, where)
    _warn_skipped(not_images, where)
    paths, labels, unreadable = drop_unreadable(paths, labels, on_error, where)
    if not paths:
        raise ValueError(f"{where}: none of the {len(unreadable)} image files under {path} can be decoded.")
    skipped = [name for name, _ in not_images] + unreadable
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

    Files are checked cheaply before the first epoch (JPEG end marker, PNG
    chunk CRCs, BMP and WebP lengths; a full decode only of the files that
    fail this), and left out with one warning naming them and giving their
    count. A file that passes the check but still does not decode (a
    damaged JPEG header, a broken TIFF) is named when first met: a Python
    warning, and its path is appended to `skipped_files`; its batch goes on
    one image shorter, so it costs only itself. JPEG, PNG, BMP, GIF and WebP
    are decoded by TensorFlow, TIFF, JPEG 2000 and PNM by OpenCV.

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
            `"raise"` (a `ValueError` naming the first one; for a file met
            during an epoch, a `tf.errors.InvalidArgumentError` whose
            message names it).
        class_names: optional list of folder names that fixes the labels.

    Returns:
        The dataset, with attributes `class_names` (label -> folder name),
        `skipped_files` (the files left out, growing as bad files are met)
        and `num_images` (those kept up front).

    Raises:
        ValueError: for a folder missing from `class_names`, a name of
            `class_names` without a folder, or an identity folder without
            images.

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
    log = FailureLog(paths.__getitem__, where, on_error, skipped)
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels, np.arange(len(paths))))
    if shuffle:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = decode_batches(dataset.batch(batch_size), file_loader(image_size, channels), (*image_size, channels))
    dataset = finish(log.checked(dataset), flip=flip, seed=seed, normalize=normalize)
    dataset.class_names = class_names
    dataset.skipped_files = skipped
    dataset.num_images = len(paths)
    return dataset


def file_loader(image_size, channels):
    """path -> float32 image, as the folder pipelines decode it."""

    def load(file):
        return decode_image(tf.io.read_file(file), image_size, channels)

    return load


def save_class_names(class_names, path):
    """Writes the label -> name list as JSON (e.g. beside a checkpoint)."""
    Path(path).write_text(json.dumps(list(class_names), indent=0, ensure_ascii=False) + "\n", encoding="utf-8")


def load_class_names(path):
    """Reads a list written by `save_class_names`."""
    names = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"{path} does not hold a JSON list of class names.")
    return names
