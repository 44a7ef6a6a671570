import keras

from kerasface.heads.base import Head, class_products


@keras.saving.register_keras_serializable(package="kerasface")
class Softmax(Head):
    """The plain linear classifier `x W^T + b`, the baseline of every paper.

    Labels are accepted (so every head is called the same way) and ignored.

    Args:
        num_classes: number of identities.
        use_bias: whether to add a per-class bias. Defaults to `True`.

    Example:
        >>> head = Softmax(10)
        >>> head([np.ones((2, 4)), np.array([0, 3])]).shape
        (2, 10)
    """

    def __init__(self, num_classes, use_bias=True, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        super().build(input_shape)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.num_classes,), initializer="zeros")

    def head_logits(self, embeddings, labels):
        logits = class_products(embeddings, self.kernel)
        return logits + self.bias if self.use_bias else logits

    def get_config(self):
        return {**super().get_config(), "use_bias": self.use_bias}
