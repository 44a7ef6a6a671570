import keras


class FunctionLoss(keras.losses.Loss):
    """A loss function `fn(y_true, y_pred, **settings)` as a Keras `Loss`.

    Subclasses set `fn` and pass their settings; `get_config` returns them.
    """

    fn = None

    def __init__(self, reduction="sum_over_batch_size", name=None, **settings):
        super().__init__(reduction=reduction, name=name)
        self.settings = settings

    def call(self, y_true, y_pred):
        return type(self).fn(y_true, y_pred, **self.settings)

    def get_config(self):
        return {**super().get_config(), **self.settings}
