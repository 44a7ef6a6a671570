"""Value and gradients of a function of arrays, on the TensorFlow or JAX backend."""

import keras
import numpy as np


LOW_PRECISION = ("float16", "bfloat16")


def as_input(array):
    """float16 and bfloat16 arrays as they are (the tests feed what they name), others as float32."""
    array = np.asarray(array)
    return array if str(array.dtype) in LOW_PRECISION else array.astype("float32")


def value_and_grads(fn, *arrays):
    """fn(*tensors) -> (scalar, aux); returns (value, aux, grads) as NumPy.

    Each gradient has its array's dtype: float16 and bfloat16 inputs keep
    theirs, anything else is fed as float32.
    """
    arrays = [as_input(a) for a in arrays]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.Variable(a) for a in arrays]
        with tf.GradientTape() as tape:
            value, aux = fn(*tensors)
        grads = tape.gradient(value, tensors)
    elif backend == "jax":
        import jax

        (value, aux), grads = jax.value_and_grad(fn, argnums=tuple(range(len(arrays))), has_aux=True)(*arrays)
    else:
        raise NotImplementedError(backend)
    return float(value), keras.ops.convert_to_numpy(aux), [keras.ops.convert_to_numpy(g) for g in grads]


def head_loss_and_grads(head, embeddings, labels):
    """Mean cross-entropy of a head on (embeddings, labels), its logits, and the
    gradients of the loss to the embeddings and to the kernel."""
    if not head.built:
        head.build(embeddings.shape)
    non_trainable = [v.value for v in head.non_trainable_variables]

    def loss(x, kernel):
        trainable = [kernel if v is head.kernel else v.value for v in head.trainable_variables]
        logits, _ = head.stateless_call(trainable, non_trainable, [x, labels], training=True)
        ce = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        return keras.ops.mean(ce), logits

    value, logits, (grad_x, grad_kernel) = value_and_grads(
        loss, embeddings, keras.ops.convert_to_numpy(head.kernel)
    )
    return value, logits, grad_x, grad_kernel
