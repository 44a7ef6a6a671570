"""MobileFaceNet (Chen et al., 2018, Table 1), laid out as insightface's arcface_torch."""

import keras

from kerasface.backbones.common import (
    PYTORCH_BATCH_NORM,
    activate,
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
# arcface_torch's second convolution always has 64 groups: depthwise at
# scale 1, two channels per group at scale 2.
STEM_GROUPS = 64

# insightface initialises with kaiming_normal_(mode="fan_out"). PyTorch's
# fan-out of a depthwise kernel (C, 1, k, k) is C*k*k, which is Keras'
# fan-in of the same kernel stored as (k, k, C, 1).
CONV_INIT = initializer_spec("VarianceScaling", scale=2.0, mode="fan_out", distribution="untruncated_normal")
DEPTHWISE_INIT = initializer_spec("VarianceScaling", scale=2.0, mode="fan_in", distribution="untruncated_normal")


def mobilefacenet(input_shape=(112, 112, 3), embedding_dim=128, scale=1, weights=None):
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

    `scale` is arcface_torch's `MobileFaceNet(scale=...)`: its published
    "mbf" models are `get_mbf(scale=2)`. It multiplies the stem's and every
    bottleneck's output channels (64 -> 64 * scale, 128 -> 128 * scale) and
    nothing else: the bottlenecks keep Table 1's hidden widths (128, 256,
    256, 512, 256; insightface's `groups`), the second convolution keeps
    64 groups (a grouped, no longer depthwise, convolution), and `conv_sep`
    still gives 512 channels.

    Parameters at 112x112x3 with a 128-d embedding: 1,022,720, of which
    1,003,136 are trainable (the count PyTorch reports; the paper says
    0.99M); at `scale=2` with arcface_torch's 512-d embedding: 2,083,328,
    of which 2,059,520 are trainable.

    Args:
        input_shape: image shape (height, width, channels), already
            normalised. Defaults to `(112, 112, 3)`.
        embedding_dim: size of the embedding. Defaults to `128`.
        scale: width multiplier of arcface_torch (a positive int).
            Defaults to `1`, the paper's network.
        weights: `None` or a local `.weights.h5`/`.keras` file.

    Returns:
        A `keras.Model` from images to embeddings.

    Reference:
    - [Chen et al., 2018](https://arxiv.org/abs/1804.07573)
    """
    where = "mobilefacenet"
    input_shape = check_input_shape(input_shape, where)
    embedding_dim = check_embedding_dim(embedding_dim, where)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"{where}: `scale` must be a positive int (arcface_torch's 1 or 2). Received: scale={scale!r}")

    inputs = keras.Input(input_shape, name="image")
    x = conv_bn(inputs, STEM_FILTERS * scale, 3, strides=2, padding=1, activation="prelu", name="conv1")
    if scale == 1:
        x = conv_bn(x, None, 3, padding=1, depthwise=True, activation="prelu", name="conv2_dw")
    else:
        x = grouped_conv_bn(x, STEM_FILTERS * scale, 3, groups=STEM_GROUPS, activation="prelu", name="conv2_dw")
    base_channels = STEM_FILTERS  # the input channels at scale 1, which set the hidden width
    for row, (expansion, filters, repeats, stride) in enumerate(BOTTLENECKS, start=1):
        for index in range(repeats):
            x = bottleneck(
                x,
                expansion,
                filters * scale,
                stride if index == 0 else 1,
                name=f"bottleneck{row}_{index + 1}",
                hidden=expansion * base_channels,
            )
            base_channels = filters
    x = conv_bn(x, SEPARABLE_FILTERS, 1, activation="prelu", name="conv_sep")
    x = conv_bn(x, None, tuple(x.shape[1:3]), depthwise=True, name="gdconv")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(embedding_dim, use_bias=False, kernel_initializer=CONV_INIT, name="linear")(x)
    outputs = keras.layers.BatchNormalization(name="embedding", **PYTORCH_BATCH_NORM)(x)
    model = keras.Model(inputs, outputs, name="mobilefacenet" if scale == 1 else f"mobilefacenet_x{scale}")
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


def grouped_conv_bn(x, filters, kernel_size, groups, name, activation=None):
    """A stride-1 "same" grouped convolution, batch norm and activation (arcface_torch's ConvBlock with groups)."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        groups=groups,
        use_bias=False,
        kernel_initializer=CONV_INIT,
        name=name,
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn", **PYTORCH_BATCH_NORM)(x)
    return activate(x, activation, name)


def bottleneck(x, expansion, filters, stride, name, hidden=None):
    """Inverted residual: 1x1 expansion, 3x3 depthwise, linear 1x1 projection.

    The expansion gives `hidden` channels (default `expansion` times the
    input's). The identity shortcut is added when the shape is unchanged.
    """
    channels = x.shape[-1]
    hidden = expansion * channels if hidden is None else hidden
    y = conv_bn(x, hidden, 1, activation="prelu", name=f"{name}_expand")
    y = conv_bn(y, None, 3, strides=stride, padding=1, depthwise=True, activation="prelu", name=f"{name}_dw")
    y = conv_bn(y, filters, 1, name=f"{name}_project")
    if stride == 1 and channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y
