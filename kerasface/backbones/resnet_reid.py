"""The SphereReID network (Fan et al., 2018): ResNet-50 with network-D's head."""

import keras

from kerasface.backbones.common import (
    check_dropout_rate,
    check_embedding_dim,
    check_input_shape,
    load_weights,
)

# keras.applications refuses inputs smaller than this.
RESNET50_MIN_SIZE = 32


def resnet50_reid(input_shape=(256, 128, 3), embedding_dim=1024, dropout_rate=0.5, weights=None):
    """SphereReID's network D: ResNet-50, then GAP-BN-Dropout-FC-BN-L2.

    The trunk is `keras.applications.ResNet50` without its top, nested as a
    layer named "resnet50" (so ImageNet weights can be loaded into it). Its
    2048-d globally average-pooled features go through batch norm, dropout,
    a fully connected layer and batch norm, and the result is L2-normalised
    (the paper's network D) to lie on the hypersphere that the
    Sphere Softmax loss assumes.

    Parameters at 256x128x3 with a 1024-d embedding: 25,698,176 (25,638,912
    trainable).

    Args:
        input_shape: image shape (height, width, channels), already
            normalised, at least 32x32. Defaults to `(256, 128, 3)`, the
            paper's training crop.
        embedding_dim: size of the embedding. Defaults to `1024` (paper).
        dropout_rate: fraction dropped before the fully connected layer.
            Defaults to `0.5` (paper).
        weights: `None` or a local `.weights.h5`/`.keras` file.

    Returns:
        A `keras.Model` from images to unit-length embeddings.

    Reference:
    - [Fan et al., 2018](https://arxiv.org/abs/1807.00537)
    """
    where = "resnet50_reid"
    input_shape = check_input_shape(input_shape, where, min_size=RESNET50_MIN_SIZE)
    embedding_dim = check_embedding_dim(embedding_dim, where)
    dropout_rate = check_dropout_rate(dropout_rate, where)

    inputs = keras.Input(input_shape, name="image")
    trunk = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    x = trunk(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.BatchNormalization(name="bn_features")(x)
    x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    x = keras.layers.Dense(embedding_dim, name="fc")(x)
    x = keras.layers.BatchNormalization(name="bn_embedding")(x)
    outputs = keras.layers.UnitNormalization(name="embedding")(x)
    model = keras.Model(inputs, outputs, name="resnet50_reid")
    return load_weights(model, weights)
