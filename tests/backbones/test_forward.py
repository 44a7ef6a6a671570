"""Backbones at small inputs: output shapes, and forward passes against NumPy.

The NumPy re-implementations follow the reference code (prototxts,
insightface) with their symmetric padding, so they also catch Keras'
asymmetric "same" padding on even inputs, misplaced strides and wrong
layer order.
"""

import numpy as np
import pytest

from kerasface import backbones
from tests.backbones.numpy_ops import batch_norm, conv2d, depthwise_conv2d, max_pool, prelu, relu

EMBEDDING_DIM = 16

# A small input for each backbone and, from the stride arithmetic, the shape
# of one inner layer's output there.
SMALL = {
    # 28x24 -> 14x12 -> 7x6 -> 4x3 -> 2x2, flattened before fc5.
    "sphereface": (dict(depth=20, input_shape=(28, 24, 3)), "flatten", (None, 2 * 2 * 512)),
    # 12 -> 6 -> 3 -> 1 after the 2x2, 2x2 and 3x3 pools.
    "lenet_plus_plus": (dict(input_shape=(12, 12, 1)), "flatten", (None, 128)),
    # The smallest input: 75 -> 37 -> 35 -> 17 -> 15 -> 7 -> 3 -> 1.
    "inception_resnet_v1": (dict(input_shape=(75, 75, 3)), "Block8_add", (None, 1, 1, 1792)),
    # 32 -> 16 -> 8 -> 4 -> 2: the GDConv kernel covers the last 2x2 map.
    "mobilefacenet": (dict(input_shape=(32, 32, 3)), "gdconv", (None, 1, 1, 512)),
    # 32 -> 16 -> 8 -> 4 -> 2 (the stem keeps 32).
    "iresnet": (dict(depth=18, input_shape=(32, 32, 3)), "flatten", (None, 2 * 2 * 512)),
    # ResNet-50 divides by 32, rounding up: 64x32 -> 2x1, 33x31 -> 2x1.
    "resnet50_reid": (dict(input_shape=(33, 31, 3)), "resnet50", (None, 2, 1, 2048)),
}


def images(shape, batch=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


def randomize(model, seed=0):
    """Random biases, PReLU slopes and batch-norm statistics (they start constant)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if weight.name == "moving_variance":
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
        elif weight.name in ("bias", "alpha", "gamma", "beta", "moving_mean"):
            weight.assign(rng.uniform(-0.5, 0.5, weight.shape) + (weight.name == "gamma"))


def weights_of(model):
    return {layer.name: [np.asarray(w, dtype="float64") for w in layer.get_weights()] for layer in model.layers}


def assert_matches(model, x, expected):
    actual = np.asarray(model(x, training=False))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_every_backbone_has_a_small_case():
    assert SMALL.keys() == backbones.BACKBONES.keys()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_input(name):
    kwargs, layer, shape = SMALL[name]
    model = backbones.BACKBONES[name](embedding_dim=EMBEDDING_DIM, **kwargs)
    assert model.output_shape == (None, EMBEDDING_DIM)
    assert model.layers[-1].name == "embedding"
    assert tuple(model.get_layer(layer).output.shape) == shape

    batch = images(kwargs["input_shape"])
    embeddings = np.asarray(model(batch, training=False))
    assert embeddings.shape == (2, EMBEDDING_DIM) and np.all(np.isfinite(embeddings))
    # In inference mode each image's embedding does not depend on the batch.
    np.testing.assert_allclose(np.asarray(model(batch[1:], training=False)), embeddings[1:], rtol=1e-4, atol=1e-5)


def test_mobilefacenet_gdconv_spans_the_last_feature_map():
    assert backbones.mobilefacenet().get_layer("gdconv").kernel.shape == (7, 7, 512, 1)


def test_sphereface_matches_the_prototxt():
    # Depth 10 (units 0-1-2-0) has stride-2 convs on even sides and residual units.
    model = backbones.sphereface(10, input_shape=(12, 10, 3), embedding_dim=EMBEDDING_DIM)
    randomize(model)
    w = weights_of(model)
    x = images((12, 10, 3))

    y = x.astype("float64")
    for stage, units in enumerate((0, 1, 2, 0), start=1):
        y = prelu(conv2d(y, *w[f"conv{stage}_1"], stride=2, pad=1), *w[f"conv{stage}_1_prelu"])
        for unit in range(units):
            first = 2 * unit + 2
            branch = prelu(conv2d(y, *w[f"conv{stage}_{first}"], pad=1), *w[f"conv{stage}_{first}_prelu"])
            branch = prelu(conv2d(branch, *w[f"conv{stage}_{first + 1}"], pad=1), *w[f"conv{stage}_{first + 1}_prelu"])
            y = y + branch
    kernel, bias = w["embedding"]
    assert_matches(model, x, y.reshape(len(x), -1) @ kernel + bias)


def test_lenet_plus_plus_matches_the_prototxt():
    model = backbones.lenet_plus_plus()
    randomize(model)
    w = weights_of(model)
    x = images((28, 28, 1))

    y = x.astype("float64")
    for stage, pool in ((1, 2), (2, 2), (3, 3)):
        for index in (1, 2):
            y = prelu(conv2d(y, *w[f"conv{stage}_{index}"], pad=2), *w[f"conv{stage}_{index}_prelu"])
        y = max_pool(y, pool, stride=2)
    kernel, bias = w["ip1"]
    assert_matches(model, x, prelu(y.reshape(len(x), -1) @ kernel + bias, *w["embedding"]))


def test_iresnet_matches_insightface():
    # 16 -> 8 -> 4 -> 2 -> 1: every stride-2 conv sees an even side.
    model = backbones.iresnet(18, input_shape=(16, 16, 3), embedding_dim=EMBEDDING_DIM)
    randomize(model)
    w = weights_of(model)
    x = images((16, 16, 3))

    def bn(y, name):
        return batch_norm(y, *w[name], epsilon=1e-5)

    y = prelu(bn(conv2d(x.astype("float64"), *w["conv1"], pad=1), "conv1_bn"), *w["conv1_prelu"])
    for stage in range(1, 5):
        for index in range(2):
            name = f"layer{stage}_{index}"
            stride = 2 if index == 0 else 1
            out = conv2d(bn(y, f"{name}_bn1"), *w[f"{name}_conv1"], pad=1)
            out = prelu(bn(out, f"{name}_conv1_bn"), *w[f"{name}_conv1_prelu"])
            out = bn(conv2d(out, *w[f"{name}_conv2"], stride=stride, pad=1), f"{name}_conv2_bn")
            if index == 0:
                y = bn(conv2d(y, *w[f"{name}_downsample"], stride=stride), f"{name}_downsample_bn")
            y = out + y
    kernel, bias = w["fc"]
    features = bn(y, "bn2").reshape(len(x), -1) @ kernel + bias
    assert_matches(model, x, batch_norm(features, 1.0, *w["embedding"], epsilon=1e-5))


def test_mobilefacenet_matches_insightface():
    model = backbones.mobilefacenet(input_shape=(32, 32, 3), embedding_dim=EMBEDDING_DIM)
    randomize(model)
    w = weights_of(model)
    x = images((32, 32, 3))

    def conv_block(y, name, stride=1, pad=0, depthwise=False, linear=False):
        (kernel,) = w[name]
        y = depthwise_conv2d(y, kernel, stride, pad) if depthwise else conv2d(y, kernel, stride=stride, pad=pad)
        y = batch_norm(y, *w[f"{name}_bn"], epsilon=1e-5)
        return y if linear else prelu(y, *w[f"{name}_prelu"])

    y = conv_block(x.astype("float64"), "conv1", stride=2, pad=1)
    y = conv_block(y, "conv2_dw", pad=1, depthwise=True)
    for row, (repeats, stride) in enumerate(((5, 2), (1, 2), (6, 1), (1, 2), (2, 1)), start=1):
        for index in range(1, repeats + 1):
            name = f"bottleneck{row}_{index}"
            first_strided = index == 1 and stride == 2
            out = conv_block(y, f"{name}_expand")
            out = conv_block(out, f"{name}_dw", stride=stride if index == 1 else 1, pad=1, depthwise=True)
            out = conv_block(out, f"{name}_project", linear=True)
            y = out if first_strided else y + out
    y = conv_block(y, "conv_sep")
    y = conv_block(y, "gdconv", depthwise=True, linear=True)
    (kernel,) = w["linear"]
    assert_matches(model, x, batch_norm(y.reshape(len(x), -1) @ kernel, *w["embedding"], epsilon=1e-5))


def test_resnet50_reid_matches_torchvision_and_the_paper():
    """torchvision's resnet50 (pytorch/vision torchvision/models/resnet.py) + network D.

    The stride sits in each first block's 3x3 conv (`conv2`, "v1.5"), every
    conv is followed by batch norm (eps 1e-5), the 7x7 stem conv pads 3 and
    the max-pool pads 1 on every side; then GAP-BN-Dropout-FC-BN-L2 (Fan et
    al. 2018, network D; CoinCheung/SphereReID backbone.py).
    """
    model = backbones.resnet50_reid(input_shape=(64, 32, 3), embedding_dim=EMBEDDING_DIM)
    randomize(model)
    w = {**weights_of(model), **weights_of(model.get_layer("resnet50"))}
    x = images((64, 32, 3))

    def bn(y, name):
        return batch_norm(y, *w[name], epsilon=1e-5)

    def conv_bn(y, name, bn_name, stride=1, pad=0):
        (kernel,) = w[name]
        return bn(conv2d(y, kernel, stride=stride, pad=pad), bn_name)

    def block(y, name, stride, downsample):
        out = relu(conv_bn(y, f"{name}_conv1", f"{name}_bn1"))
        out = relu(conv_bn(out, f"{name}_conv2", f"{name}_bn2", stride=stride, pad=1))
        out = conv_bn(out, f"{name}_conv3", f"{name}_bn3")
        if downsample:
            y = conv_bn(y, f"{name}_downsample_0", f"{name}_downsample_1", stride=stride)
        return relu(out + y)

    y = relu(conv_bn(x.astype("float64"), "conv1", "bn1", stride=2, pad=3))
    y = max_pool(y, 3, stride=2, pad=1)
    for stage, blocks in enumerate((3, 4, 6, 3), start=1):
        for index in range(blocks):
            stride = 2 if stage > 1 and index == 0 else 1
            y = block(y, f"layer{stage}_{index}", stride, downsample=index == 0)
    assert y.shape == (2, 2, 1, 2048)
    features = bn(y.mean(axis=(1, 2)), "bn_features")
    kernel, bias = w["fc"]
    embeddings = bn(features @ kernel + bias, "bn_embedding")
    assert_matches(model, x, embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True))
    norms = np.linalg.norm(np.asarray(model(x, training=False)), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_resnet50_reid_bottleneck_matches_numpy():
    """One strided torchvision Bottleneck with downsample, alone, on an even input."""
    import keras

    from kerasface.backbones.resnet_reid import bottleneck

    inputs = keras.Input((6, 4, 8))
    block = keras.Model(inputs, bottleneck(inputs, 4, strides=2, name="layer2_0"))
    randomize(block)
    w = weights_of(block)
    x = images((6, 4, 8))

    def conv_bn(y, name, bn_name, stride=1, pad=0):
        (kernel,) = w[name]
        return batch_norm(conv2d(y, kernel, stride=stride, pad=pad), *w[bn_name], epsilon=1e-5)

    y = x.astype("float64")
    out = relu(conv_bn(y, "layer2_0_conv1", "layer2_0_bn1"))
    out = relu(conv_bn(out, "layer2_0_conv2", "layer2_0_bn2", stride=2, pad=1))
    out = conv_bn(out, "layer2_0_conv3", "layer2_0_bn3")
    shortcut = conv_bn(y, "layer2_0_downsample_0", "layer2_0_downsample_1", stride=2)
    expected = relu(out + shortcut)
    assert expected.shape == (2, 3, 2, 16)
    assert_matches(block, x, expected)


def test_resnet50_reid_loads_trunk_weights(tmp_path):
    from kerasface.backbones.resnet_reid import resnet50_trunk

    trunk = resnet50_trunk((32, 32, 3))  # the kernels differ from those of any other build
    path = tmp_path / "resnet50.weights.h5"
    trunk.save_weights(path)

    model = backbones.resnet50_reid(input_shape=(64, 32, 3), trunk_weights=path)
    loaded = model.get_layer("resnet50")
    for expected, actual in zip(trunk.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected))
    # The head is left alone.
    np.testing.assert_array_equal(np.asarray(model.get_layer("bn_features").gamma), 1.0)
