"""Parameter counts at each paper's input size, computed from the architectures.

The expected numbers are derived here layer by layer from the papers' tables
and the reference code (prototxts, insightface, facenet), or quoted from a
published model summary; they are never read back from the models.
"""

import importlib
import math

import pytest

from kerasface import backbones


class Count:
    """Tallies parameters the way Keras stores them."""

    def __init__(self):
        self.trainable = 0
        self.non_trainable = 0

    def conv(self, kh, kw, c_in, c_out, bias):
        self.trainable += kh * kw * c_in * c_out + (c_out if bias else 0)

    def depthwise(self, kh, kw, channels):
        self.trainable += kh * kw * channels

    def dense(self, n_in, n_out, bias=True):
        self.trainable += n_in * n_out + (n_out if bias else 0)

    def prelu(self, channels):
        self.trainable += channels

    def batch_norm(self, channels, scale=True):
        self.trainable += channels * (2 if scale else 1)  # gamma (if any), beta
        self.non_trainable += 2 * channels  # moving mean and variance

    @property
    def total(self):
        return self.trainable + self.non_trainable


def assert_counts(model, expected):
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert (model.count_params(), trainable) == (expected.total, expected.trainable)


def halve(size):
    """Output side of a 3x3, stride-2 convolution padded by 1 pixel."""
    return (size - 1) // 2 + 1


# === SphereFace (Table 2 and the authors' prototxt) ===

SPHEREFACE_UNITS = {4: (0, 0, 0, 0), 10: (0, 1, 2, 0), 20: (1, 2, 4, 1), 36: (2, 4, 8, 2), 64: (3, 8, 16, 3)}


def sphereface_count(units, height=112, width=96, embedding_dim=512, residual_bias=False):
    count = Count()
    c_in = 3
    for filters, num_units in zip((64, 128, 256, 512), units):
        count.conv(3, 3, c_in, filters, bias=True)
        count.prelu(filters)
        for _ in range(2 * num_units):  # residual convs: bias frozen at 0 in Caffe
            count.conv(3, 3, filters, filters, bias=residual_bias)
            count.prelu(filters)
        c_in, height, width = filters, halve(height), halve(width)
    count.dense(height * width * 512, embedding_dim)  # fc5 on 7x6x512
    return count


@pytest.mark.parametrize("depth", sorted(SPHEREFACE_UNITS))
def test_sphereface(depth):
    assert 4 + 2 * sum(SPHEREFACE_UNITS[depth]) == depth  # convolutional layers
    assert_counts(backbones.sphereface(depth), sphereface_count(SPHEREFACE_UNITS[depth]))


def test_sphereface20_total():
    # 1,551,936 in the four stride-2 conv+PReLU layers, 5,104,448 in the
    # eight residual units, 11,010,560 in fc5 (21504 x 512 + 512).
    assert sphereface_count(SPHEREFACE_UNITS[20]).total == 22_666_944


def test_sphereface20_with_residual_bias():
    # clcarwin/sphereface_pytorch net_sphere.py sphere20a: every nn.Conv2d
    # keeps its bias, 2 x 64 + 4 x 128 + 8 x 256 + 2 x 512 = 3,712 more.
    expected = sphereface_count(SPHEREFACE_UNITS[20], residual_bias=True)
    assert expected.total == 22_666_944 + 3_712
    assert_counts(backbones.sphereface(20, residual_bias=True), expected)


# === LeNets++ (Wen et al. Fig. 2 and mnist_train_test.prototxt) ===


def test_lenet_plus_plus():
    count = Count()
    c_in = 1
    for filters in (32, 64, 128):
        for _ in range(2):
            count.conv(5, 5, c_in, filters, bias=True)
            count.prelu(filters)
            c_in = filters
    count.dense(3 * 3 * 128, 2)  # 28 -> 14 -> 7 -> 3 after the pools
    count.prelu(2)
    assert count.total == 797_604
    assert_counts(backbones.lenet_plus_plus(), count)


# === Inception-ResNet-v1 (published Keras port of davidsandberg/facenet) ===

# The Keras conversion of facenet's 128-d model (facenet_keras.h5, from
# nyoki-mtl/keras-facenet) at 160x160: "Total params: 22,808,144 / Trainable
# params: 22,779,312"; serengil/deepface quotes the same total.
FACENET_128 = (22_808_144, 22_779_312)


def test_inception_resnet_v1_128():
    model = backbones.inception_resnet_v1()
    expected = Count()
    expected.trainable, expected.non_trainable = FACENET_128[1], FACENET_128[0] - FACENET_128[1]
    assert_counts(model, expected)


def test_inception_resnet_v1_with_batch_norm_scale():
    # facenet-pytorch's affine batch norms add one gamma per channel; the
    # published non-trainable count is two moving statistics per channel.
    channels = (FACENET_128[0] - FACENET_128[1]) // 2
    expected = Count()
    expected.trainable = FACENET_128[1] + channels
    expected.non_trainable = 2 * channels
    assert_counts(backbones.inception_resnet_v1(batch_norm_scale=True), expected)


# === MobileFaceNet (Chen et al. Table 1, insightface's layers) ===


def test_mobilefacenet():
    count = Count()

    def conv_bn(kh, c_in, c_out, prelu=True):
        count.conv(kh, kh, c_in, c_out, bias=False)
        count.batch_norm(c_out)
        if prelu:
            count.prelu(c_out)

    def depthwise_bn(kh, channels, prelu=True):
        count.depthwise(kh, kh, channels)
        count.batch_norm(channels)
        if prelu:
            count.prelu(channels)

    conv_bn(3, 3, 64)  # conv3x3, 64, stride 2
    depthwise_bn(3, 64)  # depthwise conv3x3, 64
    c_in = 64
    for t, c, n, _ in ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1)):
        for _ in range(n):
            conv_bn(1, c_in, t * c_in)
            depthwise_bn(3, t * c_in)
            conv_bn(1, t * c_in, c, prelu=False)
            c_in = c
    conv_bn(1, 128, 512)  # conv1x1, 512
    depthwise_bn(7, 512, prelu=False)  # linear GDConv7x7
    count.dense(512, 128, bias=False)  # linear conv1x1, 128
    count.batch_norm(128)
    assert abs(count.trainable - 0.99e6) < 0.02e6  # the paper reports 0.99M
    assert_counts(backbones.mobilefacenet(), count)


def test_mobilefacenet_scale_2():
    """arcface_torch's "mbf" network, `get_mbf(scale=2)` (backbones/mobilefacenet.py), tallied module by module."""
    count = Count()

    def block(kh, c_in, c_out, groups=1, prelu=True):  # ConvBlock / LinearBlock
        count.conv(kh, kh, c_in // groups, c_out, bias=False)  # (out, in / groups, kh, kw)
        count.batch_norm(c_out)
        if prelu:
            count.prelu(c_out)

    def depth_wise(c_in, c_out, groups):  # DepthWise: 1x1 to `groups`, 3x3 depthwise, linear 1x1
        block(1, c_in, groups)
        block(3, groups, groups, groups=groups)
        block(1, groups, c_out, prelu=False)

    s = 2
    block(3, 3, 64 * s)
    block(3, 64 * s, 64 * s, groups=64)  # blocks[0] == 1: ConvBlock(..., groups=64)
    depth_wise(64 * s, 64 * s, 128)
    for _ in range(4):  # Residual(64 * s, blocks[1], groups=128)
        depth_wise(64 * s, 64 * s, 128)
    depth_wise(64 * s, 128 * s, 256)
    for _ in range(6):
        depth_wise(128 * s, 128 * s, 256)
    depth_wise(128 * s, 128 * s, 512)
    for _ in range(2):
        depth_wise(128 * s, 128 * s, 256)
    block(1, 128 * s, 512)  # conv_sep
    block(7, 512, 512, groups=512, prelu=False)  # GDC
    count.dense(512, 512, bias=False)
    count.batch_norm(512)
    assert (count.total, count.trainable) == (2_083_328, 2_059_520)
    assert_counts(backbones.mobilefacenet(embedding_dim=512, scale=2), count)


# === IResNet (insightface arcface_torch/backbones/iresnet.py) ===

IRESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}
# insightface's sum(p.numel() for p in model.parameters()) in millions.
INSIGHTFACE_MILLIONS = {50: 43.6, 100: 65.2}


def iresnet_count(blocks, embedding_dim=512):
    count = Count()
    count.conv(3, 3, 3, 64, bias=False)
    count.batch_norm(64)
    count.prelu(64)
    c_in, side = 64, 112
    for filters, num_blocks in zip((64, 128, 256, 512), blocks):
        for index in range(num_blocks):
            count.batch_norm(c_in)
            count.conv(3, 3, c_in, filters, bias=False)
            count.batch_norm(filters)
            count.prelu(filters)
            count.conv(3, 3, filters, filters, bias=False)
            count.batch_norm(filters)
            if index == 0:  # downsample: conv1x1 stride 2 + BN
                count.conv(1, 1, c_in, filters, bias=False)
                count.batch_norm(filters)
            c_in = filters
        side = halve(side)
    count.batch_norm(512)
    count.dense(side * side * 512, embedding_dim)  # fc on 7x7x512
    count.batch_norm(embedding_dim, scale=False)  # "features": weight frozen at 1
    return count


@pytest.mark.parametrize("depth", sorted(IRESNET_BLOCKS))
def test_iresnet(depth):
    expected = iresnet_count(IRESNET_BLOCKS[depth])
    assert_counts(backbones.iresnet(depth), expected)
    if depth in INSIGHTFACE_MILLIONS:
        # PyTorch also counts the frozen weight of the last BatchNorm1d.
        assert round((expected.trainable + 512) / 1e6, 1) == INSIGHTFACE_MILLIONS[depth]


# arcface_torch's iresnet200: `_iresnet('iresnet200', IBasicBlock, [6, 26, 60, 6], ...)`.
IRESNET200_BLOCKS = (6, 26, 60, 6)


def test_iresnet200_count():
    # Trainable: 105,986,304 in the stem and the 98 blocks, 1,024 in bn2,
    # 12,845,568 in fc (25088 x 512 + 512), 512 in `features`' beta; PyTorch
    # adds the frozen weight of `features`: 118,833,920 (118.83M).
    expected = iresnet_count(IRESNET200_BLOCKS)
    assert (expected.total, expected.trainable) == (118_969_472, 118_833_408)
    assert expected.trainable - 12_845_568 - 512 - 1_024 == 105_986_304
    # The package re-exports the function under the module's name.
    assert importlib.import_module("kerasface.backbones.iresnet").STAGE_BLOCKS[200] == IRESNET200_BLOCKS


@pytest.mark.slow
def test_iresnet200():
    # Building 119M parameters takes 10-20 s on CI's cores.
    assert_counts(backbones.iresnet(200), iresnet_count(IRESNET200_BLOCKS))


# === SphereReID (Fan et al. 2018, network D, on torchvision's resnet50) ===

# torchvision's resnet50 has 25,557,032 parameters (its model card); its fc
# layer is 2048 x 1000 + 1000 of them.
TORCHVISION_RESNET50 = 25_557_032
TORCHVISION_RESNET50_WITHOUT_FC = TORCHVISION_RESNET50 - (2048 * 1000 + 1000)


def resnet50_trunk_count():
    """pytorch/vision torchvision/models/resnet.py: bias-free convs, each followed by BN."""
    count = Count()
    count.conv(7, 7, 3, 64, bias=False)
    count.batch_norm(64)
    c_in = 64
    for width, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3)):
        for index in range(blocks):
            for kh, c_from, c_to in ((1, c_in, width), (3, width, width), (1, width, 4 * width)):
                count.conv(kh, kh, c_from, c_to, bias=False)
                count.batch_norm(c_to)
            if index == 0:  # downsample: 1x1 conv + BN
                count.conv(1, 1, c_in, 4 * width, bias=False)
                count.batch_norm(4 * width)
            c_in = 4 * width
    return count


def test_resnet50_trunk_is_torchvisions():
    count = resnet50_trunk_count()
    assert TORCHVISION_RESNET50_WITHOUT_FC == 23_508_032
    # PyTorch counts gamma and beta; the running statistics are buffers.
    assert count.trainable == TORCHVISION_RESNET50_WITHOUT_FC
    assert_counts(backbones.resnet50_reid().get_layer("resnet50"), count)


def test_resnet50_reid():
    count = resnet50_trunk_count()
    count.batch_norm(2048)
    count.dense(2048, 1024)
    count.batch_norm(1024)
    assert_counts(backbones.resnet50_reid(), count)
