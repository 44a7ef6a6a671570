"""Building blocks, argument checks and weight loading shared by the backbones.

The reference networks were written in Caffe, PyTorch and TF-slim. Their
stride-2 convolutions pad symmetrically (`pad: 1`, `padding=1`), which Keras'
`padding="same"` does not do for even inputs (it pads only after), so
`conv_unit` accepts a pixel count and zero-pads explicitly when that matters.
"""

import numbers
import os

import keras

from kerasface._checks import check_positive_int

# PyTorch's BatchNorm2d/BatchNorm1d defaults (momentum 0.1 on the new batch
# statistics is Keras' momentum 0.9 on the running value).
PYTORCH_BATCH_NORM = {"epsilon": 1e-5, "momentum": 0.9}

# Caffe's "xavier" filler draws from U(-sqrt(3 / fan_in), sqrt(3 / fan_in)),
# which is Keras' LeCun uniform initializer, not Glorot's.
CAFFE_XAVIER = "lecun_uniform"

WEIGHT_SUFFIXES = (".weights.h5", ".keras")

# PyTorch's default `nn.Linear` weights, kaiming_uniform_(a=sqrt(5)):
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which is VarianceScaling(1/3, fan_in,
# uniform). Its bias is drawn from the same range (`pytorch_linear_bias`),
# where Keras starts at zero.
PYTORCH_LINEAR_KERNEL = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1 / 3, "mode": "fan_in", "distribution": "uniform"},
}


# === Argument checks ===


def check_depth(depth, depths, where):
    """Raises `ValueError` unless `depth` is one of `depths` (a dict or list)."""
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth not in depths:
        valid = ", ".join(str(d) for d in depths)
        raise ValueError(f"{where}: unknown depth; valid depths are {valid}. Received: depth={depth!r}")
    return int(depth)


def check_input_shape(input_shape, where, min_size=1):
    """Returns `input_shape` as `(height, width, channels)` of positive ints.

    Args:
        input_shape: the image shape, channels last.
        where: the backbone's name, for the error message.
        min_size: the smallest height and width the network can process.
    """
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in input_shape)
    ):
        raise ValueError(
            f"{where}: input_shape must be (height, width, channels) with positive integers. "
            f"Received: input_shape={input_shape!r}"
        )
    height, width, _ = input_shape
    if min(height, width) < min_size:
        raise ValueError(
            f"{where}: the input is too small; the network needs at least {min_size}x{min_size} pixels. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    return tuple(input_shape)


def check_dropout_rate(rate, where):
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"{where}: dropout_rate must be a number in [0, 1). Received: dropout_rate={rate!r}")
    return float(rate)


def check_embedding_dim(embedding_dim, where):
    return check_positive_int(embedding_dim, "embedding_dim", where)


def smallest_input(valid_windows):
    """Smallest side that leaves one pixel after 'valid' `(kernel, stride)` windows.

    Padded ("same") layers do not shrink the image and are left out; the
    windows are listed from the input to the output.
    """
    size = 1
    for kernel, stride in reversed(valid_windows):
        size = (size - 1) * stride + kernel
    return size


# === Building blocks ===


def initializer_spec(class_name, **config):
    """An initializer as a config dict, from which every layer builds its own.

    One unseeded initializer *instance* shared by several layers would give
    them all the same values.
    """
    return {"class_name": class_name, "config": config}


def pytorch_linear_bias(fan_in):
    """PyTorch's default `nn.Linear` bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / float(fan_in) ** 0.5
    return initializer_spec("RandomUniform", minval=-bound, maxval=bound)


def prelu(x, name):
    """Parametric ReLU with one slope per channel, initialised at 0.25.

    This is Caffe's `PReLU` layer and PyTorch's `nn.PReLU(channels)`; Keras'
    default (zero slopes, one per feature *and* position) is neither.
    """
    shared_axes = list(range(1, len(x.shape) - 1)) or None
    return keras.layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.25), shared_axes=shared_axes, name=name
    )(x)


def activate(x, activation, name):
    """Applies `"prelu"` (see `prelu`), a Keras activation name, or nothing."""
    if activation is None:
        return x
    if activation == "prelu":
        return prelu(x, f"{name}_prelu")
    return keras.layers.Activation(activation, name=f"{name}_{activation}")(x)


def conv_unit(
    x,
    filters,
    kernel_size,
    *,
    name,
    strides=1,
    padding=0,
    depthwise=False,
    use_bias=True,
    kernel_initializer="glorot_uniform",
    batch_norm=None,
    activation=None,
):
    """Convolution, then optional batch normalisation, then optional activation.

    Args:
        x: the input tensor (batch, height, width, channels).
        filters: output channels; ignored when `depthwise=True`.
        kernel_size: an int or a `(height, width)` pair.
        name: name of the convolution; the other layers add a suffix.
        strides: the stride.
        padding: pixels of zero padding on every side (Caffe's `pad`,
            PyTorch's `padding`), or TF's `"same"`/`"valid"`.
        depthwise: use a depthwise convolution (one filter per channel).
        use_bias: whether the convolution has a bias.
        kernel_initializer: initializer of the convolution kernel.
        batch_norm: `None` for no batch norm, else the keyword arguments of
            `keras.layers.BatchNormalization`.
        activation: `None`, `"prelu"` or a Keras activation name.
    """
    if isinstance(padding, int):
        kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if strides == 1 and all(2 * padding == k - 1 for k in kernel):
            padding = "same"  # the same pixels as symmetric padding
        else:
            if padding:
                x = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
            padding = "valid"
    common = dict(strides=strides, padding=padding, use_bias=use_bias, name=name)
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel_size, depthwise_initializer=kernel_initializer, **common)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel_size, kernel_initializer=kernel_initializer, **common)(x)
    if batch_norm is not None:
        x = keras.layers.BatchNormalization(name=f"{name}_bn", **batch_norm)(x)
    return activate(x, activation, name)


# === Weights ===


def load_weights(model, weights, argument="weights"):
    """Loads a local `.weights.h5` or `.keras` file into `model`; nothing is downloaded.

    `argument` is the name of the caller's argument, for the error messages.
    """
    if weights is None:
        return model
    path = os.fspath(weights)
    if not path.endswith(WEIGHT_SUFFIXES):
        raise ValueError(
            f"{model.name}: {argument} must be None or a local file ending in "
            f"{' or '.join(WEIGHT_SUFFIXES)}. Received: {argument}={weights!r}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{model.name}: weights file not found (kerasface never downloads weights). "
            f"Received: {argument}={weights!r}"
        )
    model.load_weights(path)
    return model
