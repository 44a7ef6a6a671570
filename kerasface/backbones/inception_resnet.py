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

# TF-slim settings of davidsandberg/facenet's `inference()`: truncated-normal
# weights, and batch norm with a shift but no scale (slim's default).
CONV_INIT = initializer_spec("TruncatedNormal", stddev=0.1)
SLIM_BATCH_NORM = {"momentum": 0.995, "epsilon": 0.001, "scale": False}

# 'valid' (kernel, stride) windows from the input to the last feature map:
# the stem (Conv2d_1a, Conv2d_2a, MaxPool_3a, Conv2d_4a, Conv2d_4b) and the
# two reductions.
VALID_WINDOWS = ((3, 2), (3, 1), (3, 2), (3, 1), (3, 2), (3, 2), (3, 2))

# (block, repeats, residual scale) of the three Inception-ResNet stages.
BLOCK35_REPEATS, BLOCK35_SCALE = 5, 0.17
BLOCK17_REPEATS, BLOCK17_SCALE = 10, 0.10
BLOCK8_REPEATS, BLOCK8_SCALE = 5, 0.20


def inception_resnet_v1(input_shape=(160, 160, 3), embedding_dim=128, dropout_rate=0.2, weights=None):
    """FaceNet's Inception-ResNet-v1 with its bottleneck embedding layer.

    Stem, 5 x block35 (Inception-ResNet-A), reduction A, 10 x block17,
    reduction B, 5 x block8 and a sixth block8 without activation, global
    average pooling, dropout, then the "Bottleneck": a fully connected layer
    without bias followed by batch norm. Convolutions are followed by batch
    norm (shift, no scale) and ReLU except the linear 1x1 up-projection of
    each residual block. Layer names follow the TF-slim scopes with `_` for
    `/`. The output is not L2-normalised.

    Parameters at 160x160x3 with a 128-d embedding: 22,808,144, of which
    22,779,312 are trainable.

    Args:
        input_shape: image shape (height, width, channels), already
            normalised, at least 75x75. Defaults to `(160, 160, 3)`.
        embedding_dim: size of the embedding; FaceNet uses 128 or 512.
            Defaults to `128`.
        dropout_rate: fraction dropped before the bottleneck. Defaults to
            `0.2` (facenet's `keep_probability=0.8`).
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

    inputs = keras.Input(input_shape, name="image")
    x = stem(inputs)
    for index in range(1, BLOCK35_REPEATS + 1):
        x = block35(x, BLOCK35_SCALE, name=f"Repeat_block35_{index}")
    x = reduction_a(x, name="Mixed_6a")
    for index in range(1, BLOCK17_REPEATS + 1):
        x = block17(x, BLOCK17_SCALE, name=f"Repeat_1_block17_{index}")
    x = reduction_b(x, name="Mixed_7a")
    for index in range(1, BLOCK8_REPEATS + 1):
        x = block8(x, BLOCK8_SCALE, name=f"Repeat_2_block8_{index}")
    x = block8(x, 1.0, activation=None, name="Block8")

    x = keras.layers.GlobalAveragePooling2D(name="Logits_AvgPool_1a_8x8")(x)
    x = keras.layers.Dropout(dropout_rate, name="Logits_Dropout")(x)
    x = keras.layers.Dense(embedding_dim, use_bias=False, kernel_initializer=CONV_INIT, name="Bottleneck")(x)
    outputs = keras.layers.BatchNormalization(name="embedding", **SLIM_BATCH_NORM)(x)
    model = keras.Model(inputs, outputs, name="inception_resnet_v1")
    return load_weights(model, weights)


def conv(x, filters, kernel_size, name, strides=1, padding="same"):
    """slim.conv2d in facenet's arg_scope: conv (no bias), batch norm, ReLU."""
    return conv_unit(
        x,
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=CONV_INIT,
        batch_norm=SLIM_BATCH_NORM,
        activation="relu",
        name=name,
    )


def stem(x):
    """160x160x3 -> 17x17x256 (299x299 -> 35x35 in the paper)."""
    x = conv(x, 32, 3, strides=2, padding="valid", name="Conv2d_1a_3x3")
    x = conv(x, 32, 3, padding="valid", name="Conv2d_2a_3x3")
    x = conv(x, 64, 3, name="Conv2d_2b_3x3")
    x = keras.layers.MaxPooling2D(3, strides=2, name="MaxPool_3a_3x3")(x)
    x = conv(x, 80, 1, padding="valid", name="Conv2d_3b_1x1")
    x = conv(x, 192, 3, padding="valid", name="Conv2d_4a_3x3")
    return conv(x, 256, 3, strides=2, padding="valid", name="Conv2d_4b_3x3")


def residual(x, branches, scale, activation, name):
    """`activation(x + scale * up(concat(branches)))`, up a linear 1x1 conv with bias."""
    mixed = keras.layers.Concatenate(name=f"{name}_concat")(branches)
    up = keras.layers.Conv2D(x.shape[-1], 1, kernel_initializer=CONV_INIT, name=f"{name}_Conv2d_1x1")(mixed)
    up = keras.layers.Rescaling(scale, name=f"{name}_scale")(up)
    x = keras.layers.Add(name=f"{name}_add")([x, up])
    return activate(x, activation, name)


def block35(x, scale, name):
    """Inception-ResNet-A (the 35x35 block of the paper)."""
    branch_0 = conv(x, 32, 1, name=f"{name}_Branch_0_Conv2d_1x1")
    branch_1 = conv(x, 32, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1")
    branch_1 = conv(branch_1, 32, 3, name=f"{name}_Branch_1_Conv2d_0b_3x3")
    branch_2 = conv(x, 32, 1, name=f"{name}_Branch_2_Conv2d_0a_1x1")
    branch_2 = conv(branch_2, 32, 3, name=f"{name}_Branch_2_Conv2d_0b_3x3")
    branch_2 = conv(branch_2, 32, 3, name=f"{name}_Branch_2_Conv2d_0c_3x3")
    return residual(x, [branch_0, branch_1, branch_2], scale, "relu", name)


def block17(x, scale, name):
    """Inception-ResNet-B (the 17x17 block of the paper)."""
    branch_0 = conv(x, 128, 1, name=f"{name}_Branch_0_Conv2d_1x1")
    branch_1 = conv(x, 128, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1")
    branch_1 = conv(branch_1, 128, (1, 7), name=f"{name}_Branch_1_Conv2d_0b_1x7")
    branch_1 = conv(branch_1, 128, (7, 1), name=f"{name}_Branch_1_Conv2d_0c_7x1")
    return residual(x, [branch_0, branch_1], scale, "relu", name)


def block8(x, scale, name, activation="relu"):
    """Inception-ResNet-C (the 8x8 block of the paper); the last one has no activation."""
    branch_0 = conv(x, 192, 1, name=f"{name}_Branch_0_Conv2d_1x1")
    branch_1 = conv(x, 192, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1")
    branch_1 = conv(branch_1, 192, (1, 3), name=f"{name}_Branch_1_Conv2d_0b_1x3")
    branch_1 = conv(branch_1, 192, (3, 1), name=f"{name}_Branch_1_Conv2d_0c_3x1")
    return residual(x, [branch_0, branch_1], scale, activation, name)


def reduction_a(x, name):
    """Reduction-A with facenet's filter counts (k, l, m, n) = (192, 192, 256, 384)."""
    branch_0 = conv(x, 384, 3, strides=2, padding="valid", name=f"{name}_Branch_0_Conv2d_1a_3x3")
    branch_1 = conv(x, 192, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1")
    branch_1 = conv(branch_1, 192, 3, name=f"{name}_Branch_1_Conv2d_0b_3x3")
    branch_1 = conv(branch_1, 256, 3, strides=2, padding="valid", name=f"{name}_Branch_1_Conv2d_1a_3x3")
    branch_2 = keras.layers.MaxPooling2D(3, strides=2, name=f"{name}_Branch_2_MaxPool_1a_3x3")(x)
    return keras.layers.Concatenate(name=f"{name}_concat")([branch_0, branch_1, branch_2])


def reduction_b(x, name):
    """Reduction-B of Inception-ResNet-v1."""
    branch_0 = conv(x, 256, 1, name=f"{name}_Branch_0_Conv2d_0a_1x1")
    branch_0 = conv(branch_0, 384, 3, strides=2, padding="valid", name=f"{name}_Branch_0_Conv2d_1a_3x3")
    branch_1 = conv(x, 256, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1")
    branch_1 = conv(branch_1, 256, 3, strides=2, padding="valid", name=f"{name}_Branch_1_Conv2d_1a_3x3")
    branch_2 = conv(x, 256, 1, name=f"{name}_Branch_2_Conv2d_0a_1x1")
    branch_2 = conv(branch_2, 256, 3, name=f"{name}_Branch_2_Conv2d_0b_3x3")
    branch_2 = conv(branch_2, 256, 3, strides=2, padding="valid", name=f"{name}_Branch_2_Conv2d_1a_3x3")
    branch_3 = keras.layers.MaxPooling2D(3, strides=2, name=f"{name}_Branch_3_MaxPool_1a_3x3")(x)
    return keras.layers.Concatenate(name=f"{name}_concat")([branch_0, branch_1, branch_2, branch_3])
