"""Bad arguments raise clear errors; `weights=` loads local files only."""

import numpy as np
import pytest

from kerasface import backbones


@pytest.mark.parametrize(
    "build, valid",
    [
        (lambda: backbones.sphereface(18), "4, 10, 20, 36, 64"),
        (lambda: backbones.iresnet(20), "18, 34, 50, 100, 200"),
        (lambda: backbones.iresnet("50"), "18, 34, 50, 100, 200"),
    ],
)
def test_unknown_depth_lists_the_valid_ones(build, valid):
    with pytest.raises(ValueError, match=f"valid depths are {valid}. Received: depth="):
        build()


@pytest.mark.parametrize(
    "build, minimum",
    [
        (lambda: backbones.inception_resnet_v1(input_shape=(160, 74, 3)), 75),
        (lambda: backbones.lenet_plus_plus(input_shape=(11, 28, 1)), 12),
    ],
)
def test_too_small_input_names_the_minimum(build, minimum):
    with pytest.raises(ValueError, match=f"at least {minimum}x{minimum} pixels"):
        build()


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(input_shape=(112, 96)), "input_shape"),
        (dict(input_shape=(112, 96, 0)), "input_shape"),
        (dict(input_shape=(112.0, 96, 3)), "input_shape"),
        (dict(input_shape=(None, 96, 3)), "input_shape"),
        (dict(embedding_dim=0), "embedding_dim"),
        (dict(embedding_dim=2.5), "embedding_dim"),
    ],
)
def test_bad_shapes_and_sizes(kwargs, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}="):
        backbones.sphereface(20, **kwargs)


@pytest.mark.parametrize("scale", [None, 1, "False"])
def test_bad_batch_norm_scale(scale):
    with pytest.raises(ValueError, match="Received: batch_norm_scale="):
        backbones.inception_resnet_v1(batch_norm_scale=scale)


def test_trunk_weights_are_checked_like_weights(tmp_path):
    with pytest.raises(ValueError, match="Received: trunk_weights='resnet50.pth'"):
        backbones.resnet50_reid(input_shape=(32, 32, 3), trunk_weights="resnet50.pth")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        backbones.resnet50_reid(input_shape=(32, 32, 3), trunk_weights=tmp_path / "resnet50.weights.h5")


@pytest.mark.parametrize("rate", [-0.1, 1.0, "0.5"])
def test_bad_dropout_rate(rate):
    with pytest.raises(ValueError, match="dropout_rate must be a number in"):
        backbones.inception_resnet_v1(dropout_rate=rate)


def test_missing_weights_file(tmp_path):
    missing = tmp_path / "lenet.weights.h5"
    with pytest.raises(FileNotFoundError, match="never downloads"):
        backbones.lenet_plus_plus(weights=missing)


def test_weights_must_be_a_keras_file(tmp_path):
    with pytest.raises(ValueError, match=r"\.weights\.h5 or \.keras"):
        backbones.lenet_plus_plus(weights="vggface2")


@pytest.mark.parametrize("filename", ["lenet.weights.h5", "lenet.keras"])
def test_weights_are_loaded_from_a_local_file(tmp_path, filename):
    source = backbones.lenet_plus_plus()
    path = tmp_path / filename
    if filename.endswith(".keras"):
        source.save(path)
    else:
        source.save_weights(path)
    images = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype("float32")

    fresh = backbones.lenet_plus_plus()
    assert not np.allclose(fresh(images), source(images))
    loaded = backbones.lenet_plus_plus(weights=path)
    np.testing.assert_array_equal(np.asarray(loaded(images)), np.asarray(source(images)))
