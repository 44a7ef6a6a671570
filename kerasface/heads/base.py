"""The base classes every classification head shares."""

import math

import keras
from keras import ops

from kerasface._checks import check_finite, check_labels, check_positive_int, check_rank

# Gradients of arccos are infinite at +-1; inside this band the angle is
# exact but its gradient is taken as zero (theta is not differentiable there).
_ARCCOS_EPS = 1e-6


def safe_arccos(cosine):
    """arccos with exact values on [-1, 1] and finite gradients everywhere."""
    exact = ops.arccos(ops.clip(cosine, -1.0, 1.0))
    smooth = ops.arccos(ops.clip(cosine, -1.0 + _ARCCOS_EPS, 1.0 - _ARCCOS_EPS))
    return smooth + ops.stop_gradient(exact - smooth)


def split_inputs(inputs):
    """`head(x)` or `head([x, labels])` -> (x, labels or None)."""
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != 2:
            raise ValueError(
                "A head is called as head([embeddings, labels]) or head(embeddings). "
                f"Received a list of {len(inputs)} inputs."
            )
        return inputs[0], inputs[1]
    return inputs, None


class Head(keras.layers.Layer):
    """Common parts of every head: input parsing, checks and the class kernel.

    The kernel has shape `(embedding_dim, num_classes)`: one column per class.
    Heads always compute in float32, also under a mixed-precision policy,
    because margins on cosines near +-1 do not survive float16.

    Args:
        num_classes: number of identities, a positive integer.
        kernel_initializer: initializer of the class weights.
        kernel_regularizer: optional regularizer of the class weights.
        check_numerics: if `True`, NaN or infinite embeddings raise
            `ValueError` whenever their values are known (eager calls).
    """

    def __init__(
        self,
        num_classes,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        check_numerics=False,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.num_classes = check_positive_int(num_classes, "num_classes", type(self).__name__)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.check_numerics = bool(check_numerics)

    def build(self, input_shape):
        embeddings_shape = input_shape
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(
            input_shape[0], (list, tuple)
        ):
            embeddings_shape = input_shape[0]
        check_rank(embeddings_shape, 2, type(self).__name__)
        if embeddings_shape[-1] is None:
            raise ValueError(f"{type(self).__name__}: the embedding dimension must be known.")
        self.kernel = self.add_weight(
            name="kernel",
            shape=(embeddings_shape[-1], self.num_classes),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )

    def call(self, inputs, training=None):
        embeddings, labels = split_inputs(inputs)
        where = type(self).__name__
        check_rank(embeddings.shape, 2, where)
        if self.check_numerics:
            check_finite(embeddings, where)
        embeddings = ops.cast(embeddings, "float32")
        if labels is None or not training:
            return self.head_logits(embeddings, None)
        check_labels(labels, self.num_classes, where)
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        return self.head_logits(embeddings, labels)

    def head_logits(self, embeddings, labels):
        """Logits for float32 `embeddings`; `labels` is `None` for margin-free logits."""
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        embeddings_shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        return (embeddings_shape[0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "check_numerics": self.check_numerics,
        }


class CosineMarginHead(Head):
    """Base of the margin heads: cos(theta_j) between normalised x and W_j.

    A paper's head overrides `target_logit` (the margin applied to the cosine
    of the true class) and, where the paper scales differently from `s`,
    `scale_logits`. Without labels, or with `training=False`, the head returns
    the margin-free scaled cosines.

    Args:
        num_classes: number of identities.
        scale: the scale `s` that multiplies every cosine.
        **kwargs: see `Head`.
    """

    def __init__(self, num_classes, scale=1.0, **kwargs):
        super().__init__(num_classes, **kwargs)
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"{type(self).__name__}: scale must be > 0. Received: scale={scale}")
        self.scale = float(scale)

    def head_logits(self, embeddings, labels):
        embedding_norms = ops.norm(embeddings, axis=1, keepdims=True)
        kernel_norms = ops.norm(self.kernel, axis=0, keepdims=True)
        cosine = ops.matmul(
            embeddings / ops.maximum(embedding_norms, 1e-12),
            self.kernel / ops.maximum(kernel_norms, 1e-12),
        )
        if labels is not None:
            target_mask = ops.one_hot(labels, self.num_classes, dtype=cosine.dtype)
            target_cosine = ops.sum(cosine * target_mask, axis=1)
            change = self.target_logit(target_cosine) - target_cosine
            cosine = cosine + target_mask * ops.expand_dims(change, 1)
        return self.scale_logits(cosine, embedding_norms, kernel_norms)

    def target_logit(self, cosine):
        """The true class's cosine after the margin (identity: no margin)."""
        return cosine

    def scale_logits(self, logits, embedding_norms, kernel_norms):
        return logits * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
