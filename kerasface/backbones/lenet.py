"""LeNets++, the MNIST network of the centre-loss paper (Wen et al., ECCV 2016, Fig. 2)."""

import keras

from kerasface.backbones.common import (
    CAFFE_XAVIER,
    check_embedding_dim,
    check_input_shape,
    conv_unit,
    load_weights,
    prelu,
    smallest_input,
)

STAGE_FILTERS = (32, 64, 128)

# Max-pooling windows (size, stride) after each stage, as in the authors'
# `mnist_train_test.prototxt`: the last one is 3x3 (28 -> 14 -> 7 -> 3).
POOLS = ((2, 2), (2, 2), (3, 2))


def lenet_plus_plus(input_shape=(28, 28, 1), embedding_dim=2, weights=None):
    """LeNets++: three stages of two 5x5 PReLU convolutions and max-pooling.

    The stages have 32, 64 and 128 filters ('same' padding, Caffe "xavier"
    init). The flattened 3x3x128 map goes through a fully connected layer and
    a PReLU; with a 2-d embedding the deep features can be plotted directly
    (Figs. 2-3 of the paper). Layer names follow the prototxt (`conv1`,
    `conv1+` is `conv1_2`, `ip1`, ...).

    Settings of `mnist_example/mnist_train_test.prototxt` (ydwen/caffe-face):
    Caffe "xavier" weights (Keras' LeCun uniform) and zero-initialised biases
    for every convolution and `ip1`, per-channel PReLUs starting at 0.25, no
    batch norm. Caffe rounds pooled sizes up where Keras rounds down; the two
    agree whenever side minus pool size is a multiple of the stride before
    every pool, as at 28x28 (28 -> 14 -> 7 -> 3). Caffe flattens in (channel,
    height, width) order, so a converter must permute the rows of `ip1`.

    Parameters at 28x28x1 with a 2-d embedding: 797,604.

    Args:
        input_shape: image shape (height, width, channels), already
            normalised, at least 12x12. Defaults to `(28, 28, 1)`.
        embedding_dim: size of the embedding. Defaults to `2`.
        weights: `None` or a local `.weights.h5`/`.keras` file.

    Returns:
        A `keras.Model` from images to embeddings.

    Reference:
    - [Wen et al., 2016](https://ydwen.github.io/papers/WenECCV16.pdf)
    """
    where = "lenet_plus_plus"
    input_shape = check_input_shape(input_shape, where, min_size=smallest_input(POOLS))
    embedding_dim = check_embedding_dim(embedding_dim, where)

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for stage, (filters, (pool_size, pool_stride)) in enumerate(zip(STAGE_FILTERS, POOLS), start=1):
        for index in (1, 2):
            x = conv_unit(
                x,
                filters,
                5,
                padding=2,
                kernel_initializer=CAFFE_XAVIER,
                activation="prelu",
                name=f"conv{stage}_{index}",
            )
        x = keras.layers.MaxPooling2D(pool_size, pool_stride, name=f"pool{stage}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(embedding_dim, kernel_initializer=CAFFE_XAVIER, name="ip1")(x)
    outputs = prelu(x, name="embedding")
    model = keras.Model(inputs, outputs, name="lenet_plus_plus")
    return load_weights(model, weights)
