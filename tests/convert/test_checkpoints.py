"""Reference checkpoints load into the zoo exactly (issue 12).

The fixtures (tests/fixtures/checkpoints, written by
bench/make_checkpoint_fixtures.py with PyTorch, which these tests never
import) hold each reference network with random weights and random
batch-norm statistics in its own format, and its embeddings of fixed images.
Each test converts the file and compares the Keras embeddings on the same raw
pixels: mean cosine >= 0.99999 and max abs error <= 1e-4 of the embedding
scale. The reduced-width variants are built by the zoo's own backbone
functions with their width constants patched (the depth and the layer
layout are the backbone's).
"""

import importlib
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasface import convert, zoo
from tests.convert.seeded import seeded_state

# The package re-exports the functions under the modules' names.
iresnet_module = importlib.import_module("kerasface.backbones.iresnet")
sphereface_module = importlib.import_module("kerasface.backbones.sphereface")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints"



def reference(name):
    data = np.load(FIXTURES / f"{name}_reference.npz")
    return data["images"], data["embeddings"]


def assert_parity(model, images, expected):
    actual = keras.ops.convert_to_numpy(model(images, training=False))
    scale = max(1.0, float(np.abs(expected).max()))
    cosine = np.sum(actual * expected, axis=1) / (
        np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1)
    )
    assert np.abs(actual - expected).max() <= 1e-4 * scale, np.abs(actual - expected).max()
    assert cosine.min() >= 0.99999, cosine


@pytest.fixture
def small_iresnet(monkeypatch):
    monkeypatch.setattr(iresnet_module, "STAGE_FILTERS", (8, 16, 16, 32))
    recipe = zoo.recipe("iresnet50_arcface").replace(
        backbone_args={"depth": 18}, input_shape=(32, 32, 3), embedding_dim=16, num_classes=10
    )
    return recipe, zoo.make_embedder(recipe)


@pytest.fixture
def small_sphere(monkeypatch):
    monkeypatch.setattr(sphereface_module, "STAGE_FILTERS", (8, 8, 16, 16))
    # The port's layout: every convolution has a bias, the residual ones too.
    recipe = zoo.recipe("sphereface20").replace(
        embedding_dim=16, num_classes=10, backbone_args={"depth": 20, "residual_bias": True}
    )
    return recipe


@pytest.mark.backends
@pytest.mark.parametrize("file", ["iresnet_small.pth", "iresnet_small_legacy.pth", "iresnet_small.onnx"])
def test_arcface_iresnet(small_iresnet, file):
    recipe, embedder = small_iresnet
    report = convert.load_weights(embedder, FIXTURES / file, recipe)
    assert report.family == "arcface_iresnet"
    images, expected = reference("iresnet_small")
    assert_parity(embedder, images, expected)


@pytest.mark.backends
@pytest.mark.parametrize("file", ["mobilefacenet.pth", "mobilefacenet.onnx"])
def test_arcface_mobilefacenet(file):
    recipe = zoo.recipe("mobilefacenet_arcface")
    embedder = zoo.make_embedder(recipe)
    report = convert.load_weights(embedder, FIXTURES / file, recipe)
    assert report.format == ("onnx" if file.endswith("onnx") else "pytorch")
    images, expected = reference("mobilefacenet")
    assert_parity(embedder, images, expected)


@pytest.mark.backends
@pytest.mark.parametrize("file", ["sphere_small.pth", "sphere_small_legacy.pth"])
def test_sphere20a_with_its_head(small_sphere, file):
    model = zoo.from_recipe(small_sphere, compile=False)
    report = convert.load_weights(model, FIXTURES / file, small_sphere)
    images, expected = reference("sphere_small")
    assert_parity(model.embedder, images, expected)
    fc6 = convert.read_state_dict(FIXTURES / file)["fc6.weight"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.head.kernel), fc6.T)  # AngleLinear: (in, out)
    assert any("BGR" in note for note in report.notes)


@pytest.mark.backends
def test_sphere20a_head_of_another_class_count_is_left_out(small_sphere):
    recipe = small_sphere.replace(num_classes=7)
    model = zoo.from_recipe(recipe, compile=False)
    before = keras.ops.convert_to_numpy(model.head.kernel)
    report = convert.load_weights(model, FIXTURES / "sphere_small.pth", recipe)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.head.kernel), before)
    fc6 = convert.read_state_dict(FIXTURES / "sphere_small.pth")["fc6.weight"]
    note = next(note for note in report.notes if "fc6.weight" in note)
    assert f"fc6.weight {tuple(fc6.shape)} (embedding_dim, classes) left out" in note
    assert f"the head's kernel is (7, {fc6.shape[0]}) (classes, embedding_dim)" in note


def facenet_state():
    data = np.load(FIXTURES / "facenet_reference.npz")
    spec = [(key, tuple(shape)) for key, shape in json.loads(str(data["spec"]))]
    return seeded_state(spec, int(data["seed"])), data["images"], data["embeddings"]


def facenet_embedder(batch_norm_scale):
    recipe = zoo.recipe("facenet").replace(
        input_shape=(80, 80, 3),
        embedding_dim=512,
        backbone_args={"dropout_rate": 0.0, "batch_norm_scale": batch_norm_scale},
    )
    return recipe, zoo.make_embedder(recipe)


@pytest.mark.backends
def test_facenet_pytorch_full_size():
    state, images, expected = facenet_state()
    recipe, embedder = facenet_embedder(batch_norm_scale=True)
    convert.load_state(embedder, state, "facenet_pytorch")
    assert_parity(embedder, images, expected)


def test_davidsandberg_tf1_checkpoint(tmp_path):
    """(TensorFlow only: a TF1 checkpoint is read with TensorFlow on any backend.)

    The facenet-pytorch weights under davidsandberg's TF-slim names, saved with tf.compat.v1.

    TF-slim's batch norm has no gamma, so each gamma is folded exactly into the
    convolution (or the Bottleneck) before it: gamma (W x - m) / s = ((gamma W) x - gamma m) / s.
    """
    import tensorflow as tf

    state, images, expected = facenet_state()
    recipe, embedder = facenet_embedder(batch_norm_scale=False)
    backbone = convert.families.backbone_of(embedder)
    tf1 = {}
    torch_units = convert.families.inception_resnet_units(backbone, "torch")
    tf_units = convert.families.inception_resnet_units(backbone, "tf1")
    for torch_unit, tf_unit in zip(torch_units, tf_units):
        weight = state[f"{torch_unit.key}.weight"]
        if torch_unit.bn_key:
            gamma = state[f"{torch_unit.bn_key}.weight"]
            weight = weight * gamma.reshape((-1,) + (1,) * (weight.ndim - 1))
            bn = f"{tf_unit.bn_key}/"
            tf1[bn + "beta"] = state[f"{torch_unit.bn_key}.bias"]
            tf1[bn + "moving_mean"] = state[f"{torch_unit.bn_key}.running_mean"] * gamma
            tf1[bn + "moving_variance"] = state[f"{torch_unit.bn_key}.running_var"]
        else:
            tf1[f"{tf_unit.key}/biases"] = state[f"{torch_unit.key}.bias"]
        tf1[f"{tf_unit.key}/weights"] = weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight.T
    tf1["InceptionResnetV1/Conv2d_1a_3x3/weights/Adam"] = np.zeros((3, 3, 3, 32), np.float32)  # optimiser slot
    tf1["Logits/weights"] = np.zeros((512, 10), np.float32)
    tf1["global_step"] = np.array(7, np.int64)
    # What tf.compat.v1.train.Saver writes (the V2 checkpoint format), without building a graph.
    prefix = str(tmp_path / "model-20180402-114759.ckpt-0")
    names = sorted(tf1)
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=[tf1[n] for n in names]
    )
    assert convert.detect_format(prefix) == "tf1"
    report = convert.load_weights(embedder, prefix + ".index", recipe)
    assert report.family == "facenet_tf1"
    assert_parity(embedder, images, expected)


@pytest.mark.slow
def test_converted_model_exports_to_tflite_int8(small_iresnet, tmp_path):
    from kerasface import export

    recipe, embedder = small_iresnet
    convert.load_weights(embedder, FIXTURES / "iresnet_small.onnx", recipe)
    calibration = np.random.RandomState(0).uniform(0, 255, (64, 32, 32, 3)).astype(np.float32)
    report = export.export(embedder, tmp_path / "iresnet.tflite", format="tflite_int8",
                           representative_data=calibration)
    assert report.mean_cosine >= 0.99


@pytest.mark.parametrize("file", ["mobilefacenet.pth", "mobilefacenet.onnx"])
def test_zoo_build_takes_a_reference_checkpoint(file):
    model = zoo.build("mobilefacenet_arcface", num_classes=10, weights=FIXTURES / file, steps_per_epoch=10)
    images, expected = reference("mobilefacenet")
    assert_parity(model.embedder, images, expected)
    assert model.optimizer is not None


def test_zoo_build_loads_sphere20a_into_backbone_and_head(small_sphere):
    model = zoo.from_recipe(small_sphere, compile=False, weights=FIXTURES / "sphere_small.pth")
    images, expected = reference("sphere_small")
    assert_parity(model.embedder, images, expected)
    fc6 = convert.read_state_dict(FIXTURES / "sphere_small.pth")["fc6.weight"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.head.kernel), fc6.T)  # AngleLinear: (in, out)
