"""Input checks shared by the layers and losses.

Keras traces `call` into a graph (TensorFlow) or a jitted function (JAX), where
values are unknown. Checks on values therefore run whenever the values are
concrete (eager calls, `run_eagerly=True`, `model.predict` on NumPy inputs in
eager mode), and the caller decides what a traced call does instead.
"""

import numpy as np
from keras import backend


def concrete_value(x):
    """Returns `x` as a NumPy array when its values are known, else `None`."""
    if isinstance(x, (np.ndarray, np.generic, int, float, list, tuple)):
        return np.asarray(x)
    if backend.is_keras_tensor(x):
        return None
    name = backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly() or not hasattr(x, "numpy"):
            return None
        return x.numpy()
    if name == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
        return np.asarray(x)
    if name == "torch":
        return x.detach().cpu().numpy()
    return None


def _label_message(where, num_classes):
    """The label error's text, up to the offending value."""
    return (
        f"{where}: labels must lie in [0, num_classes) = [0, {num_classes}) and be whole class indices. "
        "Received: label="
    )


def _label_error(where, num_classes, value):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{_label_message(where, num_classes)}{value}"


def check_labels(labels, num_classes, where):
    """Raises `ValueError` if concrete `labels` fall outside [0, num_classes)."""
    values = concrete_value(labels)
    if values is None or values.size == 0:
        return
    bad = (values < 0) | (values >= num_classes)
    if np.issubdtype(values.dtype, np.floating):
        bad |= ~np.isfinite(values) | (values != np.round(values))
    if np.any(bad):
        value = values.reshape(-1)[np.argmax(bad.reshape(-1))].item()
        raise ValueError(_label_error(where, num_classes, value))


def assert_labels_in_range(labels, num_classes, where, *after):
    """Stops the run on labels outside [0, num_classes), also inside a traced step.

    Concrete labels (eager calls) raise `ValueError` at once. In a traced call
    the check is part of the graph, so the first bad batch of `fit` fails
    with the same message, naming the first offending label:
    - TensorFlow (`tf.function`): a `tf.debugging.Assert`, raised as
      `InvalidArgumentError`. XLA compiles no strings and drops asserts, so
      under `jit_compile=True` (Keras' default on a GPU) a bad label turns
      the floating tensors of `after` into NaN instead: the loss is NaN and
      `FaceModel`'s `StopOnNaN` stops training at that step.
    - JAX (`jax.jit`): a `jax.debug.callback` that raises `ValueError`, run
      only when a label is bad (`lax.cond`); JAX raises it as a
      `JaxRuntimeError` whose message holds the `ValueError`'s.
    Symbolic Keras tensors (building a functional model) pass unchecked.

    Args:
        labels: class indices, any shape, integer or float.
        num_classes: the number of classes.
        where: the name the message starts with.
        *after: tensors to be used only after the check. On TensorFlow the
            labels and these come back tied to the assert, so that what is
            computed from them (a loss that ignores the labels too) waits for
            it rather than failing first with a message of its own.

    Returns:
        `labels`, or `(labels, *after)` when `after` is given.
    """
    checked = (labels, *after)
    values = None if backend.is_keras_tensor(labels) else concrete_value(labels)
    if values is not None:
        check_labels(values, num_classes, where)
    elif not backend.is_keras_tensor(labels):
        name = backend.backend()
        if name == "tensorflow":
            checked = _tf_assert_labels(checked, num_classes, where)
        elif name == "jax":
            _jax_check_labels(labels, num_classes, where)
    return checked if after else checked[0]


def _tf_assert_labels(tensors, num_classes, where):
    import tensorflow as tf
    from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext

    flat = tf.reshape(tf.convert_to_tensor(tensors[0]), [-1])
    bad = tf.logical_or(flat < 0, flat >= tf.cast(num_classes, flat.dtype))
    if flat.dtype.is_floating:
        bad = tf.logical_or(bad, tf.logical_not(tf.equal(flat, tf.floor(flat))))
    if GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()):
        poison = tf.where(tf.reduce_any(bad), float("nan"), 1.0)
        return (tensors[0], *(t * tf.cast(poison, t.dtype) if t.dtype.is_floating else t for t in tensors[1:]))
    # A padded `False` keeps argmax defined on an empty batch.
    first = tf.argmax(tf.cast(tf.concat([bad, [False]], 0), tf.int32), output_type=tf.int32)
    value = tf.concat([flat, tf.zeros([1], flat.dtype)], 0)[first]
    template = _label_message(where, num_classes).replace("{", "{{").replace("}", "}}") + "{}"
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(bad)),
        [tf.strings.format(template, value)],
        name="assert_labels_in_range",
    )
    with tf.control_dependencies([check]):
        return tuple(tf.identity(tensor) for tensor in tensors)


def _raise_label_error(value, num_classes, where):
    raise ValueError(_label_error(where, num_classes, np.asarray(value).item()))


def _jax_check_labels(labels, num_classes, where):
    import functools

    import jax
    import jax.numpy as jnp

    flat = jnp.ravel(jnp.asarray(labels))
    if flat.size == 0:
        return
    bad = (flat < 0) | (flat >= num_classes)
    if jnp.issubdtype(flat.dtype, jnp.floating):
        bad = bad | (flat != jnp.floor(flat))
    report = functools.partial(_raise_label_error, num_classes=num_classes, where=where)
    jax.lax.cond(
        jnp.any(bad),
        lambda value: jax.debug.callback(report, value),
        lambda value: None,
        flat[jnp.argmax(bad)],
    )


def check_finite(x, where):
    """Raises `ValueError` if concrete `x` holds NaN or infinity."""
    values = concrete_value(x)
    if values is not None and not np.all(np.isfinite(values)):
        bad = np.argwhere(~np.isfinite(values))[:3].tolist()
        raise ValueError(
            f"{where}: embeddings contain NaN or infinity, first at indices {bad}."
        )


def check_rank(shape, rank, where, name="embeddings"):
    if shape is not None and len(shape) != rank:
        raise ValueError(
            f"{where}: expected {name} of rank {rank} (batch, dim). "
            f"Received shape {tuple(shape)}."
        )


def check_positive_int(value, name, where):
    """Returns `value` as an int if it is a whole number >= 1, else raises."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where}: {name} must be a positive integer. Received: {name}={value!r}")
    if float(value) != int(value) or int(value) < 1:
        raise ValueError(f"{where}: {name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


def check_non_negative(value, name, where):
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0. Received: {name}={value!r}")
    return float(value)
