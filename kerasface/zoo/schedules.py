"""Learning-rate schedules and callbacks the recipes train with."""

import math
import warnings

import keras
from keras import ops

from kerasface.optimizers import OPTIMIZERS


@keras.saving.register_keras_serializable(package="kerasface")
class WarmupPiecewiseDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A warm-up from `warmup_start` to `values[0]` over `warmup_steps`, then
    piecewise-constant `values` changing *at* the iterations in `boundaries`.

    `warmup_shape="linear"` ramps linearly; `"exponential"` multiplies the
    rate by a constant factor, `warmup_start * (values[0] / warmup_start) **
    (t / warmup_steps)`, with `t` rounded down to a multiple of
    `warmup_period` (the SphereReID reproduction raises it once per epoch).

    Reference:
    - SphereReID (Fan et al. 2018) warms up from 5e-5 to 1e-3 over 20 epochs
      (CoinCheung/SphereReID train.py: `warmup_lr * warmup_scale ** epoch`).
    """

    def __init__(self, warmup_steps, warmup_start, boundaries, values, warmup_shape="linear", warmup_period=1):
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"values needs one more entry than boundaries. Received: boundaries={boundaries}, values={values}"
            )
        if warmup_shape not in WARMUP_SHAPES:
            raise ValueError(f"warmup_shape must be one of {WARMUP_SHAPES}. Received: warmup_shape={warmup_shape!r}")
        self.warmup_steps = int(warmup_steps)
        self.warmup_start = float(warmup_start)
        self.boundaries = [int(b) for b in boundaries]
        self.values = [float(v) for v in values]
        self.warmup_shape = warmup_shape
        self.warmup_period = max(1, int(warmup_period))
        self.decay = piecewise_constant(self.boundaries, self.values)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        ramp = ops.floor(step / self.warmup_period) * self.warmup_period
        fraction = ops.minimum(ramp / max(self.warmup_steps, 1), 1.0)
        if self.warmup_shape == "linear":
            warm = self.warmup_start + fraction * (self.values[0] - self.warmup_start)
        else:
            warm = self.warmup_start * (self.values[0] / self.warmup_start) ** fraction
        return ops.where(step < self.warmup_steps, warm, self.decay(step))

    def get_config(self):
        return {
            "warmup_steps": self.warmup_steps,
            "warmup_start": self.warmup_start,
            "boundaries": self.boundaries,
            "values": self.values,
            "warmup_shape": self.warmup_shape,
            "warmup_period": self.warmup_period,
        }


WARMUP_SHAPES = ("linear", "exponential")


def piecewise_constant(boundaries, values):
    """`values[k]` from iteration `boundaries[k - 1]` on (0-based), as Caffe's
    "multistep" policy and PyTorch's `MultiStepLR` change the rate *at* a
    boundary; Keras' `PiecewiseConstantDecay` changes it one step later."""
    return keras.optimizers.schedules.PiecewiseConstantDecay([b - 1 for b in boundaries], list(values))


def learning_rate(recipe, steps_per_epoch=None):
    """The recipe's schedule as a Keras object (epochs converted to iterations).

    Epoch schedules take `steps_per_epoch` from the data; without it they
    assume the paper's data set (`recipe.paper_steps_per_epoch()`) and warn.
    """
    args = dict(recipe.schedule_args)
    per_unit = 1
    if args.pop("unit", "step") == "epoch":
        per_unit = steps_per_epoch
        if not per_unit:
            per_unit = recipe.paper_steps_per_epoch()
            warnings.warn(
                f"Recipe {recipe.name!r} schedules by epoch and no steps_per_epoch was given: assuming the "
                f"paper's data set, {recipe.dataset_size} images / batch {recipe.batch_size} = {per_unit} "
                "steps per epoch. Pass steps_per_epoch (train() derives it from the data).",
                stacklevel=3,
            )
    if recipe.schedule == "constant":
        return args["learning_rate"]
    if recipe.schedule == "step":
        return piecewise_constant([int(b * per_unit) for b in args["boundaries"]], args["values"])
    if recipe.schedule == "warmup_step":
        return WarmupPiecewiseDecay(
            int(args["warmup"] * per_unit),
            args["warmup_start"],
            [int(b * per_unit) for b in args["boundaries"]],
            list(args["values"]),
            warmup_shape=args.get("warmup_shape", "linear"),
            warmup_period=per_unit if args.get("warmup_shape") == "exponential" else 1,
        )
    if recipe.schedule == "polynomial":
        return keras.optimizers.schedules.PolynomialDecay(
            args["learning_rate"], int(args["decay_steps"] * per_unit), end_learning_rate=0.0, power=args["power"]
        )
    raise ValueError(f"Recipe {recipe.name!r}: unknown schedule {recipe.schedule!r}.")


def make_optimizer(recipe, steps_per_epoch=None):
    """The recipe's optimiser with its learning-rate schedule (`kerasface.optimizers`, coupled L2 decay)."""
    if recipe.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"Recipe {recipe.name!r}: optimizer must be one of {sorted(OPTIMIZERS)}. Received: {recipe.optimizer!r}"
        )
    return OPTIMIZERS[recipe.optimizer](learning_rate=learning_rate(recipe, steps_per_epoch), **recipe.optimizer_args)


class AnnealingLogger(keras.callbacks.Callback):
    """Writes the SphereFace / L-Softmax lambda and its iteration to the logs each epoch.

    `FaceModel.fit` adds it for annealed heads, before any CSV or TensorBoard logger.
    """

    def on_epoch_end(self, epoch, logs=None):
        head = getattr(self.model, "head", None)
        if logs is not None and hasattr(head, "annealing_lambda"):
            logs["lambda"] = float(ops.convert_to_numpy(head.annealing_lambda()))
            logs["head_iteration"] = int(ops.convert_to_numpy(head.iteration))


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first batch whose loss, or one of its terms, is NaN or infinite.

    Raises `FloatingPointError` naming the step (the optimiser's iteration),
    the epoch and the terms that went bad (`head_loss`, `center_loss`, or the
    metric loss itself as `loss`). `FaceModel.fit` adds it; checkpoints
    written before the step stay as they were.
    """

    TERMS = ("loss", "head_loss", "center_loss")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = [
            f"{key}={float(logs[key])}"
            for key in self.TERMS
            if logs and key in logs and not math.isfinite(float(logs[key]))
        ]
        if bad:
            self.model.stop_training = True
            step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
            raise FloatingPointError(
                f"Training stopped at step {step} (epoch {getattr(self, 'epoch', 0) + 1}, batch {batch + 1}): "
                f"the loss is not finite. Received: {', '.join(bad)}. Lower the learning rate, check the "
                "inputs for NaN/inf and the labels for values outside [0, num_classes) (which XLA, where "
                "asserts don't run, turns into a NaN loss), or use a smaller loss weight for the term named."
            )
