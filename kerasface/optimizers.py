"""Optimisers with the reference code's weight decay: an L2 term in the gradient.

Keras' `weight_decay` is *decoupled* (Loshchilov & Hutter, AdamW): the variable
shrinks by `learning_rate * weight_decay * w` beside the update, and momentum
never sees it. Caffe (`SGDSolver::Regularize`), PyTorch (`torch.optim.SGD`'s
`weight_decay`), insightface and davidsandberg/facenet (an L2 loss added under
Adam or Adagrad) all *couple* it: `wd * w` is added to the gradient before the
momentum or adaptive update. With momentum 0.9 the coupled term accumulates
about 10x stronger: at lr 0.1, wd 5e-4 and a zero gradient, 1,000 steps leave a
weight at 0.608 with the coupled rule and at 0.951 with Keras' decoupled one.

`SGD`, `Adam` and `Adagrad` here are Keras' with one more argument,
`l2_decay`, applied the coupled way (Keras' own `weight_decay` stays available
for AdamW-style recipes), and `l2_exclude`, regular expressions on variable
paths whose variables get no L2 term (Caffe's `decay_mult: 0`).

Update rules, with `g' = g + l2_decay * w` (excluded variables: `g' = g`):
- SGD (Caffe form, as Keras): `v <- momentum * v - lr * g'`, `w <- w + v`.
  PyTorch's `b <- momentum * b + g'`, `w <- w - lr * b` is the same rule
  while the learning rate is constant; at a learning-rate drop PyTorch's
  velocity is rescaled by the new rate, Caffe's (and this) is not.
- Adam and Adagrad: Keras' rules on `g'`, as an L2 loss added to the
  objective gives them (`tf.contrib.layers.l2_regularizer(wd)` adds
  `wd * sum(w^2) / 2`, whose gradient is `wd * w`).
"""

import re

import keras
from keras import ops


class CoupledL2Decay:
    """Mixin that adds `l2_decay * w` to each gradient before the update."""

    def __init__(self, *args, l2_decay=0.0, l2_exclude=(), **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(l2_decay, bool) or not isinstance(l2_decay, (int, float)) or not l2_decay >= 0:
            raise ValueError(f"{type(self).__name__}: l2_decay must be a number >= 0. Received: l2_decay={l2_decay!r}")
        if isinstance(l2_exclude, str):
            raise ValueError(
                f"{type(self).__name__}: l2_exclude must be a list of regular expressions, not one string. "
                f"Received: l2_exclude={l2_exclude!r}"
            )
        self.l2_decay = float(l2_decay)
        self.l2_exclude = tuple(l2_exclude)
        self._l2_patterns = [re.compile(pattern) for pattern in self.l2_exclude]

    def decays(self, variable):
        """Whether `variable` (matched by its path, e.g. `conv1/bias`) gets the L2 term."""
        path = getattr(variable, "path", variable.name)
        return self.l2_decay > 0 and not any(pattern.search(path) for pattern in self._l2_patterns)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self.l2_decay > 0:
            grads = [
                _dense(grad) + ops.cast(self.l2_decay, grad.dtype) * variable if self.decays(variable) else grad
                for grad, variable in zip(grads, trainable_variables)
            ]
        super()._backend_update_step(grads, trainable_variables, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2_decay": self.l2_decay, "l2_exclude": list(self.l2_exclude)}


def _dense(grad):
    """A sparse (IndexedSlices) gradient as a dense tensor: the L2 term touches every row."""
    if hasattr(grad, "indices") and hasattr(grad, "dense_shape"):
        import tensorflow as tf

        return tf.convert_to_tensor(grad)
    return grad


@keras.saving.register_keras_serializable(package="kerasface")
class SGD(CoupledL2Decay, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with Caffe / PyTorch weight decay (`l2_decay`, see the module).

    Args:
        momentum_style: `"caffe"` (Keras' and Caffe's rule, `v <- m v - lr g`,
            `w <- w + v`) or `"pytorch"` (`b <- m b + g`, `w <- w - lr b`, as
            `torch.optim.SGD`). They differ only while the learning rate
            changes, e.g. under arcface_torch's per-step polynomial decay.
            Defaults to `"caffe"`.
        **kwargs: `keras.optimizers.SGD`'s arguments, `l2_decay` and `l2_exclude`.
    """

    def __init__(self, *args, momentum_style="caffe", **kwargs):
        super().__init__(*args, **kwargs)
        if momentum_style not in MOMENTUM_STYLES:
            raise ValueError(
                f"SGD: momentum_style must be one of {MOMENTUM_STYLES}. Received: momentum_style={momentum_style!r}"
            )
        if momentum_style == "pytorch" and self.nesterov:
            raise ValueError("SGD: momentum_style='pytorch' is implemented without Nesterov. Received: nesterov=True")
        self.momentum_style = momentum_style

    def update_step(self, gradient, variable, learning_rate):
        if self.momentum_style == "caffe" or self.momentum == 0:
            return super().update_step(gradient, variable, learning_rate)
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self.momentums[self._get_variable_index(variable)]
        # torch: b = g at the first step, which m * 0 + g already is.
        self.assign(velocity, ops.add(ops.multiply(velocity, ops.cast(self.momentum, variable.dtype)), gradient))
        self.assign_sub(variable, ops.multiply(learning_rate, velocity))

    def get_config(self):
        return {**super().get_config(), "momentum_style": self.momentum_style}


MOMENTUM_STYLES = ("caffe", "pytorch")


@keras.saving.register_keras_serializable(package="kerasface")
class Adam(CoupledL2Decay, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with an L2 loss's gradient (`l2_decay`, see the module)."""


@keras.saving.register_keras_serializable(package="kerasface")
class Adagrad(CoupledL2Decay, keras.optimizers.Adagrad):
    """`keras.optimizers.Adagrad` with an L2 loss's gradient (`l2_decay`, see the module)."""


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adagrad": Adagrad}
