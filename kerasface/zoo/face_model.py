"""`FaceModel`: an embedding network trained through a head, centre loss or metric loss."""

import keras
import numpy as np

from kerasface._checks import check_labels
from kerasface.heads import SampledRowsTraining
from kerasface.layers import CenterLoss
from kerasface.zoo.recipe import HEADS, METRIC_LOSSES, Recipe
from kerasface.zoo.schedules import AnnealingLogger, StopOnNaN, make_optimizer

@keras.saving.register_keras_serializable(package="kerasface")
class FaceModel(SampledRowsTraining, keras.Model):
    """Images in, embeddings out; `fit` trains the embedder through the recipe's loss.

    Calling the model (or `predict`) gives embeddings. In `fit`, the model's
    `compute_loss` runs the head on the embeddings with the labels (margin
    logits into the compiled loss, plus the centre loss), or the metric loss
    on the embeddings directly. The head's accuracy is logged as `accuracy`.
    A Partial FC head (`sample_rate < 1`) trains by its sampled rows only
    (`SampledRowsTraining`).
    `embedder` is the plain image-to-embedding network to export.

    Args:
        embedder: a Keras model from raw images (0-255) to embeddings.
        head: a `kerasface.heads.Head`, or `None` for metric-loss training.
        center_loss: an optional `kerasface.layers.CenterLoss`.
        recipe: the `Recipe` it was built from (gives `compile` its defaults).
    """

    def __init__(self, embedder, head=None, center_loss=None, recipe=None, **kwargs):
        super().__init__(**kwargs)
        self.embedder = embedder
        self.head = head
        self.center_loss = center_loss
        self.recipe = recipe
        dim = embedder.outputs[0].shape[-1]
        if head is not None and not head.built:
            head.build((None, dim))
        if center_loss is not None and not center_loss.built:
            center_loss.build([(None, dim), (None,)])
        self.head_accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy") if head else None
        # Each loss term is logged, so a NaN can be traced to the term that produced it.
        self.head_loss_tracker = keras.metrics.Mean(name="head_loss") if head else None
        self.center_loss_tracker = keras.metrics.Mean(name="center_loss") if center_loss else None
        self.built = True

    @property
    def input_shape_hw(self):
        return tuple(self.embedder.inputs[0].shape[1:])

    def call(self, images, training=None):
        return self.embedder(images, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self.head is None:
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        extra = 0.0
        if self.center_loss is not None:
            extra = self.center_loss.loss_and_update(y_pred, y, training)
            self.center_loss_tracker.update_state(extra)
        # A Partial FC head's training logits cover its sampled classes; labels follow them.
        logits, labels = self.head.logits_and_labels(y_pred, y, training)
        self.head_accuracy.update_state(labels, logits, sample_weight)
        head_loss = super().compute_loss(x, labels, logits, sample_weight, training)
        self.head_loss_tracker.update_state(head_loss)
        return head_loss + extra

    def compile(self, optimizer="auto", loss="auto", metrics="auto", steps_per_epoch=None, **kwargs):
        """Compiles with the recipe's optimiser, schedule and loss where `"auto"`."""
        if isinstance(optimizer, str) and optimizer == "auto":
            if self.recipe is None:
                raise ValueError("FaceModel without a recipe: pass an optimizer to compile().")
            optimizer = make_optimizer(self.recipe, steps_per_epoch)
        if isinstance(loss, str) and loss == "auto":
            loss = self._default_loss()
        elif self.head is not None:
            loss = self._loss_on_logits(loss)
        if isinstance(metrics, str) and metrics == "auto":
            metrics = None
        elif metrics and self.head is not None:
            raise ValueError(
                "A FaceModel with a head logs the head's accuracy itself; compiled metrics would see "
                f"embeddings, not logits. Received: metrics={metrics}"
            )
        kwargs.setdefault("jit_compile", default_jit_compile())
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        # Keras skips this for an overridden compile(); ours takes the saved
        # objects as they are, so a loaded model resumes with its optimiser state.
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self.trainable_variables)

    def _loss_on_logits(self, loss):
        """The head gives logits: a cross-entropy by name takes them as logits; one on probabilities is refused."""
        if isinstance(loss, str):
            if loss in ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"):
                return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            raise ValueError(
                f"{self.name}: the head gives logits over classes and integer labels; compile with loss='auto' "
                "(sparse categorical cross-entropy from logits) or a Loss object that takes logits. "
                f"Received: loss={loss!r}"
            )
        if getattr(loss, "from_logits", None) is False:
            raise ValueError(
                f"{self.name}: the head gives logits, but this loss expects probabilities (from_logits=False); "
                f"training would run at chance. Pass from_logits=True. Received: loss={loss!r}"
            )
        return loss

    def _default_loss(self):
        if self.head is not None:
            return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if self.recipe is None or self.recipe.metric_loss is None:
            raise ValueError("FaceModel without a head needs a loss: pass one to compile().")
        return METRIC_LOSSES[self.recipe.metric_loss](**self.recipe.metric_loss_args)

    def fit(self, x=None, y=None, *args, callbacks=None, **kwargs):
        self._check_arrays(x, y)
        callbacks = list(callbacks or [])
        if hasattr(self.head, "annealing_lambda"):
            callbacks.insert(0, AnnealingLogger())
        callbacks.insert(0, StopOnNaN())
        return super().fit(x, y, *args, callbacks=callbacks, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_arrays(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_arrays(x, None)
        return super().predict(x, *args, **kwargs)

    def _check_arrays(self, images, labels):
        """Clear errors for NumPy inputs of the wrong size or labels out of range."""
        expected = self.input_shape_hw
        if isinstance(images, np.ndarray):
            if images.ndim != 4 or tuple(images.shape[1:]) != expected:
                raise ValueError(
                    f"{self.name} takes images of shape (batch, {', '.join(map(str, expected))}) "
                    f"(height, width, channels). Received shape {images.shape}."
                )
            if not (np.issubdtype(images.dtype, np.number)):
                raise ValueError(f"Images must be numeric (uint8 or float, 0-255). Received dtype {images.dtype}.")
            if len(images) == 0:
                raise ValueError(f"{self.name} needs at least one image. Received shape {images.shape}.")
            if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
                bad = np.argwhere(~np.isfinite(images))[0]
                raise ValueError(
                    f"{self.name}: images must be finite pixel values (0-255). Received NaN or infinity in image "
                    f"{bad[0]} at (row, column, channel) {tuple(int(i) for i in bad[1:])}."
                )
        if labels is not None and self.head is not None and isinstance(labels, np.ndarray):
            check_labels(labels, self.head.num_classes, self.name)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "embedder": keras.saving.serialize_keras_object(self.embedder),
            "head": keras.saving.serialize_keras_object(self.head),
            "center_loss": keras.saving.serialize_keras_object(self.center_loss),
            "recipe": self.recipe.to_config() if self.recipe else None,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("embedder", "head", "center_loss"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        if config["recipe"] is not None:
            config["recipe"] = Recipe.from_config(config["recipe"])
        return cls(**config)


def default_jit_compile():
    """XLA everywhere but TensorFlow on a CPU, where it trains these networks
    slower (bench/speed_bench.py, 2-core EPYC: LeNet++ 625 images/s with XLA,
    920 without; sphereface20 at batch 32: 32.4 and 37.5)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return "auto" if tf.config.list_physical_devices("GPU") else False
    return "auto"


def make_embedder(recipe, weights=None):
    """Raw images -> the recipe's normalisation -> backbone -> embeddings."""
    from kerasface.backbones import BACKBONES

    if recipe.backbone not in BACKBONES:
        raise ValueError(f"Unknown backbone {recipe.backbone!r}. Known: {sorted(BACKBONES)}.")
    backbone = BACKBONES[recipe.backbone](
        input_shape=recipe.input_shape, embedding_dim=recipe.embedding_dim, weights=weights, **recipe.backbone_args
    )
    channels = recipe.input_shape[-1]
    for name in ("scale", "offset"):
        value = getattr(recipe.preprocessing, name)
        if isinstance(value, tuple) and len(value) != channels:
            raise ValueError(
                f"Recipe {recipe.name!r}: its preprocessing has a per-channel {name} for {len(value)} channels, "
                f"but the input has {channels}. Received: input_shape={recipe.input_shape}"
            )
    images = keras.Input(recipe.input_shape, name="images")
    normalised = keras.layers.Rescaling(
        recipe.preprocessing.scale, recipe.preprocessing.offset, name="preprocessing"
    )(images)
    embeddings = backbone(normalised)
    if recipe.normalize_embeddings:
        # facenet: tf.nn.l2_normalize(prelogits, 1, 1e-10) (davidsandberg/facenet src/train_tripletloss.py).
        embeddings = keras.layers.UnitNormalization(name="l2_normalize")(embeddings)
    return keras.Model(images, embeddings, name=f"{recipe.name}_embedder")


def _foreign_checkpoint(weights):
    """True for a reference project's checkpoint (PyTorch, ONNX, TF1), False for kerasface's own files."""
    from kerasface import convert

    return convert.detect_format(weights) != "keras"


def from_recipe(recipe, compile=True, weights=None, steps_per_epoch=None):
    """Builds (and by default compiles) the `FaceModel` a recipe describes.

    `weights` is a local file: kerasface's `.weights.h5`/`.keras` for the
    backbone, or a reference checkpoint (arcface_torch / facenet-pytorch
    `.pth`, insightface `.onnx`, a davidsandberg TF1 checkpoint, sphere20a),
    which `kerasface.convert.load_weights` loads strictly with its input
    normalisation. The architecture such a checkpoint dictates (its depth,
    width, residual biases and embedding size: `convert.fit_recipe`)
    replaces the recipe's, with a warning naming the changes; the class
    count stays the recipe's (`kerasface convert` also takes sphere20a's).
    """
    checkpoint = None
    if weights is not None and _foreign_checkpoint(weights):
        import os
        import warnings

        from kerasface import convert

        checkpoint = convert.read_checkpoint(weights)
        recipe, overrides = convert.fit_recipe(recipe, checkpoint)
        if overrides:
            warnings.warn(
                f"{recipe.name}: fitted to the checkpoint {os.fspath(weights)}: "
                f"{convert.describe_overrides(overrides)}.",
                stacklevel=2,
            )
    head = None
    if recipe.head is not None:
        head = HEADS[recipe.head](recipe.num_classes, name="head", **recipe.head_args)
    center_loss = None
    if recipe.center_loss_weight > 0:
        center_loss = CenterLoss(
            recipe.num_classes, alpha=recipe.center_loss_alpha, weight=recipe.center_loss_weight, name="center_loss"
        )
    embedder = make_embedder(recipe, None if checkpoint is not None else weights)
    model = FaceModel(embedder, head, center_loss, recipe, name=recipe.name)
    if checkpoint is not None:
        # The backbone, its normalisation and (sphere20a) the head's classifier, strictly or not at all.
        convert.load_weights(model, checkpoint, recipe)
    if compile:
        model.compile(steps_per_epoch=steps_per_epoch)
    return model
