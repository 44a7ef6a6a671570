"""The layouts of the published checkpoints: sphere20a's biased residual convolutions,
arcface_torch's `get_mbf(scale=2)` and IResNet depths 18 to 200 (issue 12).

The recipe is fitted to a checkpoint before it is built (`convert.fit_recipe`,
used by `zoo.build(weights=...)` and `kerasface convert`), and a model built
in another layout is refused with a message saying which argument to pass.
"""

import importlib
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasface import convert, zoo
from kerasface.convert import families, recipes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints"
sphereface_module = importlib.import_module("kerasface.backbones.sphereface")


def reference(name):
    data = np.load(FIXTURES / f"{name}_reference.npz")
    return data["images"], data["embeddings"]


def assert_parity(model, images, expected):
    # One compiled call (eager JAX compiles every layer on its own, several times slower).
    actual = model.predict(images, batch_size=len(images), verbose=0)
    cosine = np.sum(actual * expected, axis=1) / (np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1))
    assert np.abs(actual - expected).max() <= 1e-4 * max(1.0, float(np.abs(expected).max()))
    assert cosine.min() >= 0.99999, cosine


# === sphere20a: a bias in every convolution ===


@pytest.fixture
def caffe_sphere(monkeypatch):
    """The zoo's sphereface20 (residual convolutions without bias) at the fixture's widths."""
    monkeypatch.setattr(sphereface_module, "STAGE_FILTERS", (8, 8, 16, 16))
    return zoo.recipe("sphereface20").replace(embedding_dim=16, num_classes=10)


def test_sphere20a_fixture_has_non_zero_residual_biases():
    state = convert.read_state_dict(FIXTURES / "sphere_small.pth")
    residual = [k for k in state if k.endswith(".bias") and families.is_sphere_residual(k.split(".")[0])]
    assert len(residual) == 16  # 2 x (1 + 2 + 4 + 1) residual convolutions
    assert all(np.abs(state[k]).max() > 0.01 for k in residual)


def test_sphere20a_into_a_model_without_residual_biases_says_what_to_pass(caffe_sphere):
    model = zoo.from_recipe(caffe_sphere, compile=False)
    before = keras.ops.convert_to_numpy(model.embedder.get_layer("sphereface20").get_layer("conv1_1").kernel)
    with pytest.raises(ValueError, match=r"conv1_2\.bias is not all 0.*residual_bias=True") as info:
        convert.load_weights(model, FIXTURES / "sphere_small.pth", caffe_sphere)
    assert '{"depth": 20, "residual_bias": True}' in str(info.value)
    after = keras.ops.convert_to_numpy(model.embedder.get_layer("sphereface20").get_layer("conv1_1").kernel)
    np.testing.assert_array_equal(after, before)  # nothing half-loaded


@pytest.mark.backends
def test_zoo_build_fits_sphereface20_to_the_port(caffe_sphere):
    with pytest.warns(UserWarning, match=r"backbone_args=\{'depth': 20, 'residual_bias': True\}"):
        model = zoo.from_recipe(caffe_sphere, compile=False, weights=FIXTURES / "sphere_small_legacy.pth")
    assert model.recipe.backbone_args == {"depth": 20, "residual_bias": True}
    assert model.recipe.num_classes == 10
    images, expected = reference("sphere_small")
    assert_parity(model.embedder, images, expected)
    fc6 = convert.read_state_dict(FIXTURES / "sphere_small_legacy.pth")["fc6.weight"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.head.kernel), fc6.T)  # AngleLinear: (in, out)


def test_sphere20a_with_zero_residual_biases_keeps_the_papers_layout(caffe_sphere):
    # A Caffe model converted to the port's names: the frozen biases are all 0.
    state = dict(convert.read_state_dict(FIXTURES / "sphere_small.pth"))
    for key in state:
        if key.endswith(".bias") and families.is_sphere_residual(key.split(".")[0]):
            state[key] = np.zeros_like(state[key])
    checkpoint = convert.Checkpoint("caffe_sphere20.pth", "pytorch", state=state)
    assert convert.checkpoint_overrides(checkpoint, caffe_sphere) == {}
    assert families.backbone_args_of("sphere20a", state) == {"depth": 20, "residual_bias": False}
    model = zoo.from_recipe(caffe_sphere, compile=False)
    report = convert.load_weights(model, checkpoint, caffe_sphere)
    # 20 convolutions: 20 kernels, 4 biases (the stride-2 ones), 20 PReLUs; fc5 kernel and bias; fc6.
    assert report.assigned == 20 + 4 + 20 + 2 + 1


# === arcface_torch get_mbf(scale=2) ===


@pytest.fixture
def mbf_recipe():
    # The fixture runs at 64x64 (its GDC kernel is 4x4, 7x7 at 112x112).
    return zoo.recipe("mobilefacenet_arcface").replace(input_shape=(64, 64, 3), num_classes=10)


def test_mbf_overrides_come_from_the_stem(mbf_recipe):
    checkpoint = convert.read_checkpoint(FIXTURES / "mobilefacenet_x2.pth")
    assert checkpoint.state["layers.1.layers.0.weight"].shape == (128, 2, 3, 3)  # 64 groups of 2 channels
    assert checkpoint.state["layers.0.layers.0.weight"].dtype == np.float16
    assert convert.checkpoint_overrides(checkpoint, mbf_recipe) == {"embedding_dim": 512, "backbone_args": {"scale": 2}}
    scale_1 = convert.read_checkpoint(FIXTURES / "mobilefacenet.pth")
    assert convert.checkpoint_overrides(scale_1, zoo.recipe("mobilefacenet_arcface")) == {}


@pytest.mark.backends
def test_zoo_build_loads_get_mbf_scale_2(mbf_recipe):
    with pytest.warns(UserWarning, match=r"embedding_dim=512, backbone_args=\{'scale': 2\}"):
        model = zoo.from_recipe(mbf_recipe, compile=False, weights=FIXTURES / "mobilefacenet_x2.pth")
    backbone = families.backbone_of(model.embedder)
    assert backbone.get_layer("conv2_dw").groups == 64
    assert backbone.get_layer("bottleneck3_1_expand").filters == 256  # hidden width unscaled
    assert backbone.get_layer("bottleneck3_1_project").filters == 256  # 128 x 2
    images, expected = reference("mobilefacenet_x2")
    assert_parity(model.embedder, images, expected)


def test_mbf_scale_2_into_scale_1_is_refused_by_shape(mbf_recipe):
    recipe = mbf_recipe.replace(embedding_dim=512)
    embedder = zoo.make_embedder(recipe)
    with pytest.raises(ValueError, match=r"MobileFaceNet with 128 stem filters \(scale 2\).*wrong shapes: "
                                         r"layers\.0\.layers\.0\.weight: \(128, 3, 3, 3\)"):
        convert.load_weights(embedder, FIXTURES / "mobilefacenet_x2.pth", recipe)


# === arcface_torch IResNet depths ===

IRESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 200: (6, 26, 60, 6)}


def iresnet_keys(blocks):
    """The state-dict keys of arcface_torch's `IResNet(IBasicBlock, blocks)` (backbones/iresnet.py)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight", *(f"bn1.{p}" for p in bn), "prelu.weight"]
    for stage, count in enumerate(blocks, start=1):
        for index in range(count):
            block = f"layer{stage}.{index}"
            keys += [f"{block}.bn1.{p}" for p in bn] + [f"{block}.conv1.weight"] + [f"{block}.bn2.{p}" for p in bn]
            keys += [f"{block}.prelu.weight", f"{block}.conv2.weight"] + [f"{block}.bn3.{p}" for p in bn]
            if index == 0:  # stride 2: downsample = Sequential(conv1x1, BatchNorm2d)
                keys += [f"{block}.downsample.0.weight"] + [f"{block}.downsample.1.{p}" for p in bn]
    keys += [f"bn2.{p}" for p in bn] + ["fc.weight", "fc.bias"] + [f"features.{p}" for p in bn]
    return keys


@pytest.mark.parametrize("depth", sorted(IRESNET_BLOCKS))
def test_iresnet_depth_is_read_off_the_keys(depth):
    keys = iresnet_keys(IRESNET_BLOCKS[depth])
    state = {key: np.zeros(1, np.float32) for key in keys}
    state["fc.weight"] = np.zeros((512, 1), np.float32)
    assert families.detect_family(state) == "arcface_iresnet"
    assert families.iresnet_depth(keys) == depth
    assert f"(iresnet{depth})" in families.describe_architecture("arcface_iresnet", keys)
    checkpoint = convert.Checkpoint(f"r{depth}.pth", "pytorch", state=state)
    overrides = convert.checkpoint_overrides(checkpoint, zoo.recipe("iresnet50_arcface"))
    assert overrides == ({} if depth == 50 else {"backbone_args": {"depth": depth}})
    # An exported graph has 1 + 2 x blocks + 4 convolutions (the stem, each block's two, the downsamples).
    convs = sum(key.endswith("weight") and ("conv" in key or "downsample.0" in key) for key in keys)
    assert recipes.ONNX_IRESNET_DEPTHS[convs] == depth


def test_iresnet_of_an_unknown_depth_sets_no_depth():
    keys = iresnet_keys((2, 2, 3, 2))
    assert families.iresnet_depth(keys) is None
    assert families.backbone_args_of("arcface_iresnet", dict.fromkeys(keys)) == {}
    assert "(2, 2, 3, 2)" in families.describe_architecture("arcface_iresnet", keys)


def test_onnx_iresnet_depth_from_the_graph():
    checkpoint = convert.read_checkpoint(FIXTURES / "iresnet_small.onnx")
    overrides = convert.checkpoint_overrides(checkpoint, zoo.recipe("iresnet50_arcface"))
    assert overrides["backbone_args"] == {"depth": 18}
    assert overrides["embedding_dim"] == 16
