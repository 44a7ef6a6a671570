"""Training beyond one device.

TensorFlow: build and fit inside a `tf.distribute` strategy's scope; the
centre loss and `gather=True` triplet losses see the global batch through
the cross-replica helpers here, and `train_on_workers` trains under
`MultiWorkerMirroredStrategy`, where Keras 3's `fit` does not run.
JAX: `keras.distribution.DataParallel`, or `head_parallel_layout` for a
head sharded by class. See docs/distributed.md.
"""

from kerasface.distribute.layouts import head_parallel_layout
from kerasface.distribute.replicas import all_gather, all_reduce_sum, num_replicas, replica_context, scale_for_replicas
from kerasface.distribute.workers import train_on_workers

__all__ = [
    "all_gather",
    "all_reduce_sum",
    "head_parallel_layout",
    "num_replicas",
    "replica_context",
    "scale_for_replicas",
    "train_on_workers",
]
