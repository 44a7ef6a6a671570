"""Heads on scaled cosines: NormFace, CosFace, ArcFace and the combined margin."""

import math

import keras
from keras import ops

from kerasface.heads.base import CosineMarginHead, safe_arccos


def combined_margin(cosine, m1=1.0, m2=0.0, m3=0.0):
    """cos(m1 theta + m2) - m3, kept monotonic in theta (insightface).

    Where `m1 theta + m2` would pass pi (theta > theta_max = (pi - m2) / m1),
    the logit becomes `cos(theta) - m3 - p` with `d = pi - theta_max` and
    `p = max(d sin(d), 1 - cos(d))`. For ArcFace (m1 = 1, d = m2) and any
    `d <= 2.33` that is insightface's `cos(theta) - m sin(m)`
    (recognition/arcface_torch/losses.py); the `1 - cos(d)` floor, which
    takes over only at larger `d` (e.g. m1 = 4), keeps the logit from
    jumping up at theta_max, so it never increases with the angle.
    """
    theta = safe_arccos(cosine)
    theta_max = (math.pi - m2) / m1
    overshoot = math.pi - theta_max
    penalty = max(overshoot * math.sin(overshoot), 1.0 - math.cos(overshoot))
    inside = ops.cos(m1 * theta + m2) - m3
    beyond = cosine - m3 - penalty
    return ops.where(theta <= theta_max, inside, beyond)


def _check_margin(value, name, where, low=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise ValueError(f"{where}: {name} must be a finite number >= {low}. Received: {name}={value!r}")
    return float(value)


def nearest_class_cosine(num_classes):
    """-1/(C-1): the least possible cosine between a class centre and its nearest
    other centre, reached when the C centres form a regular simplex.

    A margin is only met by a sample on its class centre if the true class's
    logit there still exceeds this (the CosFace paper's bound
    `m <= C/(C-1)`, Wang et al. 2018, sec. 3.4); beyond it the loss cannot
    be brought down for any embedding.
    """
    return -1.0 / (num_classes - 1) if num_classes > 1 else -1.0


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
        margin: the additive cosine margin `m`, in `[0, C/(C-1)]` for `C`
            classes (CosFace, sec. 3.4: with a larger `m`, `1 - m` is below
            `-1/(C-1)`, so even a sample on its class centre is not classified
            correctly). `0` is NormFace. Defaults to `0.35`.

    Reference:
        - [Wang et al., 2018](https://arxiv.org/abs/1801.09414)
    """

    def __init__(self, num_classes, scale=64.0, margin=0.35, **kwargs):
        super().__init__(num_classes, scale=scale, **kwargs)
        where = type(self).__name__
        self.margin = _check_margin(margin, "margin", where)
        bound = 1.0 - nearest_class_cosine(self.num_classes)
        if self.margin > bound:
            raise ValueError(
                f"{where}: margin must lie in [0, num_classes/(num_classes-1)] = [0, {bound:.4g}] for "
                f"num_classes={self.num_classes}: beyond it the true class's logit cos(theta) - m stays below the "
                "nearest other class's even for an embedding on its class centre. "
                f"Received: margin={margin!r}"
            )

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
        margin: the additive angular margin `m`, in radians, in
            `[0, arccos(-1/(C-1))]` for `C` classes (pi for 2 classes, 1.68
            for 10, about pi/2 + 1/(C-1) for many: 1.5709 for 10k). A larger
            angle cannot be met even by an embedding on its class centre
            (`cos(m)` below `-1/(C-1)`, the nearest other centre's cosine at
            best); a margin in degrees (28.65 for 0.5 rad) is always refused.
            Defaults to `0.5`.

    Reference:
        - [Deng et al., 2019](https://arxiv.org/abs/1801.07698)
    """

    def __init__(self, num_classes, scale=64.0, margin=0.5, **kwargs):
        super().__init__(num_classes, scale=scale, **kwargs)
        where = type(self).__name__
        bound = math.acos(nearest_class_cosine(self.num_classes))
        value = _check_margin(margin, "margin", where)
        if value > bound:
            raise ValueError(
                f"{where}: margin is an angle in radians and must lie in [0, arccos(-1/(num_classes-1))] = "
                f"[0, {bound:.4g}] for num_classes={self.num_classes} (ArcFace's 0.5 rad is 28.6 degrees): "
                "a larger angle cannot be met even by an embedding on its class centre. "
                f"Received: margin={margin!r}"
            )
        self.margin = value

    def target_logit(self, cosine):
        return combined_margin(cosine, m2=self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="kerasface")
class CombinedMargin(CosineMarginHead):
    """The combined margin `s (cos(m1 theta_y + m2) - m3)` of insightface.

    `(1, 0.5, 0)` is ArcFace, `(1, 0, 0.35)` CosFace, `(m, 0, 0)` a
    SphereFace-like multiplicative margin without annealing.

    The margins penalise the true class (its logit is at most `s cos(theta)`)
    and keep its logit non-increasing in theta (`combined_margin`) when
    `m1 >= 1`, `0 <= m2 < pi` and `m3 >= 0`; and the margin can be met
    (by an embedding on its class centre) only if `cos(m2) - m3 >=
    -1/(C-1)` for `C` classes (see `nearest_class_cosine`). Other values
    raise `ValueError`.

    Args:
        num_classes: number of identities.
        scale: `s`. Defaults to `64.0`.
        m1: multiplicative angular margin, >= 1 (`m1 < 1` would raise the
            logit of small angles: a bonus). Defaults to `1.0`.
        m2: additive angular margin in radians, in [0, pi). Defaults to `0.5`.
        m3: additive cosine margin, >= 0. Defaults to `0.0`.

    Reference:
        - [Deng et al., 2019](https://arxiv.org/abs/1801.07698), section 2.2
    """

    def __init__(self, num_classes, scale=64.0, m1=1.0, m2=0.5, m3=0.0, **kwargs):
        super().__init__(num_classes, scale=scale, **kwargs)
        where = type(self).__name__
        self.m1 = _check_margin(m1, "m1", where)
        if self.m1 < 1:
            raise ValueError(
                f"{where}: m1 must be >= 1: with m1 < 1, cos(m1 theta) > cos(theta) rewards small angles "
                f"instead of penalising them. Received: m1={m1!r}"
            )
        self.m2 = _check_margin(m2, "m2", where)
        if self.m2 >= math.pi:
            raise ValueError(f"{where}: m2 is an angle in radians and must lie in [0, pi). Received: m2={m2!r}")
        self.m3 = _check_margin(m3, "m3", where)
        floor = nearest_class_cosine(self.num_classes)
        if math.cos(self.m2) - self.m3 < floor:
            raise ValueError(
                f"{where}: m2 (radians) and m3 together are too large for num_classes={self.num_classes}: "
                f"the true class's best logit cos(m2) - m3 = {math.cos(self.m2) - self.m3:.4g} is below "
                f"-1/(num_classes-1) = {floor:.4g}, so the margin cannot be met even by an embedding on its "
                f"class centre. Received: m2={m2!r}, m3={m3!r}"
            )

    def target_logit(self, cosine):
        return combined_margin(cosine, self.m1, self.m2, self.m3)

    def get_config(self):
        return {**super().get_config(), "m1": self.m1, "m2": self.m2, "m3": self.m3}
