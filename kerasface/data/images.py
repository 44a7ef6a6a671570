"""Image files and the tf.data steps every pipeline shares: checking files up
front, decoding, resizing, flipping, normalizing and batching."""

import os
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
ON_ERROR = ("skip", "raise")

_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_BMP_MAGIC = b"BM"
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


def _looks_intact(path):
    """Cheap structural check: a JPEG with its end marker, a PNG whose chunk
    CRCs match, a BMP at least as long as its header says. `False` means
    "not sure", not "broken"."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        head = file.read(len(_PNG_MAGIC))
        if head.startswith(_JPEG_MAGIC):
            file.seek(max(size - _JPEG_TAIL, 0))
            return _JPEG_END in file.read()
        if head.startswith(_PNG_MAGIC):
            return _png_chunks_intact(head + file.read())
        if head.startswith(_BMP_MAGIC):
            return int.from_bytes(head[2:6], "little") <= size
    return False


def _decodes(path):
    try:
        tf.io.decode_image(tf.io.read_file(os.fspath(path)), channels=3, expand_animations=False)
    except tf.errors.OpError:
        return False
    return True


def is_readable_image(path):
    """True if TensorFlow can decode the image file at `path`.

    Files that pass the cheap structural check are taken as readable; the
    others are decoded to decide, so the check costs a full decode only for
    the few suspicious files.
    """
    try:
        return _looks_intact(path) or _decodes(path)
    except OSError:
        return False


def drop_unreadable(paths, labels, on_error, where):
    """Removes unreadable image files, warning once with their names and count.

    Raises:
        ValueError: naming the first unreadable file if `on_error="raise"`.
    """
    with ThreadPoolExecutor() as pool:
        readable = list(pool.map(is_readable_image, paths))
    skipped = [path for path, ok in zip(paths, readable) if not ok]
    if skipped and on_error == "raise":
        raise ValueError(f"{where}: cannot decode image file {skipped[0]} (and {len(skipped) - 1} more).")
    if skipped:
        named = ", ".join(skipped[:_MAX_NAMED]) + (", ..." if len(skipped) > _MAX_NAMED else "")
        warnings.warn(f"{where}: skipped unreadable or corrupt image files: {named} ({len(skipped)} files).")
    kept = [i for i, ok in enumerate(readable) if ok]
    return [paths[i] for i in kept], [labels[i] for i in kept], skipped


def decode_image(contents, image_size, channels):
    """Encoded JPEG/PNG/BMP bytes -> float32 (height, width, channels) in [0, 255]."""
    # BMP decodes only to 3 or 4 channels, so every format goes through RGB.
    image = tf.cast(tf.io.decode_image(contents, channels=3, expand_animations=False), tf.float32)
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    image = tf.image.resize(image, image_size)
    return tf.ensure_shape(image, (*image_size, channels))


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
