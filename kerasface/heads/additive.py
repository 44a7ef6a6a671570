"""Heads on scaled cosines: NormFace, CosFace, ArcFace and the combined margin."""

import math

import keras
from keras import ops

from kerasface.heads.base import CosineMarginHead, safe_arccos


def combined_margin(cosine, m1=1.0, m2=0.0, m3=0.0):
    """cos(m1 theta + m2) - m3, kept monotonic in theta (insightface).

    Where `m1 theta + m2` would pass pi (theta > theta_max = (pi - m2) / m1),
    the margin is frozen at its first-order size there: the logit becomes
    `cos(theta) - m3 - d sin(d)` with `d = pi - theta_max`. For ArcFace
    (m1 = 1) that is insightface's `cos(theta) - m sin(m)`.
    """
    theta = safe_arccos(cosine)
    theta_max = (math.pi - m2) / m1
    overshoot = math.pi - theta_max
    inside = ops.cos(m1 * theta + m2) - m3
    beyond = cosine - m3 - overshoot * math.sin(overshoot)
    return ops.where(theta <= theta_max, inside, beyond)


def _check_margin(value, name, where, low=0.0):
    if not math.isfinite(value) or value < low:
        raise ValueError(f"{where}: {name} must be a finite number >= {low}. Received: {name}={value}")
    return float(value)


@keras.saving.register_keras_serializable(package="kerasface")
class NormFace(CosineMarginHead):
    """NormFace: `s cos(theta_j)` with no margin (the SphereReID sphere loss).

    Args:
        num_classes: number of identities.
        scale: `s`. Defaults to `16.0`.

    Reference:
        - [Wang et al., 2017](https://arxiv.org/abs/1704.06369)
        - [Fan et al., 2018](https://arxiv.org/abs/1807.00537)
    """

    def __init__(self, num_classes, scale=16.0, **kwargs):
        super().__init__(num_classes, scale=scale, **kwargs)


@keras.saving.register_keras_serializable(package="kerasface")
class CosFace(CosineMarginHead):
    """CosFace / AM-Softmax: the true class gets `s (cos(theta_y) - m)`.

    Args:
        num_classes: number of identities.
        scale: `s`. Defaults to `64.0`.
        margin: the additive cosine margin `m`. Defaults to `0.35`.

    Reference:
        - [Wang et al., 2018](https://arxiv.org/abs/1801.09414)
    """

    def __init__(self, num_classes, scale=64.0, margin=0.35, **kwargs):
        super().__init__(num_classes, scale=scale, **kwargs)
        self.margin = _check_margin(margin, "margin", type(self).__name__)

    def target_logit(self, cosine):
        return cosine - self.margin

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="kerasface")
class ArcFace(CosineMarginHead):
    """ArcFace: the true class gets `s cos(theta_y + m)` (m in radians).

    Beyond `theta_y = pi - m` the logit is `s (cos(theta_y) - m sin(m))`, so it
    keeps decreasing with the angle.

    Args:
        num_classes: number of identities.
        scale: `s`. Defaults to `64.0`.
        margin: the additive angular margin `m`, in radians. Defaults to `0.5`.

    Reference:
        - [Deng et al., 2019](https://arxiv.org/abs/1801.07698)
    """

    def __init__(self, num_classes, scale=64.0, margin=0.5, **kwargs):
        super().__init__(num_classes, scale=scale, **kwargs)
        self.margin = _check_margin(margin, "margin", type(self).__name__)

    def target_logit(self, cosine):
        return combined_margin(cosine, m2=self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="kerasface")
class CombinedMargin(CosineMarginHead):
    """The combined margin `s (cos(m1 theta_y + m2) - m3)` of insightface.

    `(1, 0.5, 0)` is ArcFace, `(1, 0, 0.35)` CosFace, `(m, 0, 0)` a
    SphereFace-like multiplicative margin without annealing.

    Args:
        num_classes: number of identities.
        scale: `s`. Defaults to `64.0`.
        m1: multiplicative angular margin. Defaults to `1.0`.
        m2: additive angular margin in radians. Defaults to `0.5`.
        m3: additive cosine margin. Defaults to `0.0`.

    Reference:
        - [Deng et al., 2019](https://arxiv.org/abs/1801.07698), section 2.2
    """

    def __init__(self, num_classes, scale=64.0, m1=1.0, m2=0.5, m3=0.0, **kwargs):
        super().__init__(num_classes, scale=scale, **kwargs)
        where = type(self).__name__
        self.m1 = _check_margin(m1, "m1", where)
        if self.m1 == 0:
            raise ValueError(f"{where}: m1 must be > 0. Received: m1={m1}")
        self.m2 = _check_margin(m2, "m2", where)
        self.m3 = _check_margin(m3, "m3", where)

    def target_logit(self, cosine):
        return combined_margin(cosine, self.m1, self.m2, self.m3)

    def get_config(self):
        return {**super().get_config(), "m1": self.m1, "m2": self.m2, "m3": self.m3}
