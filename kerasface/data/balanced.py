"""P x K batches (P identities, K images of each) for triplet-style losses."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasface._checks import check_positive_int
from kerasface.data.folders import check_channels, file_loader, readable_image_folder
from kerasface.data.images import FailureLog, decode_batches, finish, image_size_pair

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

    def sample(self):
        identities = self.rng.choice(len(self.members), self.identities_per_batch, replace=False)
        return np.concatenate(
            [self.rng.choice(self.members[i], self.images_per_identity, replace=False) for i in identities]
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
):
    """A `tf.data.Dataset` of P x K batches `(images, labels)`.

    Each batch holds `identities_per_batch` (P) identities with
    `images_per_identity` (K) images each, so every anchor has K - 1
    positives and (P - 1) K negatives, as batch-hard and semi-hard triplet
    mining need (FaceNet section 3.2; Hermans et al. 2017, section 2).

    Args:
        source: a folder of identity folders (see `image_folder`), or an
            `(images, labels)` pair of arrays, images `(N, H, W[, C])`.
        identities_per_batch: P.
        images_per_identity: K.
        image_size: `(height, width)` to resize to; required for a folder,
            optional for arrays.
        seed: seed of the sampling and flipping.
        channels: 3 or 1, for a folder.
        flip: flip each image left-right with probability 1/2.
        normalize: optional callable applied to each float32 batch.
        steps_per_epoch: batches per epoch; defaults to the number of
            images of the eligible identities divided by P x K.
        on_error: `"skip"` or `"raise"` for unreadable files (folders).
            With `"skip"`, a file that passes the up-front check (see
            `image_folder`) but does not decode is named when met (a Python
            warning and `skipped_files`) and replaced by another image of its
            identity, or its identity by another, so no batch is lost or
            shortened.

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
            steps_per_epoch, on_error,
        )  # fmt: skip
    images, labels, load = _array_source(source, image_size)
    sampler = IdentitySampler(labels, identities_per_batch, images_per_identity, seed)
    steps_per_epoch = _steps(steps_per_epoch, sampler)

    def batches():
        for _ in range(steps_per_epoch):
            indices = sampler.sample()
            yield images[indices], labels[indices]

    signature = (
        tf.TensorSpec((sampler.batch_size, *images.shape[1:]), images.dtype),
        tf.TensorSpec((sampler.batch_size,), tf.int32),
    )
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    dataset = dataset.map(lambda x, y: (load(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = finish(dataset, flip=flip, seed=seed, normalize=normalize)
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
    on_error,
):  # fmt: skip
    """P x K batches of image files; a file that does not decode is named and
    replaced by another image of its identity (or its identity by another)."""
    if image_size is None:
        raise ValueError(f"{WHERE}: image_size is required when reading a folder. Received: image_size=None")
    image_size = image_size_pair(image_size, WHERE)
    channels = check_channels(channels, WHERE)
    paths, labels, class_names, skipped = readable_image_folder(path, None, on_error, WHERE)
    sampler = IdentitySampler(labels, identities_per_batch, images_per_identity, seed)
    steps_per_epoch = _steps(steps_per_epoch, sampler)
    paths = np.asarray(paths)
    log = FailureLog(lambda i: str(paths[i]), WHERE, on_error, skipped)
    load = file_loader(image_size, channels)
    repair = _Repair(sampler, paths, load, (*image_size, channels), log, seed)

    def batches():
        for _ in range(steps_per_epoch):
            indices = sampler.sample()
            yield paths[indices], labels[indices], indices

    size = sampler.batch_size
    signature = (
        tf.TensorSpec((size,), tf.string),
        tf.TensorSpec((size,), tf.int32),
        tf.TensorSpec((size,), tf.int64),
    )
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    dataset = decode_batches(dataset, load, (*image_size, channels)).map(repair.check)
    dataset = finish(dataset, flip=flip, seed=seed, normalize=normalize)
    dataset.class_names = class_names
    dataset.skipped_files = skipped
    dataset.steps_per_epoch = steps_per_epoch
    return dataset


class _Repair:
    """Fills the places of the images a P x K batch lost to decoding errors.

    A lost image is replaced by another image of the same identity that is
    not in the batch yet; an identity left with fewer than K images that
    decode is replaced by another eligible identity. Replacements are drawn
    from their own seeded generator, in batch order, so a run with a bad
    file is as reproducible as one without.
    """

    def __init__(self, sampler, paths, load, image_shape, log, seed):
        self.sampler = sampler
        self.image_shape = image_shape
        self.paths = paths
        self.load = load
        self.log = log
        self.rng = np.random.default_rng(None if seed is None else [seed, 1])

    def check(self, images, labels, kept, ids):
        """tf.data step after `decode_batches`: full batches pass unchanged."""

        def repaired():
            return tuple(tf.py_function(self.repair, [images, labels, kept, ids], [tf.float32, tf.int32]))

        images, labels = tf.cond(tf.size(kept) < tf.size(ids), repaired, lambda: (images, labels))
        size = self.sampler.batch_size
        return tf.ensure_shape(images, (size, *self.image_shape)), tf.ensure_shape(labels, (size,))

    def _decoded(self, index):
        """The image of file `index`, or None (named by the log) if it does not decode."""
        if index in self.log.failed_ids:
            return None
        try:
            return self.load(tf.constant(str(self.paths[index]))).numpy()
        except tf.errors.OpError:
            self.log.report([index])
            return None

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

    def repair(self, images, labels, kept, ids):
        images, kept, ids = images.numpy(), kept.numpy().tolist(), ids.numpy().tolist()
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


def _array_source(arrays, image_size):
    """(images with a channel axis, int32 labels, loader of a batch of images)."""
    images, labels = (np.asarray(a) for a in arrays)
    if len(images) != len(labels):
        raise ValueError(
            f"{WHERE}: images and labels differ in length. Received: {len(images)} images, {len(labels)} labels"
        )
    if images.ndim == 3:
        images = images[..., None]
    size = None if image_size is None else image_size_pair(image_size, WHERE)

    def load(batch):
        batch = tf.cast(batch, tf.float32)
        return batch if size is None else tf.image.resize(batch, size)

    return images, labels.astype("int32").reshape(-1), load
