"""Image files and the tf.data steps every pipeline shares: checking files up
front, decoding (TensorFlow, or OpenCV for the formats TensorFlow lacks),
naming the images that fail to decode, resizing, flipping, normalizing and
batching."""

import os
import threading
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import tensorflow as tf

# tf.io.decode_image reads these (the first frame of a GIF); OpenCV reads the others.
TF_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
OPENCV_EXTENSIONS = (".tif", ".tiff", ".jp2", ".pbm", ".pgm", ".ppm", ".pnm")
IMAGE_EXTENSIONS = TF_EXTENSIONS + OPENCV_EXTENSIONS
ON_ERROR = ("skip", "raise")

_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_BMP_MAGIC = b"BM"
_GIF_MAGIC = b"GIF8"
_RIFF_MAGIC, _WEBP_MAGIC = b"RIFF", b"WEBP"
# A JPEG may carry a few padding bytes after its end marker; look for the
# marker in this many trailing bytes.
_JPEG_TAIL = 1024
_MAX_NAMED = 10


def image_size_pair(image_size, where):
    """`112` or `(112, 96)` -> `(112, 96)` as (height, width)."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(
            f"{where}: image_size must be a positive int or a (height, width) pair. Received: image_size={image_size!r}"
        )
    return size


def check_on_error(on_error, where):
    if on_error not in ON_ERROR:
        raise ValueError(f"{where}: on_error must be one of {ON_ERROR}. Received: on_error={on_error!r}")


def name_files(paths):
    """`a, b, c (3 files)`, at most `_MAX_NAMED` names."""
    paths = [str(path) for path in paths]
    named = ", ".join(paths[:_MAX_NAMED]) + (", ..." if len(paths) > _MAX_NAMED else "")
    return f"{named} ({len(paths)} file{'s' if len(paths) != 1 else ''})"


# === Up-front checks ===


def _png_chunks_intact(data):
    """True if every PNG chunk's CRC matches and the last chunk is IEND."""
    position, chunk_type = len(_PNG_MAGIC), b""
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        chunk_end = position + 12 + length
        if chunk_end > len(data):
            return False
        body = data[position + 4 : chunk_end - 4]
        if zlib.crc32(body) != int.from_bytes(data[chunk_end - 4 : chunk_end], "big"):
            return False
        chunk_type, position = body[:4], chunk_end
    return chunk_type == b"IEND"


def _looks_intact(path, size):
    """Cheap structural check: a JPEG with its end marker, a PNG whose chunk
    CRCs match, a BMP or WebP at least as long as its header says. `False`
    means "not sure", not "broken"."""
    with open(path, "rb") as file:
        head = file.read(12)
        if head.startswith(_JPEG_MAGIC):
            file.seek(max(size - _JPEG_TAIL, 0))
            return _JPEG_END in file.read()
        if head.startswith(_PNG_MAGIC):
            return _png_chunks_intact(head + file.read())
        if head.startswith(_BMP_MAGIC):
            return int.from_bytes(head[2:6], "little") <= size
        if head.startswith(_RIFF_MAGIC) and head[8:12] == _WEBP_MAGIC:
            return int.from_bytes(head[4:8], "little") + 8 <= size
    return False


def _uses_opencv(path):
    return os.fspath(path).lower().endswith(OPENCV_EXTENSIONS)


def decode_with_opencv(data, source="image"):
    """Encoded bytes -> RGB uint8 `(H, W, 3)` with OpenCV.

    Raises:
        ValueError: naming `source`, for empty bytes or bytes OpenCV cannot
            decode (never `cv2.error`).
    """
    if len(data) == 0:
        raise ValueError(f"{source} is empty (0 bytes), not an image.")
    if data[: len(_PNG_MAGIC)] == _PNG_MAGIC and not _png_chunks_intact(data):
        # OpenCV would first allocate what a damaged chunk length declares (up to 2 GiB).
        raise ValueError(f"{source} is a damaged PNG (a chunk's length or CRC is wrong).")
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as error:
        raise ValueError(f"{source} cannot be decoded as an image: {error}") from error
    if bgr is None:
        raise ValueError(f"{source} cannot be decoded as an image (JPEG, PNG, ...).")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _decodes(path):
    """Full decode, the way the pipelines decode `path`."""
    try:
        with open(path, "rb") as file:
            data = file.read()
        if _uses_opencv(path):
            decode_with_opencv(data)
        else:
            tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError, OSError):
        return False
    return True


def is_readable_image(path):
    """True if the pipelines can decode the image file at `path` (TensorFlow
    for JPEG, PNG, BMP, GIF and WebP, OpenCV for TIFF, JPEG 2000 and PNM).

    Files that pass a cheap structural check are taken as readable; the
    others are decoded to decide, so the check costs a full decode only for
    the few suspicious files.
    """
    try:
        size = os.path.getsize(path)
        return size > 0 and (_looks_intact(path, size) or _decodes(path))
    except OSError:
        return False


def _worth_keeping(path):
    """The up-front check of the dataset builders: as `is_readable_image`, but
    the formats read by OpenCV are left to the pipeline (decoded when met)
    instead of being decoded twice."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return False
        return _looks_intact(path, size) or _uses_opencv(path) or _decodes(path)
    except OSError:
        return False


def drop_unreadable(paths, labels, on_error, where):
    """Removes unreadable image files, warning once with their names and count.

    Raises:
        ValueError: naming the first unreadable file if `on_error="raise"`.
    """
    with ThreadPoolExecutor() as pool:
        readable = list(pool.map(_worth_keeping, paths))
    skipped = [path for path, ok in zip(paths, readable) if not ok]
    if skipped and on_error == "raise":
        raise ValueError(f"{where}: cannot decode image file {skipped[0]} (and {len(skipped) - 1} more).")
    if skipped:
        warnings.warn(f"{where}: skipped unreadable or corrupt image files: {name_files(skipped)}.", stacklevel=3)
    kept = [i for i, ok in enumerate(readable) if ok]
    return [paths[i] for i in kept], [labels[i] for i in kept], skipped


# === Decoding inside the pipelines ===


def _tf_reads(contents):
    """True where the bytes start like a format tf.io.decode_image reads."""
    head = tf.strings.substr(contents, 0, 12)
    starts = [tf.strings.substr(head, 0, len(magic)) == magic for magic in (_JPEG_MAGIC, _PNG_MAGIC, _GIF_MAGIC)]
    starts.append(tf.strings.substr(head, 0, 2) == _BMP_MAGIC)
    starts.append((tf.strings.substr(head, 0, 4) == _RIFF_MAGIC) & (tf.strings.substr(head, 8, 4) == _WEBP_MAGIC))
    return tf.reduce_any(tf.stack(starts))


def _opencv_op(contents):
    image = tf.numpy_function(lambda data: decode_with_opencv(data), [contents], tf.uint8, stateful=False)
    image.set_shape((None, None, 3))
    return image


def decode_image(contents, image_size, channels):
    """Encoded image bytes -> float32 (height, width, channels) in [0, 255].

    JPEG, PNG, BMP, GIF and WebP are decoded by TensorFlow, anything else by
    OpenCV; bytes neither can decode raise an op error.
    """
    # BMP decodes only to 3 or 4 channels, so every format goes through RGB.
    image = tf.cond(
        _tf_reads(contents),
        lambda: tf.io.decode_image(contents, channels=3, expand_animations=False),
        lambda: _opencv_op(contents),
    )
    image = tf.cast(image, tf.float32)
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    image = tf.image.resize(image, image_size)
    return tf.ensure_shape(image, (*image_size, channels))


def decode_batches(batches, load, image_shape):
    """Decodes batches of encoded images, leaving out (not failing on) the
    images that do not decode, so a bad image costs only itself.

    Args:
        batches: a dataset of `(items, labels, ids)` 1-D tensors, where
            `load(item)` gives one float32 image of shape `image_shape`.
        load: item -> image; may raise an op error.
        image_shape: `(height, width, channels)`.

    Returns:
        A dataset of `(images, labels, kept_ids, ids)`: the images that
        decoded, their labels and ids, and every id of the batch, so that a
        following step can name (or replace) the missing ones.
    """

    def decode(items, labels, ids):
        inner = tf.data.Dataset.from_tensor_slices((items, labels, ids))
        inner = inner.map(lambda item, label, i: (load(item), label, i), num_parallel_calls=tf.data.AUTOTUNE)
        inner = inner.ignore_errors().batch(tf.size(ids, out_type=tf.int64))
        # Every image failed: one empty batch, so the failures are still seen.
        nothing = (tf.zeros((0, *image_shape)), tf.zeros((0,), labels.dtype), tf.zeros((0,), ids.dtype))
        inner = inner.concatenate(tf.data.Dataset.from_tensors(nothing)).take(1)
        return inner.map(lambda images, kept_labels, kept: (images, kept_labels, kept, ids))

    # Each batch gives exactly one element, so a deterministic interleave keeps the batch order
    # while decoding the next batch during this one.
    return batches.interleave(decode, cycle_length=2, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class FailureLog:
    """The Python-side record of the images a pipeline could not decode.

    `decode_batches` leaves such images out of their batch; `check` then
    hands their ids to `report` (through `tf.numpy_function`), which names
    each once in a Python warning and appends it to `skipped` (the dataset's
    `skipped_files`), or, with `on_error="raise"`, raises a `ValueError`
    naming it (surfacing as a `tf.errors.InvalidArgumentError` from the
    iterator, whose message holds the name).

    Args:
        describe: id -> the name of the image (file path, record...).
        where: the dataset builder's name, used in messages.
        on_error: `"skip"` or `"raise"`.
        skipped: the list to append the names to.
    """

    def __init__(self, describe, where, on_error="skip", skipped=None):
        self.describe = describe
        self.where = where
        self.on_error = on_error
        self.skipped = [] if skipped is None else skipped
        self.failed_ids = set()
        self._lock = threading.Lock()

    def report(self, ids):
        """Names the images `ids` (warning once each, or raising)."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        if self.on_error == "raise":
            more = f" (and {len(ids) - 1} more in the same batch)" if len(ids) > 1 else ""
            raise ValueError(f"{self.where}: cannot decode {self.describe(ids[0])}{more}.")
        with self._lock:
            new = [i for i in ids if i not in self.failed_ids]
            self.failed_ids.update(new)
            names = [self.describe(i) for i in new]
            self.skipped += names
        if names:
            warnings.warn(f"{self.where}: skipped images that do not decode: {name_files(names)}.", stacklevel=2)
        return np.int32(len(names))

    def check(self, images, labels, kept, ids):
        """tf.data step after `decode_batches`: reports the images left out
        of a batch; the batch passes on, shorter by those images."""

        def report():
            missing = tf.sparse.to_dense(tf.sets.difference(ids[None], kept[None]))[0]
            done = tf.numpy_function(self.report, [missing], tf.int32, stateful=True)
            with tf.control_dependencies([done]):
                return tf.identity(images), tf.identity(labels)

        return tf.cond(tf.size(kept) < tf.size(ids), report, lambda: (images, labels))

    def checked(self, decoded):
        """`decoded` (from `decode_batches`) through `check`, without the
        batches left empty."""
        dataset = decoded.map(self.check)
        return dataset.filter(lambda images, labels: tf.shape(images)[0] > 0)


# === Batching and augmentation ===


def _flip_batch(images, seed):
    """Flips each image of a batch left-right with probability 1/2."""
    flip = tf.random.stateless_uniform(tf.shape(images)[:1], seed=seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def finish(dataset, batch_size=None, flip=False, seed=None, normalize=None):
    """Batches (unless `batch_size` is None: already batched), randomly flips
    each image with seeded stateless draws, normalizes and prefetches."""
    if batch_size is not None:
        dataset = dataset.batch(batch_size)
    if flip:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda batch, pair: (_flip_batch(batch[0], pair), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if normalize is not None:
        dataset = dataset.map(lambda x, y: (normalize(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
