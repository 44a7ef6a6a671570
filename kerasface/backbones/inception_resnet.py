"""Inception-ResNet-v1 as used by FaceNet (davidsandberg/facenet)."""

import keras

from kerasface.backbones.common import (
    activate,
    check_dropout_rate,
    check_embedding_dim,
    check_input_shape,
    conv_unit,
    initializer_spec,
    load_weights,
    smallest_input,
)

# TF-slim settings of davidsandberg/facenet's `inference()` in
# src/models/inception_resnet_v1.py, the version that trained the 2018 models
# (20180402-114759, 20180408-102900): `weights_initializer=
# slim.initializers.xavier_initializer()` (uniform, fan average: Keras'
# Glorot uniform; earlier versions of the file used
# truncated_normal_initializer(stddev=0.1)) for every conv2d and
# fully_connected layer, and `slim.batch_norm` with decay 0.995 (Keras'
# momentum), epsilon 0.001, and slim's defaults center=True, scale=False:
# a beta but no gamma. A conv2d or fully_connected layer with a normalizer_fn
# has no bias; the residual up-projections (normalizer_fn=None) have one,
# initialised at 0.
CONV_INIT = initializer_spec("GlorotUniform")
SLIM_BATCH_NORM = {"momentum": 0.995, "epsilon": 0.001, "center": True, "scale": False}

# 'valid' (kernel, stride) windows from the input to the last feature map:
# the stem (Conv2d_1a, Conv2d_2a, MaxPool_3a, Conv2d_4a, Conv2d_4b) and the
# two reductions.
VALID_WINDOWS = ((3, 2), (3, 1), (3, 2), (3, 1), (3, 2), (3, 2), (3, 2))

# (block, repeats, residual scale) of the three Inception-ResNet stages.
BLOCK35_REPEATS, BLOCK35_SCALE = 5, 0.17
BLOCK17_REPEATS, BLOCK17_SCALE = 10, 0.10
BLOCK8_REPEATS, BLOCK8_SCALE = 5, 0.20


def inception_resnet_v1(
    input_shape=(160, 160, 3), embedding_dim=128, dropout_rate=0.2, batch_norm_scale=False, weights=None
):
    """FaceNet's Inception-ResNet-v1 with its bottleneck embedding layer.

    Stem, 5 x block35 (Inception-ResNet-A), reduction A, 10 x block17,
    reduction B, 5 x block8 and a sixth block8 without activation, global
    average pooling, dropout, then the "Bottleneck": a fully connected layer
    without bias followed by batch norm. Convolutions are followed by batch
    norm (shift, no scale) and ReLU except the linear 1x1 up-projection of
    each residual block. Layer names follow the TF-slim scopes with `_` for
    `/`. The output is not L2-normalised.

    The settings are those of the TensorFlow original (davidsandberg/facenet
    `src/models/inception_resnet_v1.py`): Glorot-uniform ("xavier") weights,
    batch norm with momentum 0.995, epsilon 0.001 and no gamma, no bias in
    the convolutions that batch norm follows. timesler/facenet-pytorch
    (`models/inception_resnet_v1.py`) ports the same layers with affine
    batch norms (a gamma, all ones in the weights converted from
    TensorFlow), epsilon 0.001 and PyTorch's momentum 0.1 (Keras' 0.9),
    and a default dropout of 0.6; `batch_norm_scale=True` adds the gammas so
    that its state dict fits. Both flatten a 1x1 map before the bottleneck,
    so the fully connected kernel needs no reordering, only transposing.

    Parameters at 160x160x3 with a 128-d embedding: 22,808,144, of which
    22,779,312 are trainable (with `batch_norm_scale=True` the 14,416 batch
    norm channels add a gamma each: 22,822,560 and 22,793,728).

    Args:
        input_shape: image shape (height, width, channels), already
            normalised, at least 75x75. Defaults to `(160, 160, 3)`.
        embedding_dim: size of the embedding; FaceNet uses 128 or 512.
            Defaults to `128`.
        dropout_rate: fraction dropped before the bottleneck. Defaults to
            `0.2` (facenet's `keep_probability=0.8`).
        batch_norm_scale: whether batch norms learn a scale (gamma). Defaults
            to `False`, TF-slim's default that facenet trained with.
        weights: `None` or a local `.weights.h5`/`.keras` file.

    Returns:
        A `keras.Model` from images to embeddings.

    Reference:
    - [Schroff et al., 2015](https://arxiv.org/abs/1503.03832)
    - [Szegedy et al., 2016](https://arxiv.org/abs/1602.07261)
    """
    where = "inception_resnet_v1"
    input_shape = check_input_shape(input_shape, where, min_size=smallest_input(VALID_WINDOWS))
    embedding_dim = check_embedding_dim(embedding_dim, where)
    dropout_rate = check_dropout_rate(dropout_rate, where)
    if not isinstance(batch_norm_scale, bool):
        raise ValueError(
            f"{where}: batch_norm_scale must be True or False. Received: batch_norm_scale={batch_norm_scale!r}"
        )
    batch_norm = {**SLIM_BATCH_NORM, "scale": batch_norm_scale}

    inputs = keras.Input(input_shape, name="image")
    x = stem(inputs, batch_norm)
    for index in range(1, BLOCK35_REPEATS + 1):
        x = block35(x, BLOCK35_SCALE, name=f"Repeat_block35_{index}", batch_norm=batch_norm)
    x = reduction_a(x, name="Mixed_6a", batch_norm=batch_norm)
    for index in range(1, BLOCK17_REPEATS + 1):
        x = block17(x, BLOCK17_SCALE, name=f"Repeat_1_block17_{index}", batch_norm=batch_norm)
    x = reduction_b(x, name="Mixed_7a", batch_norm=batch_norm)
    for index in range(1, BLOCK8_REPEATS + 1):
        x = block8(x, BLOCK8_SCALE, name=f"Repeat_2_block8_{index}", batch_norm=batch_norm)
    x = block8(x, 1.0, activation=None, name="Block8", batch_norm=batch_norm)

    x = keras.layers.GlobalAveragePooling2D(name="Logits_AvgPool_1a_8x8")(x)
    x = keras.layers.Dropout(dropout_rate, name="Logits_Dropout")(x)
    x = keras.layers.Dense(embedding_dim, use_bias=False, kernel_initializer=CONV_INIT, name="Bottleneck")(x)
    outputs = keras.layers.BatchNormalization(name="embedding", **batch_norm)(x)
    model = keras.Model(inputs, outputs, name="inception_resnet_v1")
    return load_weights(model, weights)


def conv(x, filters, kernel_size, name, batch_norm, strides=1, padding="same"):
    """slim.conv2d in facenet's arg_scope: conv (no bias), batch norm, ReLU."""
    return conv_unit(
        x,
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=CONV_INIT,
        batch_norm=batch_norm,
        activation="relu",
        name=name,
    )


def stem(x, batch_norm):
    """160x160x3 -> 17x17x256 (299x299 -> 35x35 in the paper)."""
    x = conv(x, 32, 3, strides=2, padding="valid", name="Conv2d_1a_3x3", batch_norm=batch_norm)
    x = conv(x, 32, 3, padding="valid", name="Conv2d_2a_3x3", batch_norm=batch_norm)
    x = conv(x, 64, 3, name="Conv2d_2b_3x3", batch_norm=batch_norm)
    x = keras.layers.MaxPooling2D(3, strides=2, name="MaxPool_3a_3x3")(x)
    x = conv(x, 80, 1, padding="valid", name="Conv2d_3b_1x1", batch_norm=batch_norm)
    x = conv(x, 192, 3, padding="valid", name="Conv2d_4a_3x3", batch_norm=batch_norm)
    return conv(x, 256, 3, strides=2, padding="valid", name="Conv2d_4b_3x3", batch_norm=batch_norm)


def residual(x, branches, scale, activation, name):
    """`activation(x + scale * up(concat(branches)))`, up a linear 1x1 conv with bias."""
    mixed = keras.layers.Concatenate(name=f"{name}_concat")(branches)
    up = keras.layers.Conv2D(x.shape[-1], 1, kernel_initializer=CONV_INIT, name=f"{name}_Conv2d_1x1")(mixed)
    up = keras.layers.Rescaling(scale, name=f"{name}_scale")(up)
    x = keras.layers.Add(name=f"{name}_add")([x, up])
    return activate(x, activation, name)


def block35(x, scale, name, batch_norm):
    """Inception-ResNet-A (the 35x35 block of the paper)."""
    branch_0 = conv(x, 32, 1, name=f"{name}_Branch_0_Conv2d_1x1", batch_norm=batch_norm)
    branch_1 = conv(x, 32, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1", batch_norm=batch_norm)
    branch_1 = conv(branch_1, 32, 3, name=f"{name}_Branch_1_Conv2d_0b_3x3", batch_norm=batch_norm)
    branch_2 = conv(x, 32, 1, name=f"{name}_Branch_2_Conv2d_0a_1x1", batch_norm=batch_norm)
    branch_2 = conv(branch_2, 32, 3, name=f"{name}_Branch_2_Conv2d_0b_3x3", batch_norm=batch_norm)
    branch_2 = conv(branch_2, 32, 3, name=f"{name}_Branch_2_Conv2d_0c_3x3", batch_norm=batch_norm)
    return residual(x, [branch_0, branch_1, branch_2], scale, "relu", name)


def block17(x, scale, name, batch_norm):
    """Inception-ResNet-B (the 17x17 block of the paper)."""
    branch_0 = conv(x, 128, 1, name=f"{name}_Branch_0_Conv2d_1x1", batch_norm=batch_norm)
    branch_1 = conv(x, 128, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1", batch_norm=batch_norm)
    branch_1 = conv(branch_1, 128, (1, 7), name=f"{name}_Branch_1_Conv2d_0b_1x7", batch_norm=batch_norm)
    branch_1 = conv(branch_1, 128, (7, 1), name=f"{name}_Branch_1_Conv2d_0c_7x1", batch_norm=batch_norm)
    return residual(x, [branch_0, branch_1], scale, "relu", name)


def block8(x, scale, name, batch_norm, activation="relu"):
    """Inception-ResNet-C (the 8x8 block of the paper); the last one has no activation."""
    branch_0 = conv(x, 192, 1, name=f"{name}_Branch_0_Conv2d_1x1", batch_norm=batch_norm)
    branch_1 = conv(x, 192, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1", batch_norm=batch_norm)
    branch_1 = conv(branch_1, 192, (1, 3), name=f"{name}_Branch_1_Conv2d_0b_1x3", batch_norm=batch_norm)
    branch_1 = conv(branch_1, 192, (3, 1), name=f"{name}_Branch_1_Conv2d_0c_3x1", batch_norm=batch_norm)
    return residual(x, [branch_0, branch_1], scale, activation, name)


def reduction_a(x, name, batch_norm):
    """Reduction-A with facenet's filter counts (k, l, m, n) = (192, 192, 256, 384)."""
    branch_0 = conv(
        x, 384, 3, strides=2, padding="valid", name=f"{name}_Branch_0_Conv2d_1a_3x3", batch_norm=batch_norm
    )
    branch_1 = conv(x, 192, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1", batch_norm=batch_norm)
    branch_1 = conv(branch_1, 192, 3, name=f"{name}_Branch_1_Conv2d_0b_3x3", batch_norm=batch_norm)
    branch_1 = conv(
        branch_1, 256, 3, strides=2, padding="valid", name=f"{name}_Branch_1_Conv2d_1a_3x3", batch_norm=batch_norm
    )
    branch_2 = keras.layers.MaxPooling2D(3, strides=2, name=f"{name}_Branch_2_MaxPool_1a_3x3")(x)
    return keras.layers.Concatenate(name=f"{name}_concat")([branch_0, branch_1, branch_2])


def reduction_b(x, name, batch_norm):
    """Reduction-B of Inception-ResNet-v1."""
    branch_0 = conv(x, 256, 1, name=f"{name}_Branch_0_Conv2d_0a_1x1", batch_norm=batch_norm)
    branch_0 = conv(
        branch_0, 384, 3, strides=2, padding="valid", name=f"{name}_Branch_0_Conv2d_1a_3x3", batch_norm=batch_norm
    )
    branch_1 = conv(x, 256, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1", batch_norm=batch_norm)
    branch_1 = conv(
        branch_1, 256, 3, strides=2, padding="valid", name=f"{name}_Branch_1_Conv2d_1a_3x3", batch_norm=batch_norm
    )
    branch_2 = conv(x, 256, 1, name=f"{name}_Branch_2_Conv2d_0a_1x1", batch_norm=batch_norm)
    branch_2 = conv(branch_2, 256, 3, name=f"{name}_Branch_2_Conv2d_0b_3x3", batch_norm=batch_norm)
    branch_2 = conv(
        branch_2, 256, 3, strides=2, padding="valid", name=f"{name}_Branch_2_Conv2d_1a_3x3", batch_norm=batch_norm
    )
    branch_3 = keras.layers.MaxPooling2D(3, strides=2, name=f"{name}_Branch_3_MaxPool_1a_3x3")(x)
    return keras.layers.Concatenate(name=f"{name}_concat")([branch_0, branch_1, branch_2, branch_3])
