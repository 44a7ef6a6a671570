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


def check_labels(labels, num_classes, where):
    """Raises `ValueError` if concrete `labels` fall outside [0, num_classes)."""
    values = concrete_value(labels)
    if values is None or values.size == 0:
        return
    if np.issubdtype(values.dtype, np.floating) and not np.all(
        np.isfinite(values) & (values == np.round(values))
    ):
        raise ValueError(
            f"{where}: labels must be whole class indices. "
            f"Received non-integer labels such as {values[values != np.round(values)][:3]}"
        )
    low, high = values.min(), values.max()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{where}: labels must lie in [0, num_classes) = [0, {num_classes}). "
            f"Received labels from {low} to {high}."
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
