"""Partial FC training that reads and writes only the sampled rows of the head.

A Partial FC head (`CosineMarginHead(sample_rate<1)`) computes logits for a
sample of its classes, but through Keras' own `train_step` its kernel still
gets a dense `(num_classes, dim)` gradient (the gradient of a gather), and
the optimiser updates every row with it: momentum and weight decay make the
step as slow and large in memory as the full head's. `SampledRowsTraining`
is a `keras.Model` mixin whose `train_step` differentiates the sampled rows
alone (`head.sampled_rows_gradient`) and steps only those rows and their
optimiser slots (`kerasface.optimizers.apply_with_sampled_rows`), as
arcface_torch's Partial FC does: memory and time then scale with the sample.
Other variables train exactly as in Keras' `train_step`.

Where the sampled-rows step does not apply (a head without sampling, a
kernel regulariser, an optimiser whose rule is not written out for rows,
more than one replica, a backend other than TensorFlow or JAX), the model
trains with Keras' `train_step` and, for a sampling head, says so once.

Reference:
    - [An et al., Partial FC, CVPR 2022](https://arxiv.org/abs/2203.15565);
      insightface `recognition/arcface_torch/partial_fc.py`
"""

import warnings

import keras

from kerasface.heads.base import CosineMarginHead
from kerasface.optimizers import apply_with_sampled_rows, sampled_rows_unsupported


class SampledRowsTraining:
    """Mixin (before `keras.Model`) that trains a Partial FC head by its sampled rows only.

    The model must call its one sampling head once per training step with the
    labels (as `FaceModel.compute_loss` does through `logits_and_labels`).
    Rows outside a step's sample, and their optimiser slots, stay as they were.
    """

    def train_step(self, *args):
        head = self._sampled_rows_head()
        if head is None:
            return super().train_step(*args)
        if keras.backend.backend() == "jax":
            return self._jax_sampled_rows_step(head, *args)
        return self._tf_sampled_rows_step(head, *args)

    def _sampled_rows_head(self):
        """The sampling head if the sampled-rows step applies, else `None` (warned once for a sampling head)."""
        sampling = [
            layer
            for layer in self._flatten_layers()
            if isinstance(layer, CosineMarginHead) and layer.samples_classes and layer.kernel.trainable
        ]
        if not sampling:
            return None
        reason = _why_dense(self, sampling)
        if reason:
            warnings.warn(
                f"{self.name}: Partial FC trains with dense kernel gradients (every row updated each step, "
                f"as much memory as the full head) because {reason}.",
                stacklevel=3,
            )
            return None
        return sampling[0]

    def _zero_rows_delta(self, head):
        """The zero `delta` of `head.sampled_rows_gradient`: one row per sampled class."""
        return keras.ops.zeros((head.num_sampled, head.kernel.shape[1]), dtype=head.kernel.dtype)

    def _tf_sampled_rows_step(self, head, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        delta = self._zero_rows_delta(head)
        with tf.GradientTape() as tape:
            tape.watch(delta)
            with head.sampled_rows_gradient(delta) as sample:
                y_pred = self(x, training=True) if self._call_has_training_arg else self(x)
                loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            self._loss_tracker.update_state(loss, sample_weight=tf.shape(keras.tree.flatten(x)[0])[0])
            loss = self.optimizer.scale_loss(loss)
        if not self.optimizer.built:  # Keras builds it in the first `apply`, on every variable
            self.optimizer.build(self.trainable_variables)
        variables = [variable for variable in self.trainable_variables if variable is not head.kernel]
        *grads, row_gradients = tape.gradient(loss, variables + [delta])
        apply_with_sampled_rows(self.optimizer, grads, variables, head.kernel, sample.classes, row_gradients)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _jax_sampled_rows_step(self, head, state, data):
        import jax

        trainable, non_trainable, optimizer_values, metrics_values = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = list(self.trainable_variables)
        position = next(i for i, variable in enumerate(variables) if variable is head.kernel)
        kernel = trainable[position]

        def loss_and_sample(others, delta):
            values = [*others[:position], kernel, *others[position:]]
            with head.sampled_rows_gradient(delta) as sample:
                loss, aux = self.compute_loss_and_updates(
                    values,
                    non_trainable,
                    metrics_values,
                    x,
                    y,
                    sample_weight,
                    training=True,
                    optimizer_variables=optimizer_values,
                )
            return loss, (aux, sample.classes)

        others = trainable[:position] + trainable[position + 1 :]
        # The kernel is a constant here: JAX differentiates the other variables and the rows' delta only.
        (_, (aux, classes)), (grads, row_gradients) = jax.value_and_grad(
            loss_and_sample, argnums=(0, 1), has_aux=True
        )(others, self._zero_rows_delta(head))
        unscaled_loss, y_pred, non_trainable, metrics_values = aux
        mapping = list(zip(variables, trainable)) + list(zip(self.optimizer.variables, optimizer_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            apply_with_sampled_rows(
                self.optimizer, grads, variables[:position] + variables[position + 1 :], head.kernel, classes,
                row_gradients,
            )
        trainable = [scope.get_current_value(variable) for variable in variables]
        optimizer_values = [scope.get_current_value(variable) for variable in self.optimizer.variables]
        logs, metrics_values = self._update_metrics_variables(
            metrics_values, unscaled_loss, x, y, y_pred, sample_weight
        )
        return logs, (trainable, non_trainable, optimizer_values, metrics_values)


def _why_dense(model, sampling_heads):
    """Why the model's Partial FC head can't train by its sampled rows, or `None`."""
    if len(sampling_heads) > 1:
        return f"the model has {len(sampling_heads)} sampling heads; the sampled-rows step trains one"
    head = sampling_heads[0]
    if keras.backend.backend() not in ("tensorflow", "jax"):
        return f"the {keras.backend.backend()} backend has no sampled-rows step"
    if head.kernel_regularizer is not None:
        return "a kernel_regularizer is a loss on every row"
    if model.optimizer is None:
        return "the model has no optimizer"
    reason = sampled_rows_unsupported(model.optimizer)
    if reason:
        return reason
    if _replicas() > 1:
        return "each replica samples its own classes (more than one replica)"
    return None


def _replicas():
    if keras.backend.backend() == "jax":
        distribution = keras.distribution.distribution()
        return 1 if distribution is None else len(distribution.device_mesh.devices.flatten())
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync
