"""Embeddings of images by a model, and the cosine scores of image pairs."""

import keras
import numpy as np

from kerasface._checks import check_positive_int
from kerasface.evaluate.similarity import cosine_scores

# How an image's embedding is combined with its horizontal mirror's.
FLIP_MODES = ("sum", "concat", None)


def _predict(model, images, batch_size):
    """Runs `model` over `images` in batches, cast to float32 one batch at a time.

    The last batch is padded to the size of the others so that the compiled
    function sees one shape only (no retracing), and the padding is dropped.
    """
    batch_size = min(batch_size, len(images))
    # predict_on_batch runs the Keras model's compiled predict function; plain callables are called.
    forward = getattr(model, "predict_on_batch", model)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], dtype="float32")
        padding = [(0, batch_size - len(batch))] + [(0, 0)] * (batch.ndim - 1)
        outputs.append(keras.ops.convert_to_numpy(forward(np.pad(batch, padding)))[: len(batch)])
    features = np.concatenate(outputs)
    if features.ndim != 2:
        raise ValueError(
            "The model must map images (n, height, width, channels) to embeddings (n, dim). "
            f"Received outputs of shape {features.shape}"
        )
    return features


def check_flip(flip, caller):
    """Returns `flip` as one of `FLIP_MODES` (`False` and `"none"` mean `None`), or raises `ValueError`."""
    if flip is None or flip is False or flip == "none":
        return None
    if isinstance(flip, str) and flip in FLIP_MODES:
        return flip
    raise ValueError(
        f"{caller}: flip must be 'sum' (insightface), 'concat' (SphereFace) or None (no mirror). "
        f"Received: flip={flip!r}"
    )


def embed_images(model, images, flip="sum", batch_size=64):
    """Embeddings of `images`, shape (n, dim), or (n, 2 * dim) with `flip="concat"`.

    Args:
        model: a Keras model (or any callable) from images (n, height,
            width, channels) to embeddings (n, dim). It receives the pixels
            as float32 as they are given, so it must hold its own preprocessing.
        images: array of shape (n, height, width, channels), e.g. RGB uint8.
        flip: how the embedding of the horizontally mirrored image is used:
            `"sum"` adds it to the image's embedding, as insightface's
            `eval/verification.py` does before normalising (the protocol of
            published ArcFace numbers); `"concat"` appends it, as SphereFace's
            `test/code/evaluation.m` does; `None` ignores the mirror.
            Defaults to `"sum"`.
        batch_size: images per forward pass. Defaults to `64`.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"images must have shape (n, height, width, channels) with n >= 1. Received: images.shape={images.shape}"
        )
    flip = check_flip(flip, "embed_images")
    batch_size = check_positive_int(batch_size, "batch_size", "embed_images")
    features = _predict(model, images, batch_size)
    if flip is None:
        return features
    mirrored = _predict(model, images[:, :, ::-1], batch_size)
    if flip == "sum":
        return features + mirrored
    return np.concatenate([features, mirrored], axis=1)


def pair_scores(model, images_a, images_b, flip="sum", batch_size=64):
    """Cosine similarity of the embeddings of `images_a[i]` and `images_b[i]`.

    Args:
        model: a Keras model (or callable) from images to embeddings.
        images_a, images_b: the two images of each pair, shape
            (n, height, width, channels).
        flip: `"sum"`, `"concat"` or `None`: how each embedding is combined
            with its horizontal mirror's (see `embed_images`). Defaults to `"sum"`.
        batch_size: images per forward pass. Defaults to `64`.

    Returns:
        An array of n scores in [-1, 1].

    Reference:
        - [Liu et al., 2017, SphereFace](https://arxiv.org/abs/1704.08063)
    """
    if np.shape(images_a) != np.shape(images_b):
        raise ValueError(
            "images_a and images_b must hold the two images of each pair, with one shape. "
            f"Received: images_a.shape={np.shape(images_a)}, images_b.shape={np.shape(images_b)}"
        )
    return cosine_scores(
        embed_images(model, images_a, flip, batch_size), embed_images(model, images_b, flip, batch_size)
    )
