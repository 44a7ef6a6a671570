"""Each backbone's layers carry the settings of its reference code, not Keras' defaults.

Keras' defaults are not Caffe's, PyTorch's or TF-slim's: BatchNormalization
has epsilon 1e-3 and momentum 0.99 (PyTorch: 1e-5 and 0.1 on the new batch,
i.e. Keras' 0.9), Conv2D and Dense start from Glorot uniform with zero
biases, PReLU slopes start at 0 for every position. These tests read the
built layers' configs, and draw a few kernels to check the distribution the
reference code names, with the formula written out here.
"""

import math

import keras
import numpy as np
import pytest

from kerasface import backbones

PYTORCH_BN = {"epsilon": 1e-5, "momentum": 0.9}
# kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, 2 / fan_out), not truncated.
KAIMING_FAN_OUT = {"scale": 2.0, "mode": "fan_out", "distribution": "untruncated_normal"}


def all_layers(model):
    """The model's layers, nested models' layers included (not the models themselves)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)
        else:
            yield layer


def of_type(model, cls):
    # Exact types: DepthwiseConv2D is not a Conv2D subclass, but be explicit.
    return [layer for layer in all_layers(model) if type(layer) is cls]


def initializer(layer, key):
    """`(class_name, config)` of an initializer in the layer's config."""
    spec = layer.get_config()[key]
    return spec["class_name"], spec["config"]


def assert_initializer(layer, key, class_name, **config):
    """The layer's `key` initializer is `class_name` with (at least) these config values."""
    actual_class, actual_config = initializer(layer, key)
    assert actual_class == class_name, layer.name
    assert {name: actual_config.get(name) for name in config} == pytest.approx(config), layer.name


def assert_batch_norms(layers, epsilon, momentum, scale=True, center=True):
    assert layers
    for layer in layers:
        config = layer.get_config()
        assert (config["epsilon"], config["momentum"]) == (epsilon, momentum), layer.name
        assert (config["scale"], config["center"]) == (scale, center), layer.name
        assert initializer(layer, "beta_initializer")[0] == "Zeros"
        if scale:
            assert initializer(layer, "gamma_initializer")[0] == "Ones"


def assert_prelus(model):
    """Caffe's PReLU and PyTorch's nn.PReLU(channels): one slope per channel, 0.25."""
    prelus = of_type(model, keras.layers.PReLU)
    assert prelus
    for layer in prelus:
        assert_initializer(layer, "alpha_initializer", "Constant", value=0.25)
        assert math.prod(layer.alpha.shape) == layer.input.shape[-1], layer.name


def assert_std(kernel, expected, tolerance=0.05):
    kernel = np.asarray(kernel)
    assert abs(kernel.mean()) < 5 * expected / math.sqrt(kernel.size)
    assert kernel.std() == pytest.approx(expected, rel=tolerance)


# === SphereReID: pytorch/vision torchvision/models/resnet.py, CoinCheung/SphereReID backbone.py ===


def test_resnet50_reid_follows_torchvision():
    model = backbones.resnet50_reid(input_shape=(32, 32, 3), embedding_dim=16)
    trunk = model.get_layer("resnet50")

    convs = of_type(model, keras.layers.Conv2D)
    assert len(convs) == 1 + 3 * 16 + 4  # stem, three per bottleneck, four downsamples
    for layer in convs:
        # conv3x3/conv1x1(..., bias=False); kaiming_normal_(mode="fan_out", nonlinearity="relu")
        assert not layer.get_config()["use_bias"], layer.name
        assert_initializer(layer, "kernel_initializer", "VarianceScaling", **KAIMING_FAN_OUT)
    # BatchNorm2d/BatchNorm1d defaults; weight 1, bias 0 (zero_init_residual=False).
    assert_batch_norms(of_type(model, keras.layers.BatchNormalization), **PYTORCH_BN)
    assert len(of_type(model, keras.layers.BatchNormalization)) == 53 + 2

    # "v1.5": the stride is in the 3x3 conv of the first block of layers 2-4.
    assert trunk.get_layer("layer2_0_conv1").strides == (1, 1)
    assert trunk.get_layer("layer2_0_conv2").strides == (2, 2)
    assert trunk.get_layer("layer2_0_downsample_0").strides == (2, 2)
    assert trunk.get_layer("layer1_0_conv2").strides == (1, 1)

    # torch: std = gain / sqrt(fan_out), gain sqrt(2), fan_out = out * kh * kw.
    kernel = trunk.get_layer("layer4_0_conv2").kernel
    assert_std(kernel, math.sqrt(2.0) / math.sqrt(512 * 3 * 3))

    # The head's fc: kaiming_normal_(weight, a=1) (gain 1, fan_in), bias 0.
    fc = model.get_layer("fc")
    assert initializer(fc, "bias_initializer")[0] == "Zeros"
    assert_initializer(fc, "kernel_initializer", "VarianceScaling", scale=1.0, mode="fan_in")
    assert_std(fc.kernel, 1.0 / math.sqrt(2048), tolerance=0.1)
    assert model.get_layer("dropout").rate == 0.5


# === Inception-ResNet-v1: davidsandberg/facenet src/models/inception_resnet_v1.py ===


def test_inception_resnet_v1_follows_facenet():
    model = backbones.inception_resnet_v1(input_shape=(75, 75, 3), embedding_dim=16)
    convs = of_type(model, keras.layers.Conv2D)
    # The residual up-projections: slim.conv2d(..., normalizer_fn=None, activation_fn=None).
    up = [layer for layer in convs if "Branch" not in layer.name and layer.name.endswith("_Conv2d_1x1")]
    assert len(up) == 5 + 10 + 5 + 1
    for layer in convs:
        # weights_initializer=slim.initializers.xavier_initializer(): uniform, fan average.
        assert initializer(layer, "kernel_initializer")[0] == "GlorotUniform", layer.name
        # slim.conv2d creates a bias only without a normalizer_fn.
        assert layer.get_config()["use_bias"] == (layer in up), layer.name
    for layer in up:
        assert initializer(layer, "bias_initializer")[0] == "Zeros"

    # batch_norm_params: decay 0.995, epsilon 0.001; slim.batch_norm's center=True, scale=False.
    batch_norms = of_type(model, keras.layers.BatchNormalization)
    assert_batch_norms(batch_norms, epsilon=0.001, momentum=0.995, scale=False)
    assert len(batch_norms) == len(convs) - len(up) + 1  # + the bottleneck's

    # slim.fully_connected(net, bottleneck_layer_size, activation_fn=None) under the same arg_scope.
    bottleneck = model.get_layer("Bottleneck")
    assert not bottleneck.get_config()["use_bias"]
    assert initializer(bottleneck, "kernel_initializer")[0] == "GlorotUniform"
    assert model.layers[-1] is model.get_layer("embedding")
    assert isinstance(model.get_layer("embedding"), keras.layers.BatchNormalization)

    # slim.dropout(net, keep_prob=0.8) drops 20%.
    assert model.get_layer("Logits_Dropout").rate == pytest.approx(1 - 0.8)

    # Xavier uniform: U(-sqrt(6 / (fan_in + fan_out)), +...), fan = kh * kw * channels.
    kernel = np.asarray(model.get_layer("Mixed_6a_Branch_0_Conv2d_1a_3x3").kernel)
    limit = math.sqrt(6.0 / (9 * 256 + 9 * 384))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.99 * limit


def test_inception_resnet_v1_batch_norm_scale_for_facenet_pytorch():
    # timesler/facenet-pytorch models/inception_resnet_v1.py: BatchNorm2d(eps=0.001, affine=True).
    model = backbones.inception_resnet_v1(input_shape=(75, 75, 3), embedding_dim=16, batch_norm_scale=True)
    assert_batch_norms(of_type(model, keras.layers.BatchNormalization), epsilon=0.001, momentum=0.995)


# === IResNet: deepinsight/insightface recognition/arcface_torch/backbones/iresnet.py ===


def test_iresnet_follows_insightface():
    model = backbones.iresnet(18, input_shape=(16, 16, 3), embedding_dim=16)
    for layer in of_type(model, keras.layers.Conv2D):
        # conv3x3/conv1x1(..., bias=False); nn.init.normal_(m.weight, 0, 0.1)
        assert not layer.get_config()["use_bias"], layer.name
        assert_initializer(layer, "kernel_initializer", "RandomNormal", mean=0.0, stddev=0.1)
    batch_norms = of_type(model, keras.layers.BatchNormalization)
    features = model.get_layer("embedding")
    # nn.BatchNorm2d(eps=1e-05) everywhere ...
    assert_batch_norms([layer for layer in batch_norms if layer is not features], **PYTORCH_BN)
    # ... and `features`, a BatchNorm1d whose weight is fixed at 1 (requires_grad=False).
    assert_batch_norms([features], **PYTORCH_BN, scale=False)
    assert_prelus(model)

    # fc = nn.Linear(512 * 7 * 7 at 112x112, num_features), PyTorch's default init:
    # weight and bias uniform in +-1/sqrt(fan_in). Here the last map is 1x1x512.
    fc = model.get_layer("fc")
    bound = 1.0 / math.sqrt(512)
    assert_initializer(
        fc, "kernel_initializer", "VarianceScaling", scale=1 / 3, mode="fan_in", distribution="uniform"
    )
    bias = np.asarray(fc.bias)
    assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0.5 * bound
    assert np.abs(np.asarray(fc.kernel)).max() == pytest.approx(bound, rel=0.01)
    assert_initializer(fc, "bias_initializer", "RandomUniform", minval=-bound, maxval=bound)


# === MobileFaceNet: deepinsight/insightface recognition/arcface_torch/backbones/mobilefacenet.py ===


def test_mobilefacenet_follows_insightface():
    model = backbones.mobilefacenet(input_shape=(32, 32, 3), embedding_dim=16)
    for layer in of_type(model, keras.layers.Conv2D):
        # Conv2d(..., bias=False); kaiming_normal_(mode="fan_out", nonlinearity="relu")
        assert not layer.get_config()["use_bias"], layer.name
        assert_initializer(layer, "kernel_initializer", "VarianceScaling", **KAIMING_FAN_OUT)
    depthwise = of_type(model, keras.layers.DepthwiseConv2D)
    assert depthwise
    for layer in depthwise:
        assert not layer.get_config()["use_bias"], layer.name
    assert_batch_norms(of_type(model, keras.layers.BatchNormalization), **PYTORCH_BN)
    assert_prelus(model)

    # PyTorch's fan-out of a depthwise weight (C, 1, kh, kw) is C * kh * kw.
    gdconv = model.get_layer("gdconv")
    kh, kw, channels, _ = gdconv.kernel.shape
    assert_std(gdconv.kernel, math.sqrt(2.0 / (channels * kh * kw)), tolerance=0.1)

    # Linear(512, embedding_size, bias=False), same kaiming fan_out (fan_out = embedding_size).
    linear = model.get_layer("linear")
    assert not linear.get_config()["use_bias"]
    assert_initializer(linear, "kernel_initializer", "VarianceScaling", **KAIMING_FAN_OUT)


# === SphereFace: wy1iu/sphereface train/code/sphereface_model.prototxt ===


def caffe_xavier_limit(kernel):
    """Caffe's "xavier" filler: U(-sqrt(3 / fan_in), ...), fan_in = c_in * kh * kw."""
    kh, kw, c_in = kernel.shape[:3] if len(kernel.shape) == 4 else (1, 1, kernel.shape[0])
    return math.sqrt(3.0 / (c_in * kh * kw))


def assert_caffe_xavier(layer):
    assert initializer(layer, "kernel_initializer")[0] == "LecunUniform", layer.name
    kernel = np.asarray(layer.kernel)
    limit = caffe_xavier_limit(kernel)
    assert limit * 0.99 < np.abs(kernel).max() <= limit


def test_sphereface_follows_the_prototxt():
    model = backbones.sphereface(20, input_shape=(28, 24, 3), embedding_dim=16)
    assert not of_type(model, keras.layers.BatchNormalization)
    convs = of_type(model, keras.layers.Conv2D)
    strided = [layer for layer in convs if layer.name.endswith("_1")]
    assert [layer.name for layer in strided] == ["conv1_1", "conv2_1", "conv3_1", "conv4_1"]
    for layer in convs:
        if layer in strided:
            # weight_filler xavier; bias_filler constant 0, trained (lr_mult 2).
            assert layer.get_config()["use_bias"]
            assert initializer(layer, "bias_initializer")[0] == "Zeros"
            assert_caffe_xavier(layer)
        else:
            # weight_filler gaussian std 0.01; bias lr_mult 0, so always 0.
            assert not layer.get_config()["use_bias"], layer.name
            assert_initializer(layer, "kernel_initializer", "RandomNormal", mean=0.0, stddev=0.01)
    assert_prelus(model)
    fc5 = model.get_layer("embedding")
    assert isinstance(fc5, keras.layers.Dense)
    assert initializer(fc5, "bias_initializer")[0] == "Zeros"
    assert_caffe_xavier(fc5)


# === LeNets++: ydwen/caffe-face mnist_example/mnist_train_test.prototxt ===


def test_lenet_plus_plus_follows_the_prototxt():
    model = backbones.lenet_plus_plus()
    assert not of_type(model, keras.layers.BatchNormalization)
    for layer in [*of_type(model, keras.layers.Conv2D), model.get_layer("ip1")]:
        assert layer.get_config()["use_bias"], layer.name
        assert initializer(layer, "bias_initializer")[0] == "Zeros"
        assert_caffe_xavier(layer)
    assert_prelus(model)
