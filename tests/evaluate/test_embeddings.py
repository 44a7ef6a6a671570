"""Cosine scores and pair_scores with a tiny Keras model."""

import keras
import numpy as np
import pytest

from kerasface import evaluate


def linear_model(kernel):
    """Images (4, 3, 1) -> flatten -> embedding = pixels @ kernel."""
    inputs = keras.Input((4, 3, 1))
    outputs = keras.layers.Dense(kernel.shape[1], use_bias=False)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([kernel])
    return model


def numpy_cosine(a, b):
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_cosine_scores_hand_computed():
    np.testing.assert_allclose(evaluate.cosine_scores([[1, 0], [3, 4], [1, 1]], [[0, 2], [3, 4], [-2, -2]]), [0, 1, -1])
    with pytest.raises(ValueError, match="a.shape=\\(1, 2\\), b.shape=\\(1, 3\\)"):
        evaluate.cosine_scores([[1, 0]], [[1, 0, 0]])
    with pytest.raises(ValueError, match="NaN or infinity"):
        evaluate.cosine_scores([[np.nan, 0]], [[1, 0]])


@pytest.mark.parametrize("flip", [None, "sum", "concat"])
def test_pair_scores_matches_numpy(flip):
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(12, 5)).astype("float32")
    images_a = rng.integers(0, 256, size=(7, 4, 3, 1)).astype("uint8")
    images_b = rng.integers(0, 256, size=(7, 4, 3, 1)).astype("uint8")

    def embed(images):
        features = images.reshape(len(images), -1).astype(np.float64) @ kernel
        mirrored = images[:, :, ::-1].reshape(len(images), -1).astype(np.float64) @ kernel
        if flip == "sum":
            return features + mirrored
        return np.concatenate([features, mirrored], axis=1) if flip == "concat" else features

    model = linear_model(kernel)
    features = evaluate.embed_images(model, images_a, flip=flip, batch_size=3)  # 7 = 3 + 3 + 1
    assert features.shape == (7, 10 if flip == "concat" else 5)
    np.testing.assert_allclose(features, embed(images_a), rtol=1e-4)
    scores = evaluate.pair_scores(model, images_a, images_b, flip=flip, batch_size=3)
    np.testing.assert_allclose(scores, numpy_cosine(embed(images_a), embed(images_b)), atol=1e-5)


def test_flip_changes_scores_of_asymmetric_images():
    kernel = np.eye(12, 2, dtype="float32")  # embedding = the first two pixels of the top row
    image = np.zeros((1, 4, 3, 1), np.uint8)
    image[0, 0, 0, 0] = 10  # top-left pixel; its mirror has the top-right one instead
    other = image.copy()
    other[0, 0, 1, 0] = 10
    # Without flip: (10, 0) vs (10, 10) -> 1/sqrt(2). The mirrors' embeddings are (0, 0) and (0, 10).
    model = linear_model(kernel)
    assert evaluate.pair_scores(model, image, other, flip=None)[0] == pytest.approx(1 / np.sqrt(2))
    # concat: (10, 0, 0, 0) vs (10, 10, 0, 10) -> 100 / (10 sqrt(300)).
    assert evaluate.pair_scores(model, image, other, flip="concat")[0] == pytest.approx(100 / (10 * np.sqrt(300)))
    # sum (insightface): (10, 0) vs (10, 20) -> 100 / (10 sqrt(500)).
    assert evaluate.pair_scores(model, image, other, flip="sum")[0] == pytest.approx(100 / (10 * np.sqrt(500)))
    assert evaluate.pair_scores(model, image, other)[0] == pytest.approx(100 / (10 * np.sqrt(500)))  # the default


def flatten(images):
    return images.reshape(len(images), -1)


def test_plain_callable_and_errors():
    images = np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3)
    np.testing.assert_allclose(evaluate.embed_images(flatten, images, flip=False), images.reshape(2, -1))
    with pytest.raises(ValueError, match="images_a.shape=\\(2, 2, 2, 3\\), images_b.shape=\\(1, 2, 2, 3\\)"):
        evaluate.pair_scores(flatten, images, images[:1])
    with pytest.raises(ValueError, match="embeddings \\(n, dim\\). Received outputs of shape \\(2, 2, 2, 3\\)"):
        evaluate.embed_images(lambda x: x, images)
    with pytest.raises(ValueError, match="images.shape=\\(2, 12\\)"):
        evaluate.embed_images(flatten, images.reshape(2, 12))
    with pytest.raises(ValueError, match="'sum' \\(insightface\\), 'concat'.*Received: flip=True"):
        evaluate.embed_images(flatten, images, flip=True)
