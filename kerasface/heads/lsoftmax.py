"""L-Softmax and A-Softmax (SphereFace): multiplicative angular margins."""

import math

import keras
from keras import ops

from kerasface._checks import check_non_negative, check_positive_int
from kerasface.heads.base import CosineMarginHead, safe_arccos


def cos_multiple_angle(cosine, margin):
    """cos(m theta) as a polynomial of cos(theta) (finite gradients at +-1).

    cos(m t) = sum_n (-1)^n C(m, 2n) cos(t)^(m - 2n) (1 - cos(t)^2)^n.
    """
    sine_squared = 1.0 - cosine * cosine
    total = 0.0
    for n in range(margin // 2 + 1):
        term = (-1) ** n * math.comb(margin, 2 * n) * _power(cosine, margin - 2 * n)
        total = total + term * _power(sine_squared, n)
    return total


def _power(x, exponent):
    """x ** exponent by products (no 0 * x ** -1 in the gradient at x = 0)."""
    result = 1.0
    for _ in range(exponent):
        result = result * x
    return result


def angular_margin_psi(cosine, margin):
    """psi(theta) = (-1)^k cos(m theta) - 2k, k = floor(m theta / pi).

    Liu et al., ICML 2016, eq. 6: monotonically decreasing on [0, pi].
    """
    theta = ops.stop_gradient(safe_arccos(cosine))
    k = ops.clip(ops.floor(margin * theta / math.pi), 0.0, margin - 1.0)
    sign = 1.0 - 2.0 * ops.mod(k, 2.0)
    return sign * cos_multiple_angle(cosine, margin) - 2.0 * k


@keras.saving.register_keras_serializable(package="kerasface")
class LSoftmax(CosineMarginHead):
    """Large-margin softmax (L-Softmax), Liu et al., ICML 2016.

    Logits are `||W_j|| ||x|| cos(theta_j)`; the true class gets
    `||W_y|| ||x|| psi(theta_y)`, annealed as in the reference Caffe code:
    `(lambda cos(theta_y) + psi(theta_y)) / (1 + lambda)` with
    `lambda = max(lambda_min, lambda_base * (1 + lambda_gamma * iteration) ** -lambda_power)`.
    `iteration` is a non-trainable counter advanced once per training call,
    so a checkpoint carries the annealing state.

    Args:
        num_classes: number of identities.
        margin: the integer angular multiplier `m`. Defaults to `2`.
        lambda_base, lambda_gamma, lambda_power, lambda_min: the annealing.
            `lambda_base=0` and `lambda_min=0` give the pure margin.

    Reference:
        - [Liu et al., 2016](https://arxiv.org/abs/1612.02295)
    """

    def __init__(
        self,
        num_classes,
        margin=2,
        lambda_base=1000.0,
        lambda_gamma=0.12,
        lambda_power=1.0,
        lambda_min=0.0,
        **kwargs,
    ):
        super().__init__(num_classes, **kwargs)
        where = type(self).__name__
        self.margin = check_positive_int(margin, "margin", where)
        self.lambda_base = check_non_negative(lambda_base, "lambda_base", where)
        self.lambda_gamma = check_non_negative(lambda_gamma, "lambda_gamma", where)
        self.lambda_power = check_non_negative(lambda_power, "lambda_power", where)
        self.lambda_min = check_non_negative(lambda_min, "lambda_min", where)

    def build(self, input_shape):
        super().build(input_shape)
        self.iteration = self.add_weight(
            name="iteration",
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )

    def annealing_lambda(self, iteration=None):
        """lambda at `iteration` (defaults to the counter's current value)."""
        if iteration is None:
            iteration = self.iteration
        iteration = ops.cast(iteration, "float32")
        decayed = self.lambda_base * (1.0 + self.lambda_gamma * iteration) ** (-self.lambda_power)
        return ops.maximum(self.lambda_min, decayed)

    def head_logits(self, embeddings, labels):
        logits = super().head_logits(embeddings, labels)
        if labels is not None:
            self.iteration.assign_add(1)
        return logits

    def target_logit(self, cosine):
        lam = self.annealing_lambda()
        return (lam * cosine + angular_margin_psi(cosine, self.margin)) / (1.0 + lam)

    def scale_logits(self, logits, embedding_norms, kernel_norms):
        return logits * embedding_norms * kernel_norms

    def get_config(self):
        config = super().get_config()
        config.pop("scale")
        return {
            **config,
            "margin": self.margin,
            "lambda_base": self.lambda_base,
            "lambda_gamma": self.lambda_gamma,
            "lambda_power": self.lambda_power,
            "lambda_min": self.lambda_min,
        }


@keras.saving.register_keras_serializable(package="kerasface")
class SphereFace(LSoftmax):
    """A-Softmax (SphereFace), Liu et al., CVPR 2017.

    L-Softmax with the class weights normalised and no bias: logits are
    `||x|| cos(theta_j)`, and `||x|| psi(theta_y)` for the true class, with the
    same lambda annealing (the official code anneals to `lambda_min=5`).

    Reference:
        - [Liu et al., 2017](https://arxiv.org/abs/1704.08063)
    """

    def __init__(
        self,
        num_classes,
        margin=4,
        lambda_base=1000.0,
        lambda_gamma=0.12,
        lambda_power=1.0,
        lambda_min=5.0,
        **kwargs,
    ):
        super().__init__(
            num_classes,
            margin=margin,
            lambda_base=lambda_base,
            lambda_gamma=lambda_gamma,
            lambda_power=lambda_power,
            lambda_min=lambda_min,
            **kwargs,
        )

    def scale_logits(self, logits, embedding_norms, kernel_norms):
        return logits * embedding_norms


ASoftmax = SphereFace
