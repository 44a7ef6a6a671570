"""The zoo: named recipes and `build`.

Example:
    >>> model = kerasface.zoo.build("sphereface20", num_classes=10572)
    >>> model.fit(images, labels, batch_size=256)
    >>> model.embedder  # images -> embeddings, for export
"""

from kerasface.zoo import recipes  # noqa: F401  (fills the registry)
from kerasface.zoo.face_model import FaceModel, from_recipe, make_embedder
from kerasface.zoo.recipe import Preprocessing, Recipe
from kerasface.zoo.registry import names, recipe, register
from kerasface.zoo.schedules import AnnealingLogger, StopOnNaN, WarmupPiecewiseDecay, learning_rate, make_optimizer


def build(name, num_classes=None, *, compile=True, weights=None, steps_per_epoch=None, **overrides):
    """Builds the recipe `name` as a compiled `FaceModel`.

    Args:
        name: a registered recipe (`names()` lists them).
        num_classes: number of training identities (defaults to the paper's data set).
        compile: compile with the recipe's optimiser, schedule and loss.
        weights: a local weights file for the backbone (nothing is downloaded).
        steps_per_epoch: converts epoch-based schedules to iterations; without it
            they assume the paper's data set size and warn (`train()` takes it from the data).
        **overrides: recipe fields to change, e.g. `head="arcface"` or
            `input_shape=(56, 48, 3)`.
    """
    spec = recipe(name)
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if overrides:
        spec = spec.replace(**overrides)
    return from_recipe(spec, compile=compile, weights=weights, steps_per_epoch=steps_per_epoch)


__all__ = [
    "AnnealingLogger",
    "FaceModel",
    "Preprocessing",
    "Recipe",
    "StopOnNaN",
    "WarmupPiecewiseDecay",
    "build",
    "from_recipe",
    "learning_rate",
    "make_embedder",
    "make_optimizer",
    "names",
    "recipe",
    "register",
]
