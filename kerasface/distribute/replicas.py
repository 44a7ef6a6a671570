"""Cross-replica sums and gathers for `tf.distribute`; no-ops everywhere else.

Under a `tf.distribute` strategy (TensorFlow backend) each replica runs the
training step on its own slice of the global batch. Anything that must see
the whole batch (the centre-loss update, triplet mining) goes through these
helpers. With one replica, and on JAX, where `keras.distribution` computes on
global arrays, they return their input unchanged.
"""

import keras


def replica_context():
    """The TensorFlow replica context when more than one replica trains, else `None`."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def all_reduce_sum(x):
    """`x` summed over all replicas (every replica gets the sum)."""
    context = replica_context()
    return x if context is None else context.all_reduce("sum", x)


def all_gather(x):
    """Every replica's `x`, concatenated along axis 0 in replica order.

    Gradients flow back to each replica's own slice.
    """
    context = replica_context()
    return x if context is None else context.all_gather(x, axis=0)


def num_replicas():
    """Replicas of the current `tf.distribute` strategy (1 without one, and on JAX)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def scale_for_replicas(loss):
    """`loss / num_replicas()`, as Keras scales a `Loss`'s mean under `tf.distribute`.

    Gradients are summed over replicas; a per-replica mean divided by the
    number of replicas sums to the mean over the global batch.
    """
    replicas = num_replicas()
    return loss if replicas == 1 else loss / replicas
