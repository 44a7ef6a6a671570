"""Tiny embedders made of the layers the kerasface backbones use."""

import keras
import numpy as np

INPUT_SHAPE = (32, 32, 3)
EMBEDDING_DIM = 16


def tiny_embedder(input_shape=INPUT_SHAPE, seed=0):
    """Rescaling, Conv/BN/PReLU, a depthwise residual, pooling, Dense and L2 norm.

    Batch-norm statistics and PReLU slopes are randomised so that none of
    them is an identity the converters could drop unnoticed.
    """
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1 / 128, offset=-127.5 / 128)(inputs)
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.PReLU(shared_axes=[1, 2])(x)
    shortcut = x
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Add()([x, shortcut])
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(16, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(EMBEDDING_DIM)(x)
    outputs = layers.UnitNormalization()(x)
    model = keras.Model(inputs, outputs, name="tiny_embedder")
    _randomise_statistics(model, np.random.default_rng(seed))
    return model


def _randomise_statistics(model, rng):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, size),
                    rng.normal(0, 0.1, size),
                    rng.normal(0, 0.2, size),
                    rng.uniform(0.5, 2.0, size),
                ]
            )
        elif isinstance(layer, keras.layers.PReLU):
            layer.set_weights([rng.uniform(0.05, 0.3, layer.alpha.shape)])
