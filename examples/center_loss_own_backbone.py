"""Add centre loss (and a margin head) to a backbone of your own.

    python examples/center_loss_own_backbone.py
"""

import keras
import numpy as np

from kerasface import heads, layers
from kerasface.zoo import FaceModel


def my_backbone(input_shape=(32, 32, 3), embedding_dim=64):
    images = keras.Input(input_shape)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(images)
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Dense(embedding_dim)(x), name="my_backbone")


def main(num_classes=10, steps=20, batch_size=32):
    model = FaceModel(
        my_backbone(),
        head=heads.CosFace(num_classes, scale=30.0, margin=0.2),
        center_loss=layers.CenterLoss(num_classes, alpha=0.5, weight=0.01),
    )
    model.compile(keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, num_classes, steps * batch_size)
    images = (rng.uniform(0, 255, (num_classes, 32, 32, 3))[labels] * 0.8 + rng.uniform(0, 50, (len(labels), 32, 32, 3)))
    history = model.fit(images.astype("uint8"), labels, batch_size=batch_size, epochs=3, verbose=0)
    print("loss per epoch:", [round(v, 3) for v in history.history["loss"]])
    return model, history


if __name__ == "__main__":
    main()
