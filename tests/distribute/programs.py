"""The training runs the distribution tests compare, one process each.

Run as `python -m tests.distribute.programs MODE OUT_DIR`. The devices
(logical CPUs, XLA host devices, `TF_CONFIG`) are set before TensorFlow or
JAX starts its runtime, which is why each mode needs a fresh interpreter. A run writes
`OUT_DIR/<run>.npz`: the weights after training, keyed by variable path
(`head/kernel`, `center_loss/centers`, ...), and `loss`, the running mean of
the loss that Keras logs after each step.
"""

import json
import os
import sys
from pathlib import Path

import keras
import numpy as np

from kerasface import zoo

GLOBAL_BATCH = 16
STEPS = 2  # semi-hard mining on 2-d features is chaotic: float noise flips a negative by step 3
NUM_CLASSES = 6  # a multiple of the device count, for the class-sharded head
TRIPLET_MARGIN = 0.5
# Run name -> (recipe, overrides). "center" has the centre loss and the
# annealed SphereFace counter; the triplet runs are FaceNet's semi-hard loss.
RUNS = {
    "center": ("lenetpp_sphereface", {"center_loss_weight": 0.01}),
    "triplet": ("lenetpp_softmax", {"metric_loss": "triplet_semihard", "metric_loss_args": {"margin": TRIPLET_MARGIN}}),
    "triplet_gather": (
        "lenetpp_softmax",
        {"metric_loss": "triplet_semihard", "metric_loss_args": {"margin": TRIPLET_MARGIN, "gather": True}},
    ),
}


def toy_data(n=GLOBAL_BATCH * STEPS, seed=0):
    """28x28 grey images with a bright band per class, labels shuffled."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % NUM_CLASSES)
    images = rng.uniform(0, 60, (n, 28, 28, 1))
    rows = 28 // NUM_CLASSES
    for i, label in enumerate(labels):
        images[i, label * rows : (label + 1) * rows] += 180
    return images.astype("uint8"), labels


def per_replica_semihard(labels, embeddings):
    """What two replicas mining on their own halves compute, on one device."""
    from kerasface.losses import triplet_semihard_loss

    half = GLOBAL_BATCH // 2
    first = triplet_semihard_loss(labels[:half], embeddings[:half], TRIPLET_MARGIN)
    second = triplet_semihard_loss(labels[half:], embeddings[half:], TRIPLET_MARGIN)
    return (first + second) / 2


def build(run, loss="auto"):
    name, overrides = RUNS[run]
    keras.utils.set_random_seed(0)
    model = zoo.build(name, num_classes=NUM_CLASSES, **overrides)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), loss=loss)
    return model


class LossLog(keras.callbacks.Callback):
    """Records the logged loss after every training step."""

    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def train(model, path):
    """`STEPS` steps of `GLOBAL_BATCH` images; saves the weights and the logged losses."""
    images, labels = toy_data()
    log = LossLog()
    model.fit(images, labels, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[log])
    save(model, path, loss=np.array(log.losses))


def save(model, path, **extra):
    np.savez(path, **{v.path: np.asarray(v) for v in model.weights}, **extra)


def load_weights(model, path):
    with np.load(path) as saved:
        for variable in model.weights:
            variable.assign(saved[variable.path])


def two_cpu_strategy():
    """MirroredStrategy over the CPU split into two logical devices."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def worker_index():
    return json.loads(os.environ["TF_CONFIG"])["task"]["index"]


def global_batches(images, labels, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def mirrored(out):
    """Each run on one device, then under MirroredStrategy on two logical CPUs, from the same weights."""
    strategy = two_cpu_strategy()
    for run in RUNS:
        model = build(run, loss=per_replica_semihard if run == "triplet" else "auto")
        save(model, out / f"{run}_initial.npz")
        train(model, out / f"{run}_one_device.npz")
        with strategy.scope():
            model = build(run)
        load_weights(model, out / f"{run}_initial.npz")
        train(model, out / f"{run}_mirrored.npz")
        if model.head is not None:
            iterations = [int(v.numpy()) for v in model.head.iteration.value.values]
            (out / f"{run}_mirrored.json").write_text(json.dumps({"iteration_per_replica": iterations}))
    replica_calls(strategy, out)


def replica_calls(strategy, out):
    """The centre update and the triplet losses called on each replica's half of a known batch."""
    import tensorflow as tf

    from kerasface.layers import CenterLoss
    from kerasface.losses import TripletSemiHardLoss

    rng = np.random.default_rng(2)
    inputs = {
        "embeddings": rng.normal(size=(GLOBAL_BATCH, 3)).astype("float32"),
        "labels": np.arange(GLOBAL_BATCH) % NUM_CLASSES,  # every class in both halves
        "centers": rng.normal(size=(NUM_CLASSES, 3)).astype("float32"),
    }
    half = GLOBAL_BATCH // 2

    def halves(array):
        return strategy.experimental_distribute_values_from_function(
            lambda context: array[context.replica_id_in_sync_group * half :][:half]
        )

    with strategy.scope():
        layer = CenterLoss(NUM_CLASSES, alpha=0.5, weight=1.0)
        layer.build([(None, 3), (None,)])
        layer.centers.assign(inputs["centers"])
    triplet = TripletSemiHardLoss(TRIPLET_MARGIN)
    gathered = TripletSemiHardLoss(TRIPLET_MARGIN, gather=True)

    @tf.function
    def step(embeddings, labels):
        return (
            layer.loss_and_update(embeddings, labels, training=True),
            triplet(labels, embeddings),
            gathered(labels, embeddings),
        )

    results = strategy.run(step, args=(halves(inputs["embeddings"]), halves(inputs["labels"])))
    per_replica = [np.stack([np.asarray(v) for v in strategy.experimental_local_results(r)]) for r in results]
    np.savez(
        out / "replica_calls.npz",
        **inputs,
        center_loss=per_replica[0],
        triplet=per_replica[1],
        triplet_gather=per_replica[2],
        centers_after=np.stack([v.numpy() for v in layer.centers.value.values]),
    )


def multi_worker(out):
    """One worker of a MultiWorkerMirroredStrategy cluster (`TF_CONFIG` set by the test)."""
    import tensorflow as tf

    from kerasface.distribute.workers import train_on_workers

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = build("center")
    load_weights(model, out / "center_initial.npz")
    logs = train_on_workers(model, global_batches(*toy_data(), GLOBAL_BATCH))
    save(model, out / f"center_worker{worker_index()}.npz", loss=np.array([entry["loss"] for entry in logs]))


def every_recipe(path, strategy, train_step):
    """One step of every zoo recipe at the zoo tests' small sizes; writes each recipe's loss to `path`."""
    from tests.zoo.test_zoo import tiny, toy_images

    losses = {}
    for name in zoo.names():
        with strategy.scope():
            model = tiny(name)
        images, labels = toy_images(4, model.input_shape_hw)
        losses[name] = train_step(model, images, labels)
    path.write_text(json.dumps(losses))


def every_recipe_mirrored(out):
    def fit_step(model, images, labels):
        return model.fit(images, labels, batch_size=len(images), verbose=0).history["loss"][0]

    every_recipe(out / "every_recipe_mirrored.json", two_cpu_strategy(), fit_step)


def every_recipe_workers(out):
    import tensorflow as tf

    from kerasface.distribute import train_on_workers

    def worker_step(model, images, labels):
        return train_on_workers(model, global_batches(images, labels, len(images)))[0]["loss"]

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    every_recipe(out / f"every_recipe_worker{worker_index()}.json", strategy, worker_step)


def jax(out):
    """One device, `DataParallel` and the class-sharded head on two XLA host devices (`XLA_FLAGS` set by the test).

    Saves the head-parallel model as `.keras` with its embeddings of `toy_data(8, seed=1)`.
    """
    from kerasface.distribute import head_parallel_layout

    distributions = {
        "one_device": None,
        "data_parallel": keras.distribution.DataParallel(),
        "head_parallel": head_parallel_layout(NUM_CLASSES),
    }
    for name, distribution in distributions.items():
        keras.distribution.set_distribution(distribution)
        model = build("center")
        if distribution is None:
            save(model, out / "jax_center_initial.npz")
        else:
            load_weights(model, out / "jax_center_initial.npz")
        train(model, out / f"jax_center_{name}.npz")
    shards = {
        "devices": len(keras.distribution.list_devices()),
        "head_kernel": model.head.kernel.value.sharding.shard_shape(model.head.kernel.shape),
        "centers": model.center_loss.centers.value.sharding.shard_shape(model.center_loss.centers.shape),
    }
    (out / "jax_shards.json").write_text(json.dumps(shards))
    model.save(out / "jax_head_parallel.keras")
    probe = toy_data(8, seed=1)[0]
    np.save(out / "jax_embeddings.npy", model.predict(probe, verbose=0))


MODES = {
    "mirrored": mirrored,
    "multi_worker": multi_worker,
    "jax": jax,
    "every_recipe_mirrored": every_recipe_mirrored,
    "every_recipe_workers": every_recipe_workers,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](Path(sys.argv[2]))
