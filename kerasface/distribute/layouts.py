"""`keras.distribution` layouts for the JAX backend.

On JAX, `keras.distribution` places global arrays on a device mesh and XLA
partitions every step (GSPMD). Per-class sums of the centre loss and triplet
mining run on the global batch as written: no cross-replica code is needed.
"""

import keras


def head_parallel_layout(num_classes, devices=None, head="head", center_loss="center_loss"):
    """arcface_torch's model-parallel head as a `keras.distribution.ModelParallel`.

    The batch is split over `devices`, as in data parallelism, and so are the
    classes: each device holds `num_classes / len(devices)` rows of the
    head's kernel `(num_classes, embedding_dim)` (and the same rows of the
    centre-loss centres), like Partial FC without sampling. XLA gathers the
    embeddings for the logits and reduces the softmax across devices. The
    backbone is replicated.

    Set it before building the model, so that its variables are created sharded:

    ```python
    keras.distribution.set_distribution(head_parallel_layout(num_classes=10576))
    model = kerasface.zoo.build("sphereface20", num_classes=10576)
    model.fit(images, labels, batch_size=256)
    ```

    Args:
        num_classes: the head's number of classes; a multiple of the number
            of devices (pad with classes that have no images otherwise).
        devices: device names, as `keras.distribution.list_devices()` gives
            them. Defaults to all devices.
        head: the name of the head layer (`FaceModel`'s is `"head"`).
        center_loss: the name of the centre-loss layer.

    Reference:
        - [An et al., Partial FC, 2021](https://arxiv.org/abs/2010.05222)
    """
    if keras.backend.backend() != "jax":
        raise ValueError(
            "head_parallel_layout is a keras.distribution layout, which trains on the JAX backend; on "
            "TensorFlow use tf.distribute.MirroredStrategy or MultiWorkerMirroredStrategy. "
            f"Received: backend={keras.backend.backend()!r}"
        )
    devices = list(devices or keras.distribution.list_devices())
    if num_classes % len(devices):
        padded = -(-num_classes // len(devices)) * len(devices)
        raise ValueError(
            f"head_parallel_layout splits the classes evenly over {len(devices)} devices: num_classes must "
            f"be a multiple of {len(devices)} (e.g. {padded}, with classes that have no images). "
            f"Received: num_classes={num_classes}"
        )
    mesh = keras.distribution.DeviceMesh((len(devices),), axis_names=("batch",), devices=devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map[f"{head}/kernel"] = ("batch", None)
    layout_map[f"{center_loss}/centers"] = ("batch", None)
    return keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
