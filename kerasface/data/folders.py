"""Folders of face images with one sub-folder per identity (the layout of
CASIA-WebFace, VGGFace2 and aligned LFW), read with tf.data."""

import json
import os
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasface._checks import check_positive_int
from kerasface.data.images import (
    IMAGE_EXTENSIONS,
    EpochOrder,
    FailureLog,
    check_on_error,
    finish,
    image_batches,
    image_size_pair,
    name_files,
    ordered_items,
)

CHANNELS = (1, 3)


def check_channels(channels, where):
    if channels not in CHANNELS:
        raise ValueError(f"{where}: channels must be one of {CHANNELS}. Received: channels={channels!r}")
    return channels


def _files_under(folder, root):
    """Every file below `folder` (recursively), skipping hidden files and
    folders; `os.scandir` gives the file types without opening the files."""
    files, pending = [], [folder]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    pending.append(entry.path)
                elif entry.is_file():
                    files.append(entry.path)
    return sorted(files)


def _scan_image_folder(root, class_names, where):
    """`(paths, labels, class_names, skipped)`; `skipped` pairs each file
    left out with the reason. Hidden files and folders (".name") are ignored.
    Only the directories are read (no file is opened)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{where}: image folder {root} does not exist or is not a directory.")
    with os.scandir(root) as scan:
        entries = sorted((entry for entry in scan if not entry.name.startswith(".")), key=lambda e: e.name)
    folders = [entry.name for entry in entries if entry.is_dir()]
    skipped = [(entry.path, "not in an identity folder") for entry in entries if entry.is_file()]
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
    existing = set(folders)
    without_folder = [name for name in class_names if name not in existing]
    if without_folder:
        raise ValueError(
            f"{where}: {len(without_folder)} of the class_names have no folder in {root}, e.g. "
            f"{without_folder[:5]}; each would be a class without images. Pass the names of the folders "
            "that exist, or restore the missing folders."
        )
    paths, labels, empty = [], [], []
    for label, name in enumerate(class_names):
        files = _files_under(os.path.join(root, name), root)
        images = [file for file in files if file.lower().endswith(IMAGE_EXTENSIONS)]
        if len(images) < len(files):
            for file in files:
                if not file.lower().endswith(IMAGE_EXTENSIONS):
                    suffix = os.path.splitext(file)[1]
                    skipped.append((file, f"{suffix or 'no extension'} is not an image format read here"))
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


def image_folder_files(path, class_names, on_error, where):
    """`list_image_folder` for the pipelines: no file is opened up front (a
    folder of 500,000 images starts in seconds); files that do not decode
    are named when the pipeline meets them.

    Returns:
        `(paths, labels, class_names, skipped)`, `skipped` naming every file
        left out so far (those that are not images of an identity).
    """
    check_on_error(on_error, where)
    paths, labels, class_names, not_images = _scan_image_folder(Path(path), class_names, where)
    _warn_skipped(not_images, where)
    return paths, np.asarray(labels, "int32"), class_names, [name for name, _ in not_images]


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
    resize=False,
    initial_epoch=0,
    repeat=False,
):
    """A `tf.data.Dataset` of `(images, labels)` batches from identity folders.

    Labels are the positions of the folder names in the sorted list of
    names (or in `class_names`), so the same folders always get the same
    labels; save the names beside a checkpoint with `save_class_names`.

    Only the directories are listed up front (no file is opened, so a folder
    of CASIA-WebFace's size starts in seconds). A file that does not decode
    is named when first met: a Python warning, and its path is appended to
    `skipped_files`; every other image is delivered, so it costs only itself
    (the epoch's last batch is one image shorter). JPEG, PNG, BMP, GIF and
    WebP are decoded by TensorFlow, TIFF, JPEG 2000 and PNM by OpenCV.

    Images are never resized silently: an image whose size is not
    `image_size` stops the iteration with an error naming the file and both
    sizes, except faces of a related alignment template, which are cropped
    with one warning saying so (ArcFace 112x112 faces for a SphereFace
    112x96 model: columns 8:104, `kerasface.align.templates.crop_box`).
    Pass `resize=True` to resize every image instead.

    Args:
        path: root folder, one sub-folder of images per identity.
        image_size: `(height, width)` (or an int for square images) of the
            images delivered.
        batch_size: images per batch; the last batch may be smaller.
        channels: 3 (RGB) or 1 (grayscale).
        shuffle: reshuffle the files every epoch.
        seed: seed of the shuffling and flipping: epoch `e` uses the seed
            `(seed, e)`.
        flip: flip each image left-right with probability 1/2.
        normalize: optional callable or Keras layer applied to each float32
            batch of values in [0, 255], e.g.
            `keras.layers.Rescaling(1 / 127.5, offset=-1)`.
        on_error: `"skip"` (warn and leave out files that do not decode) or
            `"raise"` (a `tf.errors.InvalidArgumentError` from the iterator,
            whose message names the file).
        class_names: optional list of folder names that fixes the labels.
        resize: resize every image to `image_size` (bilinear).
        initial_epoch: the epoch of the first iteration over the dataset;
            the `i`-th iteration (a `for` loop, or a repetition of
            `dataset.repeat()`) is epoch `initial_epoch + i`, so a run
            resumed at epoch `e` sees the same orders and flips as an
            uninterrupted one.
        repeat: every iterator runs through epochs `initial_epoch`,
            `initial_epoch + 1`, ... without end (each epoch's last batch
            may be short), for `fit(steps_per_epoch=...)`. Prefer it to
            `dataset.repeat()` when the order must be exact: here the epoch
            of a batch is its place in its iterator, however many iterators
            were made (or dropped) before.

    Returns:
        The dataset, with attributes `class_names` (label -> folder name),
        `skipped_files` (the files left out, growing as bad files are met)
        and `num_images` (the image files listed).

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
    paths, labels, class_names, skipped = image_folder_files(path, class_names, on_error, where)
    order = EpochOrder(len(paths), shuffle, seed, initial_epoch, where, repeat)
    log = FailureLog(paths.__getitem__, where, on_error, skipped, image_size)
    order.on_start.append(log.restart)
    path_table, label_table = tf.constant(paths), tf.constant(labels)

    def files(epoch, positions, indices):
        epochs = tf.fill(tf.shape(indices), epoch)
        return tf.gather(path_table, indices), tf.gather(label_table, indices), indices, positions, epochs

    def batches(chunks, epoch):
        chunks = chunks.map(files)
        return image_batches(chunks, epoch, order, log, batch_size, image_size, resize, read=tf.io.read_file)

    dataset = finish(ordered_items(order, batch_size, batches), channels=channels, flip=flip, normalize=normalize)
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
