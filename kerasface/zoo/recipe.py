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
    Schedules are in iterations (`unit="step"`) or epochs (`unit="epoch"`,
    converted with `steps_per_epoch`).
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
    steps_per_epoch: int | None = None
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
        if self.center_loss_weight and self.head is None:
            raise ValueError(f"{where}: centre loss is trained jointly with a softmax head; set head.")
        for name in ("embedding_dim", "num_classes", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{where}: {name} must be >= 1. Received: {name}={getattr(self, name)}")

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
