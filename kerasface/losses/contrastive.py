import keras
from keras import ops

from kerasface.losses.base import FunctionLoss


def contrastive_loss(same, distances, margin=1.0):
    """Contrastive loss (Hadsell et al. 2006): `y d^2 + (1 - y) max(m - d, 0)^2`.

    `same` is 1 for a pair of one identity, 0 otherwise; `distances` are the
    pair distances. Returns the per-pair losses.
    """
    distances = ops.cast(distances, "float32")
    same = ops.cast(same, "float32")
    return same * ops.square(distances) + (1.0 - same) * ops.square(ops.maximum(margin - distances, 0.0))


@keras.saving.register_keras_serializable(package="kerasface")
class ContrastiveLoss(FunctionLoss):
    """`contrastive_loss` as a `Loss`, called as `loss(same, distances)`.

    Args:
        margin: the distance beyond which different pairs cost nothing. Defaults to `1.0`.

    Reference:
        - [Hadsell et al., 2006](http://yann.lecun.com/exdb/publis/pdf/hadsell-chopra-lecun-06.pdf)
    """

    fn = staticmethod(contrastive_loss)

    def __init__(self, margin=1.0, reduction="sum_over_batch_size", name="contrastive_loss"):
        if margin < 0:
            raise ValueError(f"ContrastiveLoss: margin must be >= 0. Received: margin={margin}")
        super().__init__(reduction, name, margin=float(margin))
