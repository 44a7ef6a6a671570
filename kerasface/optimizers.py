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


def sampled_rows_unsupported(optimizer):
    """Why `apply_with_sampled_rows` can't take `optimizer`, or `None` if it can.

    The sampled-rows update writes out SGD's, Adam's and Adagrad's rules (with
    `l2_decay` and Keras' `weight_decay`); gradient clipping, moving averages,
    gradient accumulation and loss scaling act on all gradients at once and
    are left to the dense path.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return "a LossScaleOptimizer (mixed_float16) scales every gradient at once"
    if not isinstance(optimizer, tuple(_ROW_RULES)):
        return f"{type(optimizer).__name__} is not SGD, Adam or Adagrad"
    if getattr(optimizer, "amsgrad", False):
        return "Adam(amsgrad=True) keeps a running maximum not written out for rows"
    for option in ("clipnorm", "clipvalue", "global_clipnorm", "gradient_accumulation_steps"):
        if getattr(optimizer, option, None) is not None:
            return f"{option} acts on all gradients together"
    if optimizer.use_ema:
        return "use_ema averages every variable each step"
    return None


def apply_with_sampled_rows(optimizer, grads, variables, rows_variable, rows, row_gradients):
    """One optimiser step in which `rows_variable` moves only at `rows`.

    `grads` and `variables` go to `optimizer.apply` as usual. The rows
    `rows_variable[rows]` (distinct indices) and the same rows of its slots
    (momentum, Adam's moments, Adagrad's accumulator) take one step of the
    optimiser's rule with `row_gradients`; the other rows and their slots are
    not read or written: no weight decay, no momentum, as in arcface_torch's
    Partial FC (v1), which copies the sampled rows and their momentum into the
    optimiser and back (`partial_fc.py`, `prepare` and `update`). The rows
    step uses the learning rate and step count of this step, then
    `optimizer.apply` advances them once.

    Statefully on TensorFlow (in-place `scatter_update` of the variables);
    on JAX inside the caller's `StatelessScope`.
    """
    reason = sampled_rows_unsupported(optimizer)
    if reason:
        raise ValueError(f"apply_with_sampled_rows: {reason}. Received: optimizer={optimizer!r}")
    if not optimizer.built:
        raise ValueError(
            "apply_with_sampled_rows needs an optimizer built on every variable, rows_variable included "
            "(optimizer.build(model.trainable_variables)). Received: an unbuilt optimizer."
        )
    _update_rows(optimizer, rows_variable, rows, row_gradients)
    if variables:
        optimizer.apply(grads, variables)
    else:
        optimizer.iterations.assign_add(1)


def gather_rows(variable, rows):
    """`variable[rows]`; on TensorFlow read from the resource, without a read of the whole variable."""
    if keras.backend.backend() == "tensorflow":
        return variable.value.sparse_read(rows)
    return ops.take(variable, rows, axis=0)


def scatter_rows(variable, rows, values):
    """`variable[rows] = values`, in place: TensorFlow's `scatter_update`; on JAX a scatter
    that reuses the variable's buffer (donated when called eagerly, XLA's in a jitted step)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        variable.value.scatter_update(tf.IndexedSlices(values, rows))
        return
    import jax

    if isinstance(variable.value, jax.core.Tracer):
        variable.assign(variable.value.at[rows].set(values))
    else:
        variable.assign(_donated_row_update(variable.value, rows, values))


def _set_rows(array, rows, values):
    return array.at[rows].set(values)


def _donated_row_update(array, rows, values):
    import jax

    global _donated_row_update
    _donated_row_update = jax.jit(_set_rows, donate_argnums=0)
    return _donated_row_update(array, rows, values)


def _update_rows(optimizer, variable, rows, gradient):
    learning_rate = ops.cast(optimizer.learning_rate, variable.dtype)
    weights = gather_rows(variable, rows)
    gradient = ops.cast(gradient, variable.dtype)
    if optimizer.weight_decay is not None and optimizer._use_weight_decay(variable):
        # Keras' decoupled decay, applied before the update as `Optimizer.apply` does.
        weights = weights - weights * ops.cast(optimizer.weight_decay, variable.dtype) * learning_rate
    if isinstance(optimizer, CoupledL2Decay) and optimizer.decays(variable):
        gradient = gradient + ops.cast(optimizer.l2_decay, variable.dtype) * weights
    rule, slots = next((rule, slots) for kind, (rule, slots) in _ROW_RULES.items() if isinstance(optimizer, kind))
    index = optimizer._get_variable_index(variable)
    slot_variables = {name: getattr(optimizer, attribute)[index] for name, attribute in slots(optimizer).items()}
    state = {name: gather_rows(slot, rows) for name, slot in slot_variables.items()}
    weights, state = rule(optimizer, weights, gradient, learning_rate, state)
    scatter_rows(variable, rows, weights)
    for name, slot in slot_variables.items():
        scatter_rows(slot, rows, state[name])


def _sgd_rows(optimizer, w, g, lr, state):
    if optimizer.momentum == 0:
        return w - g * lr, state
    momentum = ops.cast(optimizer.momentum, w.dtype)
    if getattr(optimizer, "momentum_style", "caffe") == "pytorch":
        b = state["momentum"] * momentum + g
        return w - lr * b, {"momentum": b}
    v = state["momentum"] * momentum - g * lr
    step = v * momentum - g * lr if optimizer.nesterov else v
    return w + step, {"momentum": v}


def _adam_rows(optimizer, w, g, lr, state):
    local_step = ops.cast(optimizer.iterations + 1, w.dtype)
    beta_1, beta_2 = ops.cast(optimizer.beta_1, w.dtype), ops.cast(optimizer.beta_2, w.dtype)
    alpha = lr * ops.sqrt(1 - ops.power(beta_2, local_step)) / (1 - ops.power(beta_1, local_step))
    m = state["momentum"] + (g - state["momentum"]) * (1 - beta_1)
    v = state["velocity"] + (ops.square(g) - state["velocity"]) * (1 - beta_2)
    return w - m * alpha / (ops.sqrt(v) + optimizer.epsilon), {"momentum": m, "velocity": v}


def _adagrad_rows(optimizer, w, g, lr, state):
    accumulator = state["accumulator"] + ops.square(g)
    return w - lr * g / ops.sqrt(accumulator + optimizer.epsilon), {"accumulator": accumulator}


# Keras class -> (row rule, {state name: the optimizer's list of slot variables}).
_ROW_RULES = {
    keras.optimizers.SGD: (_sgd_rows, lambda opt: {"momentum": "momentums"} if opt.momentum != 0 else {}),
    keras.optimizers.Adam: (_adam_rows, lambda opt: {"momentum": "_momentums", "velocity": "_velocities"}),
    keras.optimizers.Adagrad: (_adagrad_rows, lambda opt: {"accumulator": "_accumulators"}),
}
