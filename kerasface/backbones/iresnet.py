"""Improved ResNets of insightface's arcface_torch (`backbones/iresnet.py`)."""

import functools

import keras

from kerasface.backbones.common import (
    PYTORCH_BATCH_NORM,
    check_depth,
    check_dropout_rate,
    check_embedding_dim,
    check_input_shape,
    PYTORCH_LINEAR_KERNEL,
    conv_unit,
    initializer_spec,
    load_weights,
    pytorch_linear_bias,
)

STAGE_FILTERS = (64, 128, 256, 512)

# Residual blocks in each of the four stages, by depth.
STAGE_BLOCKS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
    200: (6, 26, 60, 6),  # arcface_torch's iresnet200
}

# insightface draws every convolution from N(0, 0.1) (`nn.init.normal_(m.weight,
# 0, 0.1)`); its fully connected layer keeps PyTorch's default init, kernel
# and bias alike (see `common.PYTORCH_LINEAR_KERNEL`).
CONV_INIT = initializer_spec("RandomNormal", mean=0.0, stddev=0.1)

# Convolution (no bias) and batch norm, optionally PReLU: every conv of the network.
conv_bn = functools.partial(
    conv_unit, use_bias=False, kernel_initializer=CONV_INIT, batch_norm=PYTORCH_BATCH_NORM
)


def iresnet(depth, input_shape=(112, 112, 3), embedding_dim=512, dropout_rate=0.0, weights=None):
    """IResNet, the ArcFace backbone ("LResNetE-IR" of Deng et al.).

    A 3x3 conv-BN-PReLU stem (stride 1), four stages of 64, 128, 256 and 512
    filters whose first block has stride 2, each block
    BN-conv3x3-BN-PReLU-conv3x3-BN plus a shortcut (identity, or a strided
    1x1 conv and BN), then the output layer BN-Flatten-Dropout-FC-BN. The
    final BN has no scale (insightface fixes its weight at 1).

    Settings of insightface's `recognition/arcface_torch/backbones/
    iresnet.py`: convolutions without bias drawn from N(0, 0.1); batch norm
    with epsilon 1e-5 and PyTorch's momentum 0.1 (Keras' 0.9), gamma 1 and
    beta 0; per-channel PReLU starting at 0.25; `fc` with PyTorch's default
    `nn.Linear` init (kernel and bias uniform in +-1/sqrt(fan_in)).

    For a weight converter, insightface's keys map to these layers (`_` for
    `.`): `conv1`, `bn1` -> `conv1_bn`, `prelu` -> `conv1_prelu`; in a block
    `layerS.I`: `bn1` -> `layerS_I_bn1`, `conv1`, `bn2` -> `layerS_I_conv1_bn`,
    `prelu` -> `layerS_I_conv1_prelu`, `conv2`, `bn3` -> `layerS_I_conv2_bn`,
    `downsample.0` -> `layerS_I_downsample`, `downsample.1` ->
    `layerS_I_downsample_bn`; then `bn2`, `fc` and `features` ->
    `embedding` (whose frozen weight of ones is dropped). PyTorch flattens
    the last feature map in (channel, height, width) order and Keras in
    (height, width, channel) order, so the rows of `fc.weight.T` must be
    permuted.

    Parameters at 112x112x3 with a 512-d embedding (insightface's PyTorch
    count includes the 512 frozen BN weights that Keras does not create):
    depth 18: 24,025,088 trainable (24.03M in PyTorch); 34: 34,138,816
    (34.14M); 50: 43,590,336 (43.59M); 100: 65,155,648 (65.16M); 200:
    118,833,408 (118.83M).

    Args:
        depth: 18, 34, 50, 100 or 200.
        input_shape: image shape (height, width, channels), already
            normalised. Defaults to `(112, 112, 3)`.
        embedding_dim: size of the embedding. Defaults to `512`.
        dropout_rate: fraction dropped before the fully connected layer.
            Defaults to `0.0` (insightface's default).
        weights: `None` or a local `.weights.h5`/`.keras` file.

    Returns:
        A `keras.Model` from images to embeddings.

    Reference:
    - [Deng et al., 2019](https://arxiv.org/abs/1801.07698)
    - [Duta et al., 2020](https://arxiv.org/abs/2004.04989)
    """
    where = "iresnet"
    blocks = STAGE_BLOCKS[check_depth(depth, STAGE_BLOCKS, where)]
    input_shape = check_input_shape(input_shape, where)
    embedding_dim = check_embedding_dim(embedding_dim, where)
    dropout_rate = check_dropout_rate(dropout_rate, where)

    inputs = keras.Input(input_shape, name="image")
    x = conv_bn(inputs, STAGE_FILTERS[0], 3, padding=1, activation="prelu", name="conv1")
    for stage, (filters, num_blocks) in enumerate(zip(STAGE_FILTERS, blocks), start=1):
        for index in range(num_blocks):
            x = basic_block(x, filters, strides=2 if index == 0 else 1, name=f"layer{stage}_{index}")
    x = keras.layers.BatchNormalization(name="bn2", **PYTORCH_BATCH_NORM)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    x = keras.layers.Dense(
        embedding_dim,
        kernel_initializer=PYTORCH_LINEAR_KERNEL,
        bias_initializer=pytorch_linear_bias(x.shape[-1]),
        name="fc",
    )(x)
    outputs = keras.layers.BatchNormalization(scale=False, name="embedding", **PYTORCH_BATCH_NORM)(x)
    model = keras.Model(inputs, outputs, name=f"iresnet{depth}")
    return load_weights(model, weights)


def basic_block(x, filters, strides, name):
    """insightface's IBasicBlock: BN-conv-BN-PReLU-conv-BN, stride on the second conv."""
    y = keras.layers.BatchNormalization(name=f"{name}_bn1", **PYTORCH_BATCH_NORM)(x)
    y = conv_bn(y, filters, 3, padding=1, activation="prelu", name=f"{name}_conv1")
    y = conv_bn(y, filters, 3, strides=strides, padding=1, name=f"{name}_conv2")
    if strides != 1 or x.shape[-1] != filters:
        x = conv_bn(x, filters, 1, strides=strides, name=f"{name}_downsample")
    return keras.layers.Add(name=f"{name}_add")([x, y])
