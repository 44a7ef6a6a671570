"""From a checkpoint file to a zoo `FaceModel`, with a parity check against the source where possible."""

import dataclasses
import os

import numpy as np

from kerasface.convert import families, loader


@dataclasses.dataclass
class Parity:
    """Agreement of the converted model with the source's own runtime on the same images."""

    runtime: str
    images: int
    max_abs_error: float = None
    mean_cosine: float = None
    scale: float = None  # the largest |embedding| of the source
    reason: str = ""


# arcface_torch IResNet convolutions: the stem, two per block, one downsample per stage.
ONNX_IRESNET_DEPTHS = {1 + 2 * sum(blocks) + 4: depth for blocks, depth in families.IRESNET_DEPTHS.items()}


def checkpoint_overrides(checkpoint, recipe, classes=True):
    """Recipe fields the checkpoint fixes, so that `recipe.replace(**overrides)` builds a model it fits.

    The architecture (`backbone_args`: IResNet depth, sphere20a's depth and
    residual biases, MobileFaceNet's scale, facenet-pytorch's batch-norm
    scale; `families.backbone_args_of`), the embedding size and, with
    `classes`, sphere20a's class count (its `fc6`). Only changes are
    returned; nothing for a checkpoint of another backbone's family.
    """
    overrides = {}
    family = checkpoint.family(recipe.backbone)
    if families.FAMILIES[family].backbone != recipe.backbone:
        return overrides
    if checkpoint.format == "onnx":
        dense = [op for op in checkpoint.ops if op.kind == "dense"]
        if dense:
            overrides["embedding_dim"] = int(dense[-1].params["weight"].shape[0])
        convs = [op for op in checkpoint.ops if op.kind == "conv"]
        args = {}
        if family == "arcface_iresnet" and len(convs) in ONNX_IRESNET_DEPTHS:
            args["depth"] = ONNX_IRESNET_DEPTHS[len(convs)]
        if family == "arcface_mobilefacenet" and convs:
            scale = families.mobilefacenet_scale(convs[0].params["weight"].shape[0])
            if scale is not None:
                args["scale"] = scale
        _put_backbone_args(overrides, recipe, args)
        return _only_changes(overrides, recipe)
    state = checkpoint.state
    key = {
        "arcface_iresnet": "fc.weight",
        "arcface_mobilefacenet": "features.layers.2.weight",
        "facenet_pytorch": "last_linear.weight",
        "sphere20a": "fc5.weight",
    }.get(family)
    if key in state:
        overrides["embedding_dim"] = int(np.shape(state[key])[0])
    if family == "facenet_tf1" and "InceptionResnetV1/Bottleneck/weights" in state:
        overrides["embedding_dim"] = int(np.shape(state["InceptionResnetV1/Bottleneck/weights"])[1])
    args = families.backbone_args_of(family, state)
    if family == "facenet_pytorch":
        args["batch_norm_scale"] = True
    _put_backbone_args(overrides, recipe, args)
    if classes and family == "sphere20a" and "fc6.weight" in state and recipe.head is not None:
        overrides["num_classes"] = int(np.shape(state["fc6.weight"])[1])
    return _only_changes(overrides, recipe)


def _put_backbone_args(overrides, recipe, args):
    current = dict(recipe.backbone_args or {})
    # A default the recipe does not spell out (residual_bias=False, scale=1) changes nothing.
    defaults = {"residual_bias": False, "scale": 1, "batch_norm_scale": False}
    changed = {k: v for k, v in args.items() if current.get(k, defaults.get(k)) != v}
    if changed:
        overrides["backbone_args"] = {**current, **changed}


def _only_changes(overrides, recipe):
    return {k: v for k, v in overrides.items() if getattr(recipe, k) != v}


def fit_recipe(recipe, checkpoint, classes=False):
    """`(recipe, overrides)`: `recipe` with the architecture `checkpoint` (a path or a read
    `loader.Checkpoint`) dictates; the class count too with `classes`."""
    if not isinstance(checkpoint, loader.Checkpoint):
        checkpoint = loader.read_checkpoint(checkpoint)
    overrides = checkpoint_overrides(checkpoint, recipe, classes=classes)
    return (recipe.replace(**overrides) if overrides else recipe), overrides


def describe_overrides(overrides):
    return ", ".join(f"{k}={v}" for k, v in overrides.items())


def convert_checkpoint(path, recipe_name, num_classes=None, images=None):
    """Builds recipe `recipe_name` (fitted to the checkpoint) and loads `path` into it.

    Returns `(model, report, parity)`; `parity` is measured with onnxruntime
    for ONNX sources (when installed) on `images` (raw RGB, 0-255; default:
    eight synthetic images of the recipe's input size).
    """
    from kerasface import zoo

    recipe = zoo.recipe(recipe_name)
    checkpoint = loader.read_checkpoint(path)
    family = checkpoint.family(recipe.backbone)
    spec = families.FAMILIES[family]
    if recipe.backbone != spec.backbone:
        raise ValueError(
            f"{path}: the checkpoint is a {spec.description}, which fits the recipes {spec.recipes}, not "
            f"{recipe_name!r} (backbone {recipe.backbone!r}). Nothing was written."
        )
    overrides = checkpoint_overrides(checkpoint, recipe)
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if overrides:
        recipe = recipe.replace(**overrides)
    model = zoo.from_recipe(recipe, compile=False)
    report = loader.load_weights(model, checkpoint, recipe)
    if overrides:
        report.notes.insert(0, "recipe fitted to the checkpoint: " + describe_overrides(overrides))
    parity = measure_parity(model.embedder, checkpoint, family, images)
    return model, report, parity


def measure_parity(embedder, checkpoint, family, images=None):
    """Max abs error and mean cosine between `embedder` and the source run by its own runtime."""
    from kerasface.export import ImageSpec, agreement, synthetic_images

    if images is None:
        images = synthetic_images(ImageSpec.of(embedder), count=8)
    images = np.asarray(images, np.float32)
    if checkpoint.format != "onnx":
        reason = {
            "pytorch": "a state dict holds no network code; run bench/make_checkpoint_fixtures.py's networks with "
            "PyTorch for a reference",
            "tf1": "a TF1 checkpoint holds variables only",
        }[checkpoint.format]
        return Parity("none", len(images), reason=reason)
    try:
        import onnxruntime
    except ImportError:
        return Parity("onnxruntime", len(images), reason="onnxruntime is not installed")
    session = onnxruntime.InferenceSession(checkpoint.path, providers=["CPUExecutionProvider"])
    if checkpoint.preprocessing is not None:
        inputs = images
    else:
        scale, offset, _ = families.FAMILIES[family].preprocessing
        inputs = images * scale + offset
    if families.FAMILIES[family].bgr:
        inputs = inputs[..., ::-1]
    feed = np.ascontiguousarray(inputs.transpose(0, 3, 1, 2), dtype=np.float32)
    name = session.get_inputs()[0].name
    reference = np.concatenate([session.run(None, {name: feed[i : i + 1]})[0] for i in range(len(feed))])
    import keras

    converted = keras.ops.convert_to_numpy(embedder(images, training=False))
    max_abs_error, mean_cosine = agreement(reference.reshape(converted.shape), converted)
    return Parity("onnxruntime", len(images), max_abs_error, mean_cosine, float(np.abs(reference).max()))


def save_atomically(model, out):
    """Saves to `out` (a `.keras` file) through a temporary file, so a failure leaves nothing there."""
    out = os.fspath(out)
    if not out.endswith(".keras"):
        raise ValueError(f"The output must be a .keras file. Received: out={out!r}")
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f".{os.path.basename(out)}.partial.keras")
    try:
        model.save(partial)
        os.replace(partial, out)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
