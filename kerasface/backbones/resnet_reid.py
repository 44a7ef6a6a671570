"""The SphereReID network (Fan et al., 2018): torchvision's ResNet-50 with network D's head.

The trunk is written here rather than taken from `keras.applications`, whose
ResNet50 is the Caffe "v1" network (stride in the first 1x1 convolution of a
bottleneck, biased convolutions, batch norm epsilon 1.001e-5). The
reference trunk is torchvision's `resnet50` (pytorch/vision
`torchvision/models/resnet.py`), the "v1.5" layout:

- the stride-2 convolution of a bottleneck is its 3x3 one (`conv2`);
- convolutions have no bias, each is followed by batch norm;
- batch norm uses PyTorch's defaults, epsilon 1e-5 and momentum 0.1 on the
  new statistics (Keras' `momentum=0.9`), with gamma 1 and beta 0;
- convolutions are initialised with `kaiming_normal_(mode="fan_out",
  nonlinearity="relu")`, an untruncated N(0, 2 / fan_out);
- `zero_init_residual=False`: the last batch norm of a block starts at 1 too;
- the 7x7 stem convolution pads 3 pixels and the max-pool 1 pixel on every
  side.

Layer names map one-to-one to torchvision's state-dict keys with `_` for
`.`: `conv1`, `bn1`, `layer1_0_conv1`, `layer1_0_bn1`, ...,
`layer1_0_downsample_0` (the 1x1 convolution), `layer1_0_downsample_1` (its
batch norm). A converter from torchvision's `resnet50-19c8e357.pth` (the
ImageNet weights the paper started from) must transpose the convolution
kernels from (out, in, kh, kw) to (kh, kw, in, out) and map batch norm
`weight`, `bias`, `running_mean`, `running_var` to `gamma`, `beta`,
`moving_mean`, `moving_variance`; kerasface has no such converter yet, so
`trunk_weights=` takes a Keras file of the trunk.
"""

import keras

from kerasface.backbones.common import (
    PYTORCH_BATCH_NORM,
    check_dropout_rate,
    check_embedding_dim,
    check_input_shape,
    conv_unit,
    initializer_spec,
    load_weights,
)

# Bottleneck blocks and their inner width in torchvision's layer1..layer4;
# the output of a block has EXPANSION times the inner width.
TRUNK_BLOCKS = (3, 4, 6, 3)
TRUNK_WIDTHS = (64, 128, 256, 512)
EXPANSION = 4
STEM_FILTERS = 64

# torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu"). PyTorch's
# fan-out of a (out, in, kh, kw) kernel, out * kh * kw, is Keras' fan-out of
# the same kernel stored as (kh, kw, in, out).
TORCHVISION_CONV_INIT = initializer_spec(
    "VarianceScaling", scale=2.0, mode="fan_out", distribution="untruncated_normal"
)

# The head's fully connected layer as in the PyTorch port of SphereReID
# (CoinCheung/SphereReID backbone.py): kaiming_normal_(weight, a=1), that is
# gain 1 and fan-in mode, N(0, 1 / fan_in); bias 0.
FC_INIT = initializer_spec("VarianceScaling", scale=1.0, mode="fan_in", distribution="untruncated_normal")


def resnet50_reid(
    input_shape=(256, 128, 3), embedding_dim=1024, dropout_rate=0.5, weights=None, trunk_weights=None
):
    """SphereReID's network D: ResNet-50, then GAP-BN-Dropout-FC-BN-L2.

    The trunk is torchvision's ResNet-50 without its pooling and fully
    connected layer (see `resnet50_trunk`), nested as a layer named
    "resnet50" so ImageNet weights can be loaded into it alone. Its 2048-d
    globally average-pooled features go through batch norm, dropout, a fully
    connected layer and batch norm, and the result is L2-normalised (the
    paper's network D, Sec. 3.4) to lie on the hypersphere that the Sphere
    Softmax loss assumes. The head's batch norms are PyTorch's
    `BatchNorm1d` (epsilon 1e-5, momentum 0.1, i.e. Keras' 0.9), as in the
    PyTorch port (CoinCheung/SphereReID `backbone.py`, whose unofficial
    "last stride 1" trick is not used here: the paper keeps stride 2).

    Parameters at 256x128x3 with a 1024-d embedding: 25,671,616, of which
    25,612,352 are trainable (torchvision's 23,508,032 without `fc`, then
    4,096 + 2,098,176 + 2,048 in the head).

    Args:
        input_shape: image shape (height, width, channels), already
            normalised with ImageNet's mean and standard deviation (as
            torchvision's weights expect). Defaults to `(256, 128, 3)`, the
            paper's training crop.
        embedding_dim: size of the embedding. Defaults to `1024` (paper).
        dropout_rate: fraction dropped before the fully connected layer.
            Defaults to `0.5` (paper).
        weights: `None` or a local `.weights.h5`/`.keras` file of the whole
            network; loaded after `trunk_weights`.
        trunk_weights: `None` or a local `.weights.h5`/`.keras` file of the
            trunk alone (a model built by `resnet50_trunk`), such as
            torchvision's ImageNet weights once converted; the paper starts
            from ImageNet. Nothing is downloaded.

    Returns:
        A `keras.Model` from images to unit-length embeddings.

    Reference:
    - [Fan et al., 2018](https://arxiv.org/abs/1807.00537)
    - [He et al., 2016](https://arxiv.org/abs/1512.03385)
    """
    where = "resnet50_reid"
    input_shape = check_input_shape(input_shape, where)
    embedding_dim = check_embedding_dim(embedding_dim, where)
    dropout_rate = check_dropout_rate(dropout_rate, where)

    inputs = keras.Input(input_shape, name="image")
    trunk = resnet50_trunk(input_shape, weights=trunk_weights)
    x = trunk(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.BatchNormalization(name="bn_features", **PYTORCH_BATCH_NORM)(x)
    x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    x = keras.layers.Dense(embedding_dim, kernel_initializer=FC_INIT, name="fc")(x)
    x = keras.layers.BatchNormalization(name="bn_embedding", **PYTORCH_BATCH_NORM)(x)
    outputs = keras.layers.UnitNormalization(name="embedding")(x)
    model = keras.Model(inputs, outputs, name="resnet50_reid")
    return load_weights(model, weights)


def resnet50_trunk(input_shape=(224, 224, 3), weights=None):
    """torchvision's ResNet-50 from the image to `layer4`'s 2048-channel map.

    Stem: 7x7 conv (stride 2, padding 3), batch norm, ReLU, 3x3 max-pool
    (stride 2, padding 1); then four stages of 3, 4, 6 and 3 bottlenecks
    (`bottleneck`), the first of stages 2-4 with stride 2. The output side
    is the input side divided by 32, rounded up.

    Parameters (any input size): 23,508,032 trainable, torchvision's
    `resnet50` without `fc`, and 53,120 moving statistics.

    Args:
        input_shape: image shape (height, width, channels). Defaults to
            `(224, 224, 3)`.
        weights: `None` or a local `.weights.h5`/`.keras` file of this trunk.

    Returns:
        A `keras.Model` named "resnet50".
    """
    input_shape = check_input_shape(input_shape, "resnet50_trunk")
    inputs = keras.Input(input_shape, name="image")
    x = conv_bn(inputs, STEM_FILTERS, 7, strides=2, padding=3, name="conv1", bn_name="bn1")
    x = keras.layers.ReLU(name="relu")(x)
    # PyTorch pads a max-pool with -inf; after the ReLU zeros give the same maxima.
    x = keras.layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="maxpool")(x)
    for stage, (width, blocks) in enumerate(zip(TRUNK_WIDTHS, TRUNK_BLOCKS), start=1):
        for index in range(blocks):
            strides = 2 if stage > 1 and index == 0 else 1
            x = bottleneck(x, width, strides, name=f"layer{stage}_{index}")
    model = keras.Model(inputs, x, name="resnet50")
    return load_weights(model, weights, argument="trunk_weights")


def conv_bn(x, filters, kernel_size, name, bn_name, strides=1, padding=0):
    """A bias-free convolution (torchvision's init), then PyTorch's batch norm."""
    x = conv_unit(
        x,
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=TORCHVISION_CONV_INIT,
        name=name,
    )
    return keras.layers.BatchNormalization(name=bn_name, **PYTORCH_BATCH_NORM)(x)


def bottleneck(x, width, strides, name):
    """torchvision's `Bottleneck`: 1x1, 3x3 (strided), 1x1 to 4 * width, plus a shortcut.

    `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))))  + shortcut(x))`,
    the shortcut being the identity or, when the shape changes, a strided
    1x1 convolution and batch norm (`downsample`).
    """
    filters = EXPANSION * width
    y = conv_bn(x, width, 1, name=f"{name}_conv1", bn_name=f"{name}_bn1")
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = conv_bn(y, width, 3, strides=strides, padding=1, name=f"{name}_conv2", bn_name=f"{name}_bn2")
    y = keras.layers.ReLU(name=f"{name}_relu2")(y)
    y = conv_bn(y, filters, 1, name=f"{name}_conv3", bn_name=f"{name}_bn3")
    if strides != 1 or x.shape[-1] != filters:
        x = conv_bn(
            x, filters, 1, strides=strides, name=f"{name}_downsample_0", bn_name=f"{name}_downsample_1"
        )
    y = keras.layers.Add(name=f"{name}_add")([x, y])
    return keras.layers.ReLU(name=f"{name}_relu3")(y)
