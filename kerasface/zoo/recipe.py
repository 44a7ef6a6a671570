"""A recipe: backbone + head or loss + preprocessing + optimiser + schedule, as a paper trained it."""

import dataclasses
from dataclasses import dataclass, field

from kerasface import heads, losses


@dataclass(frozen=True)
class Preprocessing:
    """`x * scale + offset` on raw 0-255 pixels (per channel where a tuple)."""

    scale: float | tuple = 1.0 / 128.0
    offset: float | tuple = -127.5 / 128.0
    description: str = "(x - 127.5) / 128"


INSIGHTFACE = Preprocessing(1.0 / 127.5, -1.0, "(x - 127.5) / 127.5")
SPHEREFACE = Preprocessing()
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGENET = Preprocessing(
    tuple(1.0 / (255.0 * s) for s in IMAGENET_STD),
    tuple(-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)),
    "(x / 255 - ImageNet mean) / ImageNet std",
)

# The names a recipe uses for its head or metric loss, and what they build.
HEADS = {
    "softmax": heads.Softmax,
    "lsoftmax": heads.LSoftmax,
    "sphereface": heads.SphereFace,
    "normface": heads.NormFace,
    "cosface": heads.CosFace,
    "arcface": heads.ArcFace,
    "combined": heads.CombinedMargin,
}
METRIC_LOSSES = {
    "triplet_semihard": losses.TripletSemiHardLoss,
    "triplet_hard": losses.TripletHardLoss,
    "triplet_batch_all": losses.TripletBatchAllLoss,
}


@dataclass(frozen=True)
class Recipe:
    """Everything needed to build and train one model of the zoo.

    Data locations never appear here: they come from the caller.

    Units, as the reference code counts them:
    - `batch_size` is the *global* batch (all GPUs together) that the
      learning rates were set for; `for_batch_size` rescales a recipe to
      another global batch. With P x K sampling, `batch_size` is
      `identities_per_batch * images_per_identity`.
    - Schedules are in iterations (`unit="step"`) or epochs (`unit="epoch"`);
      epochs become iterations with the data's steps per epoch, or without
      data with `dataset_size` (the paper's training set) / `batch_size`.
    - `optimizer_args["l2_decay"]` is the reference's weight decay, added to
      the gradient (see `kerasface.optimizers`); Keras' decoupled
      `weight_decay` is only for recipes whose reference decouples it.
    - `normalize_embeddings` L2-normalises the embedder's output, as FaceNet
      does before its triplet loss and for its exported embeddings.
    """

    name: str
    backbone: str
    input_shape: tuple
    embedding_dim: int
    num_classes: int
    paper: str
    backbone_args: dict = field(default_factory=dict)
    preprocessing: Preprocessing = SPHEREFACE
    head: str | None = "softmax"
    head_args: dict = field(default_factory=dict)
    center_loss_weight: float = 0.0
    center_loss_alpha: float = 0.5
    metric_loss: str | None = None
    metric_loss_args: dict = field(default_factory=dict)
    optimizer: str = "sgd"
    optimizer_args: dict = field(default_factory=dict)
    schedule: str = "constant"
    schedule_args: dict = field(default_factory=dict)
    batch_size: int = 256
    identities_per_batch: int | None = None
    images_per_identity: int | None = None
    epochs: int | None = None
    steps: int | None = None
    dataset_size: int | None = None
    normalize_embeddings: bool = False
    dataset: str = ""
    reported: str = ""

    def __post_init__(self):
        where = f"Recipe {self.name!r}"
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if len(self.input_shape) != 3 or any(int(d) < 1 for d in self.input_shape):
            raise ValueError(f"{where}: input_shape must be (height, width, channels). Received: {self.input_shape}")
        if self.head is None and self.metric_loss is None:
            raise ValueError(f"{where}: needs a head or a metric_loss.")
        if self.head is not None and self.head not in HEADS:
            raise ValueError(f"{where}: head must be one of {tuple(HEADS)}. Received: head={self.head!r}")
        if self.metric_loss is not None and self.metric_loss not in METRIC_LOSSES:
            raise ValueError(
                f"{where}: metric_loss must be one of {tuple(METRIC_LOSSES)}. "
                f"Received: metric_loss={self.metric_loss!r}"
            )
        if self.head is not None and self.metric_loss is not None:
            raise ValueError(f"{where}: give a head or a metric_loss, not both.")
        if not self.center_loss_weight >= 0 or not 0 < self.center_loss_alpha <= 1:
            raise ValueError(
                f"{where}: center_loss_weight must be >= 0 and center_loss_alpha in (0, 1]. Received: "
                f"center_loss_weight={self.center_loss_weight}, center_loss_alpha={self.center_loss_alpha}"
            )
        if self.center_loss_weight and self.head is None:
            raise ValueError(f"{where}: centre loss is trained jointly with a softmax head; set head.")
        for name in ("embedding_dim", "num_classes", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{where}: {name} must be >= 1. Received: {name}={getattr(self, name)}")
        sampling = (self.identities_per_batch, self.images_per_identity)
        if (sampling[0] is None) != (sampling[1] is None):
            raise ValueError(
                f"{where}: P x K sampling needs both identities_per_batch and images_per_identity. "
                f"Received: identities_per_batch={sampling[0]}, images_per_identity={sampling[1]}"
            )
        if sampling[0] is not None and sampling[0] * sampling[1] != self.batch_size:
            raise ValueError(
                f"{where}: with P x K sampling the batch is identities_per_batch * images_per_identity = "
                f"{sampling[0] * sampling[1]}. Received: batch_size={self.batch_size}"
            )
        if self.epochs is None and self.steps is None:
            raise ValueError(f"{where}: give the training length as epochs or steps.")

    @property
    def schedule_unit(self):
        return self.schedule_args.get("unit", "step")

    def paper_steps_per_epoch(self):
        """Iterations per epoch on the paper's data set at `batch_size`, rounded
        down as arcface_torch's `num_image // total_batch_size`."""
        if not self.dataset_size:
            raise ValueError(
                f"Recipe {self.name!r} counts its schedule in epochs and does not know its data set size: "
                "pass steps_per_epoch."
            )
        return max(1, self.dataset_size // self.batch_size)

    def first_learning_rate(self):
        """The schedule's first rate (after any warm-up)."""
        args = self.schedule_args
        return args["learning_rate"] if "learning_rate" in args else args["values"][0]

    def with_learning_rate(self, learning_rate):
        """This recipe with every rate of its schedule scaled so that the first is `learning_rate`."""
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
            raise ValueError(
                f"Recipe {self.name!r}: learning_rate must be a number > 0. Received: learning_rate={learning_rate!r}"
            )
        return dataclasses.replace(self, schedule_args=_scaled_rates(self.schedule_args, learning_rate / self.first_learning_rate()))

    def for_batch_size(self, batch_size):
        """This recipe at another global batch, by the linear scaling rule.

        Goyal et al. 2017 (arXiv 1706.02677, section 2.1): the learning rates
        (and a warm-up's start) scale with `batch_size / self.batch_size`, and
        schedules counted in iterations are stretched by the inverse ratio, so
        the run sees the same number of images at each rate. Epoch schedules
        need no change. P x K recipes keep K images per identity and take
        `batch_size / K` identities.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Recipe {self.name!r}: batch_size must be a positive integer. Received: {batch_size!r}")
        if batch_size == self.batch_size:
            return self
        changes = {"batch_size": batch_size}
        if self.images_per_identity:
            if batch_size % self.images_per_identity:
                raise ValueError(
                    f"Recipe {self.name!r} samples {self.images_per_identity} images per identity (P x K): "
                    f"the batch size must be a multiple of {self.images_per_identity}. Received: batch_size={batch_size}"
                )
            changes["identities_per_batch"] = batch_size // self.images_per_identity
        ratio = batch_size / self.batch_size
        args = _scaled_rates(self.schedule_args, ratio)
        if self.schedule_unit == "step":
            for key in ("warmup", "decay_steps"):
                if key in args:
                    args[key] = max(1, round(args[key] / ratio))
            if "boundaries" in args:
                args["boundaries"] = [max(1, round(b / ratio)) for b in args["boundaries"]]
            if self.steps is not None:
                changes["steps"] = max(1, round(self.steps / ratio))
        changes["schedule_args"] = args
        return dataclasses.replace(self, **changes)

    def replace(self, **changes):
        """A copy with `changes`; a new `head` without `head_args` drops the old head's arguments."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            fields = ", ".join(f.name for f in dataclasses.fields(self))
            raise ValueError(f"Unknown recipe field(s) {unknown}. Recipe fields are: {fields}.")
        if "head" in changes and changes["head"] != self.head:
            changes.setdefault("head_args", {})
            if changes["head"] is not None:
                changes.setdefault("metric_loss", None)
        if "metric_loss" in changes and changes["metric_loss"] != self.metric_loss:
            changes.setdefault("metric_loss_args", {})
            if changes["metric_loss"] is not None:
                changes.setdefault("head", None)
                changes.setdefault("center_loss_weight", 0.0)
        return dataclasses.replace(self, **changes)

    def to_config(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        preprocessing = config.get("preprocessing")
        if isinstance(preprocessing, dict):
            preprocessing = {k: tuple(v) if isinstance(v, list) else v for k, v in preprocessing.items()}
            config["preprocessing"] = Preprocessing(**preprocessing)
        return cls(**config)


def _scaled_rates(schedule_args, factor):
    """`schedule_args` with every learning rate in it (first rate, warm-up start, piecewise values) times `factor`."""
    args = dict(schedule_args)
    for key in ("learning_rate", "warmup_start"):
        if key in args:
            args[key] = args[key] * factor
    if "values" in args:
        args["values"] = [value * factor for value in args["values"]]
    return args
