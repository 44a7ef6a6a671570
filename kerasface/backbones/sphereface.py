"""SphereFace residual networks (Liu et al., CVPR 2017, Table 2)."""

import keras

from kerasface.backbones.common import (
    CAFFE_XAVIER,
    check_depth,
    check_embedding_dim,
    check_input_shape,
    conv_unit,
    initializer_spec,
    load_weights,
)

STAGE_FILTERS = (64, 128, 256, 512)

# Residual units in each of the four stages, by depth (Table 2).
STAGE_UNITS = {
    4: (0, 0, 0, 0),
    10: (0, 1, 2, 0),
    20: (1, 2, 4, 1),
    36: (2, 4, 8, 2),
    64: (3, 8, 16, 3),
}

# The prototxt draws the residual convolutions from N(0, 0.01) and freezes
# their bias at zero (`lr_mult: 0`), so they are built without one.
RESIDUAL_INIT = initializer_spec("RandomNormal", stddev=0.01)


def sphereface(depth, input_shape=(112, 96, 3), embedding_dim=512, residual_bias=False, weights=None):
    """SphereFace network: four PReLU stages, no batch norm, then `fc5`.

    Each stage is a stride-2 3x3 convolution (Caffe "xavier" init, with bias)
    followed by residual units of two 3x3 convolutions and an identity
    shortcut; the stages have 64, 128, 256 and 512 filters. The flattened
    feature map goes through one fully connected layer, the embedding.
    Layer names follow the authors' prototxt (`conv1_1`, `res1_3`, ...;
    `fc5` is called "embedding").

    Settings of the authors' `train/code/sphereface_model.prototxt`
    (wy1iu/sphereface): the stride-2 convolutions and `fc5` use Caffe's
    "xavier" filler (`CAFFE_XAVIER`, Keras' LeCun uniform) and a bias that
    starts at 0; the residual convolutions use a "gaussian" filler with std
    0.01 and a bias frozen at 0 (`lr_mult: 0`), so they have none here;
    every PReLU is Caffe's default, one slope per channel starting at 0.25.
    The prototxt trains the biases with twice the learning rate and no
    weight decay (`lr_mult: 2`, `decay_mult: 0`), an optimiser setting that
    the backbone does not carry. The PyTorch port (clcarwin/sphereface_pytorch
    `net_sphere.py`, `sphere20a`) differs: every convolution has a bias and
    PyTorch's default initialisation; `residual_bias=True` builds that
    layout (its trained residual biases are not zero, so its checkpoints
    need it). Caffe flattens the last feature map in
    (channel, height, width) order and Keras in (height, width, channel)
    order, so a converter must permute the rows of `fc5`'s kernel.

    Parameters at 112x96x3 with a 512-d embedding (the prototxt's frozen
    zero biases of the residual convolutions are left out): depth 4:
    12,562,496; 10: 15,217,984; 20: 22,666,944; 36: 32,771,392; 64:
    48,186,816. `residual_bias=True` adds one bias per residual
    convolution: 3,712 at depth 20 (22,670,656 in all).

    Args:
        depth: 4, 10, 20, 36 or 64 convolutional layers.
        input_shape: image shape (height, width, channels), already
            normalised. Defaults to `(112, 96, 3)`, the paper's crop.
        embedding_dim: size of the embedding. Defaults to `512`.
        residual_bias: whether the residual convolutions have a bias (the
            PyTorch port's layout; initialised at 0). Defaults to `False`,
            the prototxt's frozen zero bias.
        weights: `None` or a local `.weights.h5`/`.keras` file.

    Returns:
        A `keras.Model` from images to embeddings (not normalised).

    Reference:
    - [Liu et al., 2017](https://arxiv.org/abs/1704.08063)
    """
    where = "sphereface"
    units = STAGE_UNITS[check_depth(depth, STAGE_UNITS, where)]
    input_shape = check_input_shape(input_shape, where)
    embedding_dim = check_embedding_dim(embedding_dim, where)
    if not isinstance(residual_bias, bool):
        raise ValueError(f"`residual_bias` must be True or False. Received: residual_bias={residual_bias!r}")

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for stage, (filters, num_units) in enumerate(zip(STAGE_FILTERS, units), start=1):
        x = conv_unit(
            x,
            filters,
            3,
            strides=2,
            padding=1,
            kernel_initializer=CAFFE_XAVIER,
            activation="prelu",
            name=f"conv{stage}_1",
        )
        for unit in range(num_units):
            x = residual_unit(x, filters, stage=stage, first_index=2 * unit + 2, use_bias=residual_bias)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(embedding_dim, kernel_initializer=CAFFE_XAVIER, name="embedding")(x)
    model = keras.Model(inputs, outputs, name=f"sphereface{depth}")
    return load_weights(model, weights)


def residual_unit(x, filters, stage, first_index, use_bias=False):
    """`x + PReLU(conv(PReLU(conv(x))))`, named `conv{stage}_{first_index}`, ..."""
    y = x
    for index in (first_index, first_index + 1):
        y = conv_unit(
            y,
            filters,
            3,
            padding=1,
            use_bias=use_bias,
            kernel_initializer=RESIDUAL_INIT,
            activation="prelu",
            name=f"conv{stage}_{index}",
        )
    return keras.layers.Add(name=f"res{stage}_{first_index + 1}")([x, y])
