"""P x K batches (P identities, K images of each) for triplet-style losses."""

import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasface._checks import check_positive_int
from kerasface.align.templates import crop_box
from kerasface.data.folders import check_channels, image_folder_files
from kerasface.data.images import (
    EXACT,
    EpochOrder,
    FailureLog,
    check_sizes_op,
    decode_batches,
    finish,
    image_size_pair,
    load_image,
)

WHERE = "identity_balanced"


class IdentitySampler:
    """Draws batches of indices: P identities that have at least K images,
    then K distinct images of each, all uniformly without replacement.

    A batch lists the K images of its first identity, then the K of the
    second, and so on.

    Raises:
        ValueError: when fewer than P identities have K images.
    """

    def __init__(self, labels, identities_per_batch, images_per_identity, seed=None):
        self.identities_per_batch = check_positive_int(identities_per_batch, "identities_per_batch", WHERE)
        self.images_per_identity = check_positive_int(images_per_identity, "images_per_identity", WHERE)
        labels = np.asarray(labels).reshape(-1)
        order = np.argsort(labels, kind="stable")
        identities, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
        eligible = counts >= self.images_per_identity
        if eligible.sum() < self.identities_per_batch:
            raise ValueError(
                f"{WHERE}: every batch needs {self.identities_per_batch} identities with at least "
                f"{self.images_per_identity} images each, but only {eligible.sum()} of the "
                f"{len(identities)} identities have {self.images_per_identity} or more images. "
                "Lower identities_per_batch or images_per_identity, or add images. "
                f"Received: identities_per_batch={identities_per_batch}, images_per_identity={images_per_identity}"
            )
        self.labels = labels
        self.identities = identities[eligible]
        self.members = [order[s : s + c] for s, c in zip(starts[eligible], counts[eligible])]
        self._members_of = dict(zip(identities.tolist(), (order[s : s + c] for s, c in zip(starts, counts))))
        self.rng = np.random.default_rng(seed)

    def members_of(self, identity):
        """The indices of the images of `identity`."""
        return self._members_of[identity]

    @property
    def batch_size(self):
        return self.identities_per_batch * self.images_per_identity

    @property
    def num_eligible_images(self):
        return sum(len(m) for m in self.members)

    def sample(self, rng=None):
        """The indices of one batch, drawn with `rng` (default: the sampler's own)."""
        rng = self.rng if rng is None else rng
        identities = rng.choice(len(self.members), self.identities_per_batch, replace=False)
        return np.concatenate(
            [rng.choice(self.members[i], self.images_per_identity, replace=False) for i in identities]
        )


def identity_balanced(
    source,
    identities_per_batch,
    images_per_identity,
    image_size=None,
    seed=None,
    channels=3,
    flip=False,
    normalize=None,
    steps_per_epoch=None,
    on_error="skip",
    resize=False,
    initial_epoch=0,
    repeat=False,
):
    """A `tf.data.Dataset` of P x K batches `(images, labels)`.

    Each batch holds `identities_per_batch` (P) identities with
    `images_per_identity` (K) images each, so every anchor has K - 1
    positives and (P - 1) K negatives, as batch-hard and semi-hard triplet
    mining need (FaceNet section 3.2; Hermans et al. 2017, section 2).

    Images are never resized silently: images whose size is not
    `image_size` are refused with an error naming them and both sizes,
    except faces of a related alignment template, cropped with one warning
    (ArcFace 112x112 faces for a SphereFace 112x96 model: columns 8:104,
    `kerasface.align.templates.crop_box`); `resize=True` resizes instead.

    Args:
        source: a folder of identity folders (see `image_folder`), or an
            `(images, labels)` pair of arrays, images `(N, H, W[, C])`.
        identities_per_batch: P.
        images_per_identity: K.
        image_size: `(height, width)` of the images delivered; required for
            a folder, optional for arrays (default: theirs).
        seed: seed of the sampling and flipping: epoch `e` draws its batches
            from the seed `(seed, e)`.
        channels: 3 or 1, for a folder.
        flip: flip each image left-right with probability 1/2.
        normalize: optional callable applied to each float32 batch.
        steps_per_epoch: batches per epoch; defaults to the number of
            images of the eligible identities divided by P x K.
        on_error: `"skip"` or `"raise"` for files that do not decode
            (folders). Only the directories are listed up front; with
            `"skip"`, a file that does not decode is named when met (a
            Python warning and `skipped_files`) and replaced by another
            image of its identity, or its identity by another, so no batch
            is lost or shortened.
        resize: resize every image to `image_size` (bilinear).
        initial_epoch: the epoch of the first iteration over the dataset;
            the `i`-th iteration (a `for` loop, or a repetition of
            `dataset.repeat()`) is epoch `initial_epoch + i`, so a run
            resumed at epoch `e` draws the batches of an uninterrupted one.
        repeat: every iterator runs through the epochs from
            `initial_epoch` without end (see `image_folder`).

    Returns:
        The dataset; images are float32 in [0, 255] (before `normalize`),
        labels int32 (folder labels follow the sorted folder names, and the
        dataset's `class_names` attribute lists them); `steps_per_epoch`
        and `skipped_files` (the files left out, growing as bad files are
        met) are attributes too.

    Raises:
        ValueError: when fewer than P identities have K images, saying how
            many do.

    References:
        - [Schroff et al., 2015](https://arxiv.org/abs/1503.03832)
        - [Hermans et al., 2017](https://arxiv.org/abs/1703.07737)
    """
    if isinstance(source, (str, Path)):
        return _folder_dataset(
            source, identities_per_batch, images_per_identity, image_size, seed, channels, flip, normalize,
            steps_per_epoch, on_error, resize, initial_epoch, repeat,
        )  # fmt: skip
    images, labels, load = _array_source(source, image_size, resize)
    sampler = IdentitySampler(labels, identities_per_batch, images_per_identity)
    steps_per_epoch = _steps(steps_per_epoch, sampler)
    order = EpochOrder(len(labels), False, seed, initial_epoch, WHERE, repeat)

    def batches(epoch):
        rng = order.rng(epoch)
        for step in range(steps_per_epoch):
            indices = sampler.sample(rng)
            yield images[indices], labels[indices], np.int64(epoch), np.int64(step)

    signature = (
        tf.TensorSpec((sampler.batch_size, *images.shape[1:]), images.dtype),
        tf.TensorSpec((sampler.batch_size,), tf.int32),
        tf.TensorSpec((), tf.int64),
        tf.TensorSpec((), tf.int64),
    )
    dataset = order.epochs(signature, batches)
    dataset = dataset.map(
        lambda x, y, epoch, step: (load(x), y, order.flip_seed(epoch, step)), num_parallel_calls=tf.data.AUTOTUNE
    )
    dataset = finish(dataset, flip=flip, normalize=normalize)
    dataset.class_names = None
    dataset.skipped_files = []
    dataset.steps_per_epoch = steps_per_epoch
    return dataset


def _steps(steps_per_epoch, sampler):
    if steps_per_epoch is None:
        steps_per_epoch = max(1, sampler.num_eligible_images // sampler.batch_size)
    return check_positive_int(steps_per_epoch, "steps_per_epoch", WHERE)


def _folder_dataset(
    path, identities_per_batch, images_per_identity, image_size, seed, channels, flip, normalize, steps_per_epoch,
    on_error, resize, initial_epoch, repeat,
):  # fmt: skip
    """P x K batches of image files; a file that does not decode is named and
    replaced by another image of its identity (or its identity by another)."""
    if image_size is None:
        raise ValueError(f"{WHERE}: image_size is required when reading a folder. Received: image_size=None")
    image_size = image_size_pair(image_size, WHERE)
    channels = check_channels(channels, WHERE)
    paths, labels, class_names, skipped = image_folder_files(path, None, on_error, WHERE)
    sampler = IdentitySampler(labels, identities_per_batch, images_per_identity)
    steps_per_epoch = _steps(steps_per_epoch, sampler)
    order = EpochOrder(len(paths), False, seed, initial_epoch, WHERE, repeat)
    paths = np.asarray(paths)
    log = FailureLog(lambda i: str(paths[i]), WHERE, on_error, skipped, image_size)

    def load(file):
        return load_image(tf.io.read_file(file), image_size, resize)

    repair = _Repair(sampler, paths, load, (*image_size, 3), log, order)

    def batches(epoch):
        rng = order.rng(epoch)
        for step in range(steps_per_epoch):
            indices = sampler.sample(rng)
            yield paths[indices], labels[indices], indices, np.int64(epoch), np.int64(step)

    size = sampler.batch_size
    signature = (
        tf.TensorSpec((size,), tf.string),
        tf.TensorSpec((size,), tf.int32),
        tf.TensorSpec((size,), tf.int64),
        tf.TensorSpec((), tf.int64),
        tf.TensorSpec((), tf.int64),
    )
    dataset = order.epochs(signature, batches)
    dtype = tf.float32 if resize else tf.uint8
    dataset = decode_batches(dataset, load, (*image_size, 3), dtype).map(repair.check)
    dataset = finish(dataset, channels=channels, flip=flip, normalize=normalize)
    dataset.class_names = class_names
    dataset.skipped_files = skipped
    dataset.steps_per_epoch = steps_per_epoch
    return dataset


class _Repair:
    """Fills the places of the images a P x K batch lost to decoding errors.

    A lost image is replaced by another image of the same identity that is
    not in the batch yet; an identity left with fewer than K images that
    decode is replaced by another eligible identity. Replacements are drawn
    from a generator seeded by the batch's seed, epoch and step, so a run
    with a bad file is as reproducible (and as resumable) as one without.
    """

    def __init__(self, sampler, paths, load, image_shape, log, order):
        self.sampler = sampler
        self.image_shape = image_shape
        self.paths = paths
        self.load = load
        self.log = log
        self.order = order
        self.rng = None

    def check(self, images, status, shapes, labels, kept, ids, epoch, step):
        """tf.data step after `decode_batches`: full batches pass unchanged."""
        checked = check_sizes_op(self.log, status, shapes, kept)
        with tf.control_dependencies([checked]):
            images = tf.cast(images, tf.float32)

        def repaired():
            return tuple(
                tf.py_function(self.repair, [images, labels, kept, ids, epoch, step], [tf.float32, tf.int32])
            )

        images, labels = tf.cond(tf.size(kept) < tf.size(ids), repaired, lambda: (images, labels))
        size = self.sampler.batch_size
        images = tf.ensure_shape(images, (size, *self.image_shape))
        return images, tf.ensure_shape(labels, (size,)), self.order.flip_seed(epoch, step)

    def _decoded(self, index):
        """The image of file `index`, or None (named by the log) if it does not decode."""
        if index in self.log.failed_ids:
            return None
        try:
            image, status, shape = self.load(tf.constant(str(self.paths[index])))
        except tf.errors.OpError:
            self.log.report([index])
            return None
        if int(status) != EXACT:
            self.log.check_sizes([int(status)], [shape.numpy()], [index])
        return image.numpy().astype("float32")

    def _fill(self, members, images, taken, count):
        """Appends decoded images of `members` not in `taken` until `images` has `count`."""
        for index in self.rng.permutation(members):
            if len(images) == count:
                break
            if int(index) not in taken:
                image = self._decoded(int(index))
                taken.add(int(index))
                if image is not None:
                    images.append(image)
        return len(images) == count

    def repair(self, images, labels, kept, ids, epoch, step):
        images, kept, ids = images.numpy(), kept.numpy().tolist(), ids.numpy().tolist()
        self.rng = self.order.rng(int(epoch), int(step), 1)
        decoded = dict(zip(kept, images))
        self.log.report([i for i in ids if i not in decoded])
        k = self.sampler.images_per_identity
        groups = [ids[g : g + k] for g in range(0, len(ids), k)]
        identities = {int(self.sampler.labels[group[0]]) for group in groups}
        out_images, out_labels = [], []
        taken = set(ids)
        for group in groups:
            label = int(self.sampler.labels[group[0]])
            group_images = [decoded[i] for i in group if i in decoded]
            if not self._fill(self.sampler.members_of(label), group_images, taken, k):
                label, group_images = self._other_identity(identities, taken)
                identities.add(label)
            out_images += group_images
            out_labels += [label] * k
        return np.stack(out_images).astype("float32"), np.asarray(out_labels, "int32")

    def _other_identity(self, used, taken):
        for label in self.rng.permutation(self.sampler.identities):
            if int(label) not in used:
                images = []
                if self._fill(self.sampler.members_of(int(label)), images, taken, self.sampler.images_per_identity):
                    return int(label), images
        raise ValueError(
            f"{WHERE}: fewer than {self.sampler.identities_per_batch} identities have "
            f"{self.sampler.images_per_identity} images that decode; see the files named in the warnings."
        )


def _array_source(arrays, image_size, resize):
    """(images with a channel axis, int32 labels, loader of a batch of images).

    Images of another size than `image_size` are cropped when a related
    template says where (`crop_box`, with a warning), resized with
    `resize=True`, and refused otherwise."""
    images, labels = (np.asarray(a) for a in arrays)
    if len(images) != len(labels):
        raise ValueError(
            f"{WHERE}: images and labels differ in length. Received: {len(images)} images, {len(labels)} labels"
        )
    if images.ndim == 3:
        images = images[..., None]
    size = None if image_size is None else image_size_pair(image_size, WHERE)
    source = tuple(images.shape[1:3])
    if size is not None and source != size and not resize:
        box = crop_box(source, size)
        if box is None:
            raise ValueError(
                f"{WHERE}: the images are {source[0]}x{source[1]} (height x width), but image_size is "
                f"{size[0]}x{size[1]}; images are never resized silently. Align them to the model's template, "
                f"or pass resize=True to resize them. Received: images.shape={images.shape}, image_size={size}"
            )
        top, left, height, width = box
        warnings.warn(
            f"{WHERE}: {source[0]}x{source[1]} faces are cropped to rows {top}:{top + height}, columns "
            f"{left}:{left + width} for image_size {size}: the two alignment templates differ by this shift only.",
            stacklevel=3,
        )
        images = images[:, top : top + height, left : left + width]
    resize_to = size if resize and size is not None else None

    def load(batch):
        batch = tf.cast(batch, tf.float32)
        return batch if resize_to is None else tf.image.resize(batch, resize_to)

    return images, labels.astype("int32").reshape(-1), load
