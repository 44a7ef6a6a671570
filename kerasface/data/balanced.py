"""P x K batches (P identities, K images of each) for triplet-style losses."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasface._checks import check_positive_int
from kerasface.data.folders import check_channels, readable_image_folder
from kerasface.data.images import decode_image, finish, image_size_pair

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
        self.members = [order[s : s + c] for s, c in zip(starts[eligible], counts[eligible])]
        self.rng = np.random.default_rng(seed)

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

    Returns:
        The dataset; images are float32 in [0, 255] (before `normalize`),
        labels int32 (folder labels follow the sorted folder names, and the
        dataset's `class_names` attribute lists them); `steps_per_epoch`
        is an attribute too.

    Raises:
        ValueError: when fewer than P identities have K images, saying how
            many do.

    References:
        - [Schroff et al., 2015](https://arxiv.org/abs/1503.03832)
        - [Hermans et al., 2017](https://arxiv.org/abs/1703.07737)
    """
    if isinstance(source, (str, Path)):
        items, labels, load, class_names = _folder_source(source, image_size, channels, on_error)
    else:
        items, labels, load, class_names = _array_source(source, image_size)
    sampler = IdentitySampler(labels, identities_per_batch, images_per_identity, seed)
    if steps_per_epoch is None:
        steps_per_epoch = max(1, sampler.num_eligible_images // sampler.batch_size)
    steps_per_epoch = check_positive_int(steps_per_epoch, "steps_per_epoch", WHERE)

    def batches():
        for _ in range(steps_per_epoch):
            indices = sampler.sample()
            yield items[indices], labels[indices]

    signature = (
        tf.TensorSpec((sampler.batch_size, *items.shape[1:]), tf.string if items.dtype.kind == "U" else items.dtype),
        tf.TensorSpec((sampler.batch_size,), tf.int32),
    )
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    dataset = dataset.map(lambda x, y: (load(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = finish(dataset.ignore_errors(log_warning=True), flip=flip, seed=seed, normalize=normalize)
    dataset.class_names = class_names
    dataset.steps_per_epoch = steps_per_epoch
    return dataset


def _folder_source(path, image_size, channels, on_error):
    """(file paths, labels, loader of a batch of paths, class names)."""
    if image_size is None:
        raise ValueError(f"{WHERE}: image_size is required when reading a folder. Received: image_size=None")
    image_size = image_size_pair(image_size, WHERE)
    channels = check_channels(channels, WHERE)
    paths, labels, class_names, _ = readable_image_folder(path, None, on_error, WHERE)

    def load(files):
        return tf.map_fn(
            lambda file: decode_image(tf.io.read_file(file), image_size, channels),
            files,
            fn_output_signature=tf.float32,
        )

    return np.asarray(paths), labels, load, class_names


def _array_source(arrays, image_size):
    """(images with a channel axis, int32 labels, loader of a batch of images, None)."""
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

    return images, labels.astype("int32").reshape(-1), load, None
