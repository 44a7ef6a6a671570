"""Train a tiny embedding network with an ArcFace head on random data.

Run: python examples/heads_quickstart.py
"""

import keras
import numpy as np

from kerasface import heads

num_classes, dim = 10, 16
images = keras.Input((32,), name="features")
labels = keras.Input((), dtype="int32", name="labels")
embeddings = keras.layers.Dense(dim)(keras.layers.Dense(64, activation="relu")(images))
logits = heads.ArcFace(num_classes, scale=16.0, margin=0.3)([embeddings, labels])
model = keras.Model([images, labels], logits)
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))

rng = np.random.default_rng(0)
y = rng.integers(0, num_classes, 512)
x = rng.normal(size=(num_classes, 32))[y] + 0.3 * rng.normal(size=(512, 32))
history = model.fit([x, y], y, epochs=5, batch_size=64, verbose=0)
print("loss per epoch:", np.round(history.history["loss"], 3))
