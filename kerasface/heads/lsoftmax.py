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
    `||W_y|| ||x|| (lambda cos(theta_y) + psi(theta_y)) / (1 + lambda)`, with
    `psi(theta) = (-1)^k cos(m theta) - 2k`, `k = floor(m theta / pi)`, and
    `lambda = max(lambda_min, lambda_base * (1 + lambda_gamma * t) ** -lambda_power)`
    at training step `t = 1, 2, ...`. As in the reference Caffe layers
    (wy1iu/LargeMargin_Softmax_Loss, src/caffe/layers/largemargin_inner_product_layer.cpp,
    and wy1iu/sphereface's margin_inner_product_layer.cpp), `Forward` first
    advances its counter and then computes lambda, so the first training step
    uses `lambda(1)`. `iteration` is that counter, a non-trainable weight that
    counts the training calls with labels (checkpoints carry it); Caffe starts
    it from the `iteration` parameter, here 0 unless a restored weight says
    otherwise.

    The defaults are the L-Softmax release's CIFAR-10 setting
    (myexamples/cifar10/model/cifar_train_test.prototxt: `type: DOUBLE`,
    `base: 1000`, `gamma: 0.00002`, `power: 45`, `lambda_min` left at its
    default 0): lambda is 999.1 at the first step, 13.7 at step 5000, 1 near
    step 8300 and below 0.001 by step 20000. Its MNIST example (myexamples/mnist/model/mnist_train_test.prototxt)
    uses `margin=4, lambda_gamma=2.5e-5, lambda_power=35`; CIFAR-10+ uses
    `lambda_gamma=1e-5`. The logits carry no fixed scale, so there is no
    `scale` argument.

    Args:
        num_classes: number of identities.
        margin: the integer angular multiplier `m >= 1`; `psi(theta) <=
            cos(theta)` and decreases on [0, pi] for every such `m`, with
            equality (no margin) at `m = 1`. Defaults to `2`.
        lambda_base: `base`, lambda at step 0. Defaults to `1000.0`.
        lambda_gamma: `gamma`, >= 0. Defaults to `2e-5`.
        lambda_power: `power`, >= 0. Defaults to `45.0`.
        lambda_min: the floor of lambda, >= 0. Defaults to `0.0`.
            `lambda_base=0` and `lambda_min=0` give the pure margin.
        **kwargs: see `CosineMarginHead` (`sample_rate`, `seed`) and `Head`.

    Reference:
        - [Liu et al., 2016](https://arxiv.org/abs/1612.02295)
    """

    def __init__(
        self,
        num_classes,
        margin=2,
        lambda_base=1000.0,
        lambda_gamma=2e-5,
        lambda_power=45.0,
        lambda_min=0.0,
        **kwargs,
    ):
        where = type(self).__name__
        if "scale" in kwargs:
            raise ValueError(
                f"{where} takes no scale: its logits are scaled by the embedding's norm "
                "(L-Softmax: times the class weight's norm). For a fixed scale s use NormFace, CosFace, "
                f"ArcFace or CombinedMargin (m1 for a multiplicative margin). Received: scale={kwargs['scale']!r}"
            )
        super().__init__(num_classes, **kwargs)
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
        """lambda at step `iteration`; by default the counter's current value,
        which after a training call is the lambda that call used."""
        if iteration is None:
            iteration = self.iteration
        iteration = ops.cast(iteration, "float32")
        # base (1 + gamma t)^-power, with log1p accurate for the small gamma t of L-Softmax.
        decayed = self.lambda_base * ops.exp(-self.lambda_power * ops.log1p(self.lambda_gamma * iteration))
        return ops.maximum(self.lambda_min, decayed)

    def head_logits(self, embeddings, labels):
        if labels is not None:
            # Caffe's Forward: `iter_ += 1` first, then lambda from the new count.
            self.iteration.assign_add(1)
        return super().head_logits(embeddings, labels)

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
    `||x|| cos(theta_j)`, and `||x|| (lambda cos(theta_y) + psi(theta_y)) / (1 + lambda)`
    for the true class. The defaults are the official training setting
    (wy1iu/sphereface, train/code/sphereface_model.prototxt:
    `type: QUADRUPLE`, `base: 1000`, `gamma: 0.12`, `power: 1`,
    `lambda_min: 5`, `iteration: 0`), with lambda computed after the counter
    advances, as in its margin_inner_product_layer.cpp: 892.9 at the first
    step, 5 from step 1659 on. No `scale` argument: the embedding norm is the
    scale.

    Args:
        num_classes: number of identities.
        margin: the integer angular multiplier `m >= 1`. Defaults to `4`.
        lambda_base, lambda_gamma, lambda_power, lambda_min: the annealing,
            see `LSoftmax`. Default to `1000.0, 0.12, 1.0, 5.0`.

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
