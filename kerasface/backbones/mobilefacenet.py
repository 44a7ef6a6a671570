"""MobileFaceNet (Chen et al., 2018, Table 1), laid out as insightface's arcface_torch."""

import keras

from kerasface.backbones.common import (
    PYTORCH_BATCH_NORM,
    check_embedding_dim,
    check_input_shape,
    conv_unit,
    initializer_spec,
    load_weights,
)

# Table 1 after the two stem convolutions: bottleneck rows of
# (expansion t, output channels c, repeats n, stride of the first s).
BOTTLENECKS = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)
STEM_FILTERS = 64
SEPARABLE_FILTERS = 512

# insightface initialises with kaiming_normal_(mode="fan_out"). PyTorch's
# fan-out of a depthwise kernel (C, 1, k, k) is C*k*k, which is Keras'
# fan-in of the same kernel stored as (k, k, C, 1).
CONV_INIT = initializer_spec("VarianceScaling", scale=2.0, mode="fan_out", distribution="untruncated_normal")
DEPTHWISE_INIT = initializer_spec("VarianceScaling", scale=2.0, mode="fan_in", distribution="untruncated_normal")


def mobilefacenet(input_shape=(112, 112, 3), embedding_dim=128, weights=None):
    """MobileFaceNet: MobileNetV2 bottlenecks, PReLU and a global depthwise conv.

    Stem: 3x3 conv (64, stride 2) and 3x3 depthwise conv, then the inverted
    residual bottlenecks of Table 1, a 1x1 conv to 512 channels, the linear
    global depthwise convolution (GDConv, its kernel the size of the last
    feature map: 7x7 at 112x112) and a linear 1x1 layer to the embedding
    (a fully connected layer without bias followed by batch norm, as in
    insightface). Every convolution is followed by batch norm; the
    non-linear ones by a per-channel PReLU.

    Settings of insightface's `recognition/arcface_torch/backbones/
    mobilefacenet.py`, whose `MobileFaceNet(scale=1, blocks=(1, 4, 6, 2))`
    is this layout (its default `scale=2` doubles the widths): convolutions
    and the linear layer without bias, initialised with
    `kaiming_normal_(mode="fan_out", nonlinearity="relu")`; batch norm with
    epsilon 1e-5 and PyTorch's momentum 0.1 (Keras' 0.9), gamma 1, beta 0;
    PReLU slopes start at 0.25. The GDConv output is 1x1, so flattening
    order does not matter to a converter.

    Parameters at 112x112x3 with a 128-d embedding: 1,022,720, of which
    1,003,136 are trainable (the count PyTorch reports; the paper says
    0.99M).

    Args:
        input_shape: image shape (height, width, channels), already
            normalised. Defaults to `(112, 112, 3)`.
        embedding_dim: size of the embedding. Defaults to `128`.
        weights: `None` or a local `.weights.h5`/`.keras` file.

    Returns:
        A `keras.Model` from images to embeddings.

    Reference:
    - [Chen et al., 2018](https://arxiv.org/abs/1804.07573)
    """
    where = "mobilefacenet"
    input_shape = check_input_shape(input_shape, where)
    embedding_dim = check_embedding_dim(embedding_dim, where)

    inputs = keras.Input(input_shape, name="image")
    x = conv_bn(inputs, STEM_FILTERS, 3, strides=2, padding=1, activation="prelu", name="conv1")
    x = conv_bn(x, None, 3, padding=1, depthwise=True, activation="prelu", name="conv2_dw")
    for row, (expansion, filters, repeats, stride) in enumerate(BOTTLENECKS, start=1):
        for index in range(repeats):
            x = bottleneck(
                x, expansion, filters, stride if index == 0 else 1, name=f"bottleneck{row}_{index + 1}"
            )
    x = conv_bn(x, SEPARABLE_FILTERS, 1, activation="prelu", name="conv_sep")
    x = conv_bn(x, None, tuple(x.shape[1:3]), depthwise=True, name="gdconv")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(embedding_dim, use_bias=False, kernel_initializer=CONV_INIT, name="linear")(x)
    outputs = keras.layers.BatchNormalization(name="embedding", **PYTORCH_BATCH_NORM)(x)
    model = keras.Model(inputs, outputs, name="mobilefacenet")
    return load_weights(model, weights)


def conv_bn(x, filters, kernel_size, name, strides=1, padding=0, depthwise=False, activation=None):
    """insightface's ConvBlock (`activation="prelu"`) or LinearBlock (`None`)."""
    return conv_unit(
        x,
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        depthwise=depthwise,
        use_bias=False,
        kernel_initializer=DEPTHWISE_INIT if depthwise else CONV_INIT,
        batch_norm=PYTORCH_BATCH_NORM,
        activation=activation,
        name=name,
    )


def bottleneck(x, expansion, filters, stride, name):
    """Inverted residual: 1x1 expansion, 3x3 depthwise, linear 1x1 projection.

    The identity shortcut is added when the shape is unchanged.
    """
    channels = x.shape[-1]
    y = conv_bn(x, expansion * channels, 1, activation="prelu", name=f"{name}_expand")
    y = conv_bn(y, None, 3, strides=stride, padding=1, depthwise=True, activation="prelu", name=f"{name}_dw")
    y = conv_bn(y, filters, 1, name=f"{name}_project")
    if stride == 1 and channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y
