"""Image files and the tf.data steps every pipeline shares: checking files up
front, decoding (TensorFlow, or OpenCV for the formats TensorFlow lacks),
naming the images that fail to decode, resizing, flipping, normalizing and
batching."""

import os
import threading
import warnings
import zlib

import cv2
import numpy as np
import tensorflow as tf

from kerasface.align.templates import TEMPLATES, crop_box

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



# === Decoding inside the pipelines ===


# The first two bytes of JPEG, PNG, GIF, BMP and WebP (RIFF) files: what tf.io.decode_image reads.
_TF_PREFIXES = (_JPEG_MAGIC[:2], _PNG_MAGIC[:2], _GIF_MAGIC[:2], _BMP_MAGIC, _RIFF_MAGIC[:2])


def _tf_reads(contents):
    """True where the bytes start like a format tf.io.decode_image reads
    (two bytes compared: a few ops per image, not twenty)."""
    return tf.reduce_any(tf.equal(tf.strings.substr(contents, 0, 2), _TF_PREFIXES))


def _opencv_op(contents):
    image = tf.numpy_function(lambda data: decode_with_opencv(data), [contents], tf.uint8, stateful=False)
    image.set_shape((None, None, 3))
    return image


def decode_rgb(contents):
    """Encoded image bytes -> uint8 RGB `(height, width, 3)`.

    JPEG, PNG, BMP, GIF and WebP are decoded by TensorFlow, anything else by
    OpenCV; bytes neither can decode raise an op error.
    """
    # BMP decodes only to 3 or 4 channels, so every format goes through RGB.
    return tf.cond(
        _tf_reads(contents),
        lambda: tf.io.decode_image(contents, channels=3, expand_animations=False),
        lambda: _opencv_op(contents),
    )


# How a decoded image was brought to the pipeline's size.
EXACT, CROPPED, WRONG_SIZE = 0, 1, 2


def template_crops(image_size):
    """`{source (height, width): (top, left, height, width)}`: the faces of
    other alignment templates that hold a crop of the `image_size` template
    (`kerasface.align.templates.crop_box`), e.g. 112x112 ArcFace faces for a
    112x96 SphereFace model."""
    boxes = {}
    for template in TEMPLATES.values():
        source = tuple(template.image_size)
        box = crop_box(source, image_size)
        if box is not None and source != tuple(image_size):
            boxes[source] = box
    return boxes


def fit_image(image, image_size, resize=False):
    """A decoded `(h, w, 3)` image -> `(image of image_size, status, (h, w))`.

    `status` is `EXACT` (the image had the size), `CROPPED` (a face of a
    related template, cropped as `template_crops` says) or `WRONG_SIZE`
    (zeros in its place; `SizeLog.check` refuses it). With `resize`, every
    image is resized (bilinear, float32) and counts as `EXACT`.
    """
    shape = tf.shape(image, out_type=tf.int32)[:2]
    if resize:
        return tf.image.resize(image, image_size), tf.constant(EXACT), shape

    def other():
        result = (tf.zeros((*image_size, 3), image.dtype), tf.constant(WRONG_SIZE))
        for source, (top, left, height, width) in template_crops(image_size).items():
            result = tf.cond(
                tf.reduce_all(tf.equal(shape, source)),
                lambda top=top, left=left, height=height, width=width: (
                    tf.ensure_shape(image[top : top + height, left : left + width], (*image_size, 3)),
                    tf.constant(CROPPED),
                ),
                lambda result=result: result,
            )
        return result

    fitted, status = tf.cond(
        tf.reduce_all(tf.equal(shape, image_size)),
        lambda: (tf.ensure_shape(image, (*image_size, 3)), tf.constant(EXACT)),
        other,
    )
    return fitted, status, shape


def load_image(contents, image_size, resize=False):
    """Encoded bytes -> `fit_image`'s `(image, status, (h, w))`."""
    return fit_image(decode_rgb(contents), image_size, resize)


class FailureLog:
    """The Python-side record of the images a pipeline could not decode or
    could not use at its size.

    An image that does not decode is left out of its batch; `report` then
    names it once in a Python warning and appends it to `skipped` (the
    dataset's `skipped_files`), or, with `on_error="raise"`, raises a
    `ValueError` naming it (surfacing as a `tf.errors.InvalidArgumentError`
    from the iterator, whose message holds the name). `errors` maps an id to
    a message known before decoding (e.g. a RecordIO record found corrupt);
    `report` raises that message for it.

    `check_sizes` refuses images whose size is neither the pipeline's nor
    that of a related template (see `fit_image`), naming the image and both
    sizes, and warns once when faces of a related template are cropped.

    Args:
        describe: id -> the name of the image (file path, record...).
        where: the dataset builder's name, used in messages.
        on_error: `"skip"` or `"raise"`.
        skipped: the list to append the names to.
        image_size: the pipeline's `(height, width)`.
    """

    def __init__(self, describe, where, on_error="skip", skipped=None, image_size=None):
        self.describe = describe
        self.where = where
        self.on_error = on_error
        self.skipped = [] if skipped is None else skipped
        self.image_size = image_size
        self.failed_ids = set()
        self.errors = {}
        self.warned_crop = False
        self.stopped_by = None
        self._lock = threading.Lock()

    def restart(self):
        """A new epoch: forgets the error that stopped the last one."""
        self.stopped_by = None

    def _stop(self, message):
        # tf.data may go on preparing batches after an error stopped the iterator; the
        # images those batches miss are not undecodable, so the same error is raised for them.
        self.stopped_by = message
        raise ValueError(message)

    def report(self, ids):
        """Names the images `ids` (warning once each, or raising)."""
        if self.stopped_by is not None:
            raise ValueError(self.stopped_by)
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        known = [self.errors[i] for i in ids if i in self.errors]
        if known and self.on_error == "raise":
            self._stop(f"{self.where}: {known[0]}")
        if self.on_error == "raise":
            more = f" (and {len(ids) - 1} more in the same batch)" if len(ids) > 1 else ""
            self._stop(f"{self.where}: cannot decode {self.describe(ids[0])}{more}.")
        with self._lock:
            new = [i for i in ids if i not in self.failed_ids]
            self.failed_ids.update(new)
            names = [self.describe(i) for i in new]
            self.skipped += names
        if names:
            warnings.warn(f"{self.where}: skipped images that do not decode: {name_files(names)}.", stacklevel=2)
        return np.int32(len(names))

    def check_sizes(self, status, shapes, ids):
        """Raises for an image of the wrong size; warns once about crops."""
        status, shapes, ids = np.asarray(status).reshape(-1), np.asarray(shapes).reshape(-1, 2), np.asarray(ids)
        height, width = self.image_size
        wrong = np.flatnonzero(status == WRONG_SIZE)
        if len(wrong):
            i = wrong[0]
            more = f" ({len(wrong) - 1} more in the same batch)" if len(wrong) > 1 else ""
            crops = "".join(
                f"; {s[0]}x{s[1]} faces are cropped to rows {t}:{t + h}, columns {c}:{c + w}"
                for s, (t, c, h, w) in template_crops(self.image_size).items()
            )
            self._stop(
                f"{self.where}: {self.describe(int(ids[i]))} is {shapes[i][0]}x{shapes[i][1]} (height x width), "
                f"but the pipeline delivers {height}x{width} images{more}. Images are never resized silently"
                f"{crops}. Align the images to the model's template (`kerasface align --template ...`), or "
                f"pass resize=True to resize them. Received: image of {shapes[i][0]}x{shapes[i][1]}, "
                f"image_size={(height, width)}"
            )
        cropped = np.flatnonzero(status == CROPPED)
        if len(cropped):
            with self._lock:
                warn, self.warned_crop = not self.warned_crop, True
            if warn:
                source = tuple(int(v) for v in shapes[cropped[0]])
                top, left, h, w = template_crops(self.image_size)[source]
                warnings.warn(
                    f"{self.where}: {source[0]}x{source[1]} faces (e.g. {self.describe(int(ids[cropped[0]]))}) are "
                    f"cropped to rows {top}:{top + h}, columns {left}:{left + w} for the {height}x{width} images "
                    "asked for: the two alignment templates differ by this shift only, so the faces keep the "
                    "template's geometry (no resizing). This warning is given once.",
                    stacklevel=2,
                )
        return np.int32(len(cropped))


def check_sizes_op(log, status, shapes, ids):
    """A control input that runs `log.check_sizes` only when some image was not `EXACT`."""

    def check():
        return tf.numpy_function(log.check_sizes, [status, shapes, ids], tf.int32, stateful=True)

    return tf.cond(tf.reduce_any(tf.not_equal(status, EXACT)), check, lambda: tf.constant(0))


# === Epoch orders ===


class EpochOrder:
    """The order in which a dataset visits its `size` items, epoch by epoch.

    Epoch `e` visits the items in the permutation drawn from the seed
    `(seed, e)` (or in order, without `shuffle`), so epoch `e` has the same
    order whether a run started at epoch 0 or was resumed at `e`.

    Without `repeat`, each iteration over the dataset is one epoch: the
    `i`-th iteration (a `for` loop, or one repetition of `dataset.repeat()`)
    is epoch `initial_epoch + i`. With `repeat`, every iterator runs through
    epochs `initial_epoch, initial_epoch + 1, ...` without end, so the epoch
    of a batch is its place in the iterator, however many iterators were
    made before (Keras' JAX trainer takes one batch from an iterator it then
    drops; `dataset.repeat()` would let that iterator run ahead).

    Args:
        size: the number of items.
        shuffle: permute the items every epoch.
        seed: an int, or None for a random seed drawn once.
        initial_epoch: the epoch of the first iteration.
        where: the dataset builder's name, used in messages.
        repeat: every iterator repeats the epochs without end.
    """

    def __init__(self, size, shuffle, seed, initial_epoch, where, repeat=False):
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
            raise ValueError(
                f"{where}: initial_epoch must be a non-negative int. Received: initial_epoch={initial_epoch!r}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"{where}: seed must be an int or None. Received: seed={seed!r}")
        self.size = size
        self.shuffle = shuffle
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed) % 2**63
        self.initial_epoch = int(initial_epoch)
        self.repeat = bool(repeat)
        self.on_start = []  # callables run as each epoch starts
        self.next_epoch = self.initial_epoch
        self.current = None

    def rng(self, epoch, *stream):
        """The generator of epoch `epoch` (and of an optional sub-stream)."""
        return np.random.default_rng([self.seed, int(epoch), *stream])

    def permutation(self, epoch):
        if not self.shuffle:
            return np.arange(self.size)
        return self.rng(epoch).permutation(self.size)

    def start(self):
        """The next iteration's epoch number, now the current one."""
        self.current, self.next_epoch = self.next_epoch, self.next_epoch + 1
        return self.current

    def epochs(self, signature, generate, pipeline=lambda elements, epoch: elements):
        """`pipeline(elements, epoch)` over the elements `generate(epoch)`
        yields, one epoch per iteration, or epoch after epoch with `repeat`
        (each epoch's pipeline ends before the next starts). `epoch` is a
        scalar tensor with `repeat`, else -1 (`current` says which)."""
        if not self.repeat:
            elements = tf.data.Dataset.from_generator(lambda: generate(self.start()), output_signature=signature)
            return pipeline(elements, tf.constant(-1, tf.int64))
        return tf.data.Dataset.counter(self.initial_epoch).flat_map(
            lambda epoch: pipeline(
                tf.data.Dataset.from_generator(generate, args=(epoch,), output_signature=signature), epoch
            )
        )

    def flip_seed(self, epoch, position):
        """The stateless seed of the flips of the batch starting at `position` of `epoch`."""
        return tf.stack([tf.constant(self.seed, tf.int64), tf.cast(epoch, tf.int64) * 2**32 + position])


def ordered_items(order, chunk, pipeline):
    """`pipeline(chunks, epoch)` (see `EpochOrder.epochs`) over the
    `(epoch, positions, ids)` chunks of `chunk` items of each epoch of
    `order`: `ids` the epoch's items in order, `positions` their places."""

    def chunks(epoch):
        for hook in order.on_start:
            hook()
        epoch = int(epoch)
        ids = order.permutation(epoch)
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            yield np.int64(epoch), np.arange(start, start + len(part), dtype=np.int64), part.astype(np.int64)

    signature = (
        tf.TensorSpec((), tf.int64),
        tf.TensorSpec((None,), tf.int64),
        tf.TensorSpec((None,), tf.int64),
    )
    return order.epochs(signature, chunks, pipeline)


# === The pipeline of image_folder and recordio_dataset ===


def image_batches(chunks, epoch, order, log, batch_size, image_size, resize, item_ids=None, read=None):
    """Decoded, checked batches of one epoch from a dataset of `(sources,
    labels, ids, positions, epochs)` chunks, where `read(source)` gives an
    encoded image (default: the sources are the encoded images); `epoch` as
    `EpochOrder.epochs` gives it.

    Images are decoded one by one in a parallel (deterministic) map; those
    that fail are left out and named by `log` when the next batch shows the
    gap in positions (an end marker after the last image lets the last ones
    be named too), so a bad image costs only itself and every other image is
    delivered, in order. Sizes are checked by `log.check_sizes`. `item_ids`
    maps the indices of `order` to the ids `log` names (default: the same).

    Returns:
        A dataset of `(images, labels, flip seed)` batches; images uint8
        (float32 with `resize`) of `image_size`.
    """
    size = order.size  # the end marker's position

    def one(source, label, item, position, epoch):
        image, status, shape = load_image(source if read is None else read(source), image_size, resize)
        return image, label, item, position, epoch, status, shape

    images = chunks.unbatch().map(one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    dtype = tf.float32 if resize else tf.uint8
    end = (
        tf.zeros((*image_size, 3), dtype), tf.constant(0, tf.int32), tf.constant(-1, tf.int64),
        tf.constant(size, tf.int64), tf.constant(-1, tf.int64), tf.constant(EXACT), tf.constant(image_size),
    )  # fmt: skip
    batches = images.concatenate(tf.data.Dataset.from_tensors(end)).batch(batch_size)

    def check(expected, batch):
        images, labels, items, positions, epochs, status, shapes = batch

        def report():
            seen = tf.range(expected, positions[-1] + 1)
            missing = tf.sparse.to_dense(tf.sets.difference(seen[None], positions[None]))[0]
            ids = tf.numpy_function(
                lambda e, p: order_ids(order, e, p, item_ids), [epoch, missing], tf.int64, stateful=True
            )
            return tf.numpy_function(log.report, [ids], tf.int32, stateful=True)

        gap = tf.reduce_any(tf.not_equal(positions, expected + tf.range(tf.size(positions, out_type=tf.int64))))
        done = [tf.cond(gap, report, lambda: tf.constant(0)), check_sizes_op(log, status, shapes, items)]
        keep = positions < size  # not the end marker
        with tf.control_dependencies(done):
            out = (
                tf.boolean_mask(images, keep),
                tf.boolean_mask(labels, keep),
                order.flip_seed(epochs[0], positions[0]),
            )
        return positions[-1] + 1, out

    checked = batches.scan(tf.constant(0, tf.int64), check)
    return checked.filter(lambda images, labels, seed: tf.shape(images)[0] > 0)


def order_ids(order, epoch, positions, item_ids=None):
    """The ids at `positions` of epoch `epoch` of `order` (-1: the current)."""
    indices = order.permutation(order.current if epoch < 0 else epoch)[np.asarray(positions)]
    return np.asarray(indices if item_ids is None else item_ids(indices), np.int64)


# === Batching and augmentation ===


def _flip_batch(images, seed):
    """Flips each image of a batch left-right with probability 1/2.

    Only the flipped images are reversed and the batch stitched together
    again: several times faster on CPU than a `tf.where` between the batch
    and its mirror image."""
    flip = tf.random.stateless_uniform(tf.shape(images)[:1], seed=seed) < 0.5
    index = tf.range(tf.shape(images)[0])
    return tf.dynamic_stitch(
        [tf.boolean_mask(index, flip), tf.boolean_mask(index, ~flip)],
        [tf.reverse(tf.boolean_mask(images, flip), axis=[2]), tf.boolean_mask(images, ~flip)],
    )


def finish(dataset, channels=3, flip=False, normalize=None):
    """`(images, labels, flip seed)` batches -> float32 `(images, labels)`:
    grayscale if `channels == 1`, each image flipped left-right with
    probability 1/2 (stateless draws from the batch's seed), normalized,
    prefetched."""

    def batch(images, labels, seed):
        if flip:  # before the cast: on uint8 images, a quarter of the bytes
            images = _flip_batch(images, seed)
        images = tf.cast(images, tf.float32)
        if channels == 1:
            images = tf.image.rgb_to_grayscale(images)
        return images, labels

    dataset = dataset.map(batch, num_parallel_calls=tf.data.AUTOTUNE)
    if normalize is not None:
        dataset = dataset.map(lambda x, y: (normalize(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def decode_batches(batches, load, image_shape, dtype):
    """Decodes batches of encoded images, leaving out (not failing on) the
    images that do not decode, so a bad image costs only itself.

    Args:
        batches: a dataset of `(items, labels, ids, *extra)`, `items`,
            `labels` and `ids` 1-D, where `load(item)` gives `fit_image`'s
            `(image, status, shape)`, the image of `image_shape` and `dtype`.
        load: item -> `(image, status, shape)`; may raise an op error.
        image_shape: `(height, width, channels)`.
        dtype: the images' dtype.

    Returns:
        A dataset of `(images, status, shapes, labels, kept_ids, ids,
        *extra)`: the images that decoded, with their status, decoded
        shapes, labels and ids, then every id of the batch, so that a
        following step can name (or replace) the missing ones.
    """

    def decode(items, labels, ids, *extra):
        inner = tf.data.Dataset.from_tensor_slices((items, labels, ids))
        inner = inner.map(lambda item, label, i: (*load(item), label, i), num_parallel_calls=tf.data.AUTOTUNE)
        inner = inner.ignore_errors().batch(tf.size(ids, out_type=tf.int64))
        # Every image failed: one empty batch, so the failures are still seen.
        nothing = (
            tf.zeros((0, *image_shape), dtype), tf.zeros((0,), tf.int32), tf.zeros((0, 2), tf.int32),
            tf.zeros((0,), labels.dtype), tf.zeros((0,), ids.dtype),
        )  # fmt: skip
        inner = inner.concatenate(tf.data.Dataset.from_tensors(nothing)).take(1)
        return inner.map(lambda *decoded: (*decoded, ids, *extra))

    # Each batch gives exactly one element, so a deterministic interleave keeps the batch order
    # while decoding the next batch during this one.
    return batches.interleave(decode, cycle_length=2, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
