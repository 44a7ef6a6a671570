"""Loads a reference checkpoint into a kerasface backbone, strictly and all at once."""

import collections
import dataclasses
import os

import numpy as np

from kerasface.convert import families, onnx_graph, torch_pickle

KERAS_SUFFIXES = (".keras", ".weights.h5")
OPTIMIZER_SLOTS = ("/Adam", "/Adagrad", "/Momentum", "/RMSProp", "/ExponentialMovingAverage", "/Adadelta", "/Ftrl")
MAX_LISTED = 12


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint read from disk: `format` is "pytorch", "onnx" or "tf1"."""

    path: str
    format: str
    state: dict = None  # name -> array (pytorch, tf1)
    ops: list = None  # parametrised ONNX nodes (onnx)
    preprocessing: tuple = None  # (scale, offset) found inside an ONNX graph

    def family(self, backbone_name=None):
        if self.format == "onnx":
            family = families.family_for_backbone(backbone_name, "onnx") if backbone_name else None
            if family not in ("arcface_iresnet", "arcface_mobilefacenet", "facenet_pytorch", "sphere20a"):
                raise ValueError(
                    f"{self.path}: ONNX models are read by graph structure for the iresnet and mobilefacenet "
                    f"families (insightface's model zoo). Received a model with backbone {backbone_name!r}."
                )
            return family
        family = families.detect_family(self.state)
        if family is None:
            sample = ", ".join(list(self.state)[:5])
            raise ValueError(
                f"{self.path}: the {self.format} checkpoint is none of the known networks "
                f"({', '.join(f.description for f in families.FAMILIES.values())}). Its first keys: {sample}"
            )
        return family


@dataclasses.dataclass
class ConversionReport:
    """What `load_weights` did: the source family, the tensors assigned and what was left aside."""

    path: str
    format: str
    family: str
    assigned: int
    preprocessing: str
    notes: list = dataclasses.field(default_factory=list)


def detect_format(path):
    """ "keras", "pytorch", "onnx" or "tf1", from the file's contents (and a TF1 checkpoint's `.index`)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return "tf1"
    if path.endswith(".index") or (not os.path.exists(path) and os.path.exists(path + ".index")):
        return "tf1"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file not found (kerasface never downloads weights). Received: {path!r}")
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"\x89HDF"):
        return "keras"
    if head.startswith(b"PK\x03\x04"):
        if path.endswith(".keras"):
            return "keras"
        return "pytorch"
    if head[:1] == b"\x80" or (len(head) >= 262 and head[257:262] == b"ustar"):
        return "pytorch"
    if path.endswith(".onnx") or head[:1] == b"\x08":
        return "onnx"
    raise ValueError(
        "Unrecognised weights file: not a .keras/.weights.h5 file, a PyTorch state dict (.pth/.pt), an ONNX "
        f"model or a TensorFlow 1 checkpoint (PREFIX with PREFIX.index). Received: {path!r}"
    )


def read_checkpoint(path):
    """Reads a PyTorch, ONNX or TF1 checkpoint (never running code from it) as a `Checkpoint`."""
    path = os.fspath(path)
    kind = detect_format(path)
    if kind == "keras":
        raise ValueError(f"{path} is a Keras file: load it with keras (it needs no conversion).")
    if kind == "pytorch":
        state = torch_pickle.read_state_dict(path)
        return Checkpoint(path, "pytorch", state={k: v for k, v in state.items()})
    if kind == "onnx":
        ops, preprocessing = onnx_graph.read_graph(path)
        return Checkpoint(path, "onnx", ops=ops, preprocessing=preprocessing)
    return Checkpoint(path, "tf1", state=_read_tf1(path))


def _read_tf1(path):
    import tensorflow as tf

    prefix = path[: -len(".index")] if path.endswith(".index") else path
    if os.path.isdir(prefix):
        found = tf.train.latest_checkpoint(prefix)
        if found is None:
            raise ValueError(f"{path}: a folder without a TensorFlow checkpoint (no 'checkpoint' file).")
        prefix = found
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        return collections.OrderedDict((name, reader.get_tensor(name)) for name in sorted(shapes))
    except (tf.errors.OpError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path}: not a readable TensorFlow checkpoint (truncated or corrupt): {message}") from None


# === Assigning a state dict ===


def _tf1_to_torch(state, family):
    """TF-slim names and layouts -> the PyTorch-style names the units use (`<scope>.weight`, ...)."""
    if family != "facenet_tf1":
        return state, []
    out, ignored = collections.OrderedDict(), []
    renames = {
        "weights": "weight", "biases": "bias", "gamma": "weight", "beta": "bias",
        "moving_mean": "running_mean", "moving_variance": "running_var",
    }
    for name, value in state.items():
        scope, _, leaf = name.rpartition("/")
        if (
            not name.startswith(families.TF1_SCOPE + "/")
            or any(slot in name for slot in OPTIMIZER_SLOTS)
            or leaf not in renames
        ):
            ignored.append(name)
            continue
        value = np.asarray(value)
        if leaf == "weights":
            value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
        out[f"{scope}.{renames[leaf]}"] = value
    return out, ignored


class _Plan:
    def __init__(self, state, where):
        self.state, self.where = state, where
        self.used, self.missing, self.bad_shapes, self.problems, self.assignments = set(), [], [], [], []

    def take(self, key):
        if key not in self.state:
            self.missing.append(key)
            return None
        self.used.add(key)
        return np.asarray(self.state[key], dtype=np.float32)

    def optional(self, key):
        if key not in self.state:
            return None
        self.used.add(key)
        return np.asarray(self.state[key], dtype=np.float32)

    def assign(self, variable, value, key, source_shape):
        if variable is None or value is None:
            return
        if tuple(value.shape) != tuple(variable.shape):
            self.bad_shapes.append(f"{key}: {tuple(source_shape)} in the checkpoint, {tuple(variable.shape)} in Keras")
            return
        self.assignments.append((variable, value))

    def require_constant(self, key, value, constant, why):
        if value is not None and not np.all(value == constant):
            self.problems.append(f"{key} is not all {constant:g}, but {why}")


def _conv_kernel(layer, weight):
    if "Depthwise" in type(layer).__name__:  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return weight.transpose(2, 3, 0, 1)
    return weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO


def _dense_kernel(weight, flatten):
    out_dim = weight.shape[0]
    if flatten is not None and len(flatten) == 3 and weight.ndim == 2 and weight.shape[1] == int(np.prod(flatten)):
        height, width, channels = flatten
        # PyTorch flattened (C, H, W); Keras flattens (H, W, C).
        return weight.reshape(out_dim, channels, height, width).transpose(2, 3, 1, 0).reshape(-1, out_dim)
    return weight.T


def _plan_bn(plan, layer, key):
    # A Keras batch norm without scale (or shift) takes a checkpoint without one
    # (TF-slim's default), or with one that is the identity.
    weight = plan.take(f"{key}.weight") if layer.gamma is not None else plan.optional(f"{key}.weight")
    bias = plan.take(f"{key}.bias") if layer.beta is not None else plan.optional(f"{key}.bias")
    plan.used.add(f"{key}.num_batches_tracked")
    for name, variable in (("weight", layer.gamma), ("bias", layer.beta)):
        value = weight if name == "weight" else bias
        if variable is not None:
            plan.assign(variable, value, f"{key}.{name}", np.shape(value))
        else:
            plan.require_constant(
                f"{key}.{name}", value, 1.0 if name == "weight" else 0.0,
                f"the Keras batch norm {layer.name!r} has no {'scale' if name == 'weight' else 'shift'}"
                + (" (build the backbone with batch_norm_scale=True)" if name == "weight" else ""),
            )
    for name, variable in (("running_mean", layer.moving_mean), ("running_var", layer.moving_variance)):
        value = plan.take(f"{key}.{name}")
        plan.assign(variable, value, f"{key}.{name}", np.shape(value))


def plan_state(backbone, state, family, where, bgr=False):
    """Every (variable, value) the state dict fills, after checking it all; raises listing what does not fit."""
    units = families.units_for(family, backbone)
    plan = _Plan(state, where)
    first_conv = True
    for unit in units:
        layer = backbone.get_layer(unit.layer)
        if unit.kind == "conv":
            weight = plan.take(f"{unit.key}.weight")
            if weight is not None and weight.ndim == 4:
                kernel = _conv_kernel(layer, weight)
                if first_conv and bgr:
                    kernel = kernel[:, :, ::-1, :]  # the reference read BGR; kerasface feeds RGB
                plan.assign(layer.kernel, np.ascontiguousarray(kernel), f"{unit.key}.weight", weight.shape)
            elif weight is not None:
                plan.bad_shapes.append(f"{unit.key}.weight: {weight.shape} is not a 2-D convolution kernel")
            first_conv = False
            _plan_bias(plan, layer, f"{unit.key}.bias", _bias_hint(family, unit))
        elif unit.kind == "dense":
            weight = plan.take(f"{unit.key}.weight")
            if weight is not None:
                plan.assign(layer.kernel, _dense_kernel(weight, unit.flatten), f"{unit.key}.weight", weight.shape)
            _plan_bias(plan, layer, f"{unit.key}.bias")
        elif unit.kind == "bn":
            _plan_bn(plan, layer, unit.key)
        elif unit.kind == "prelu":
            slope = plan.take(f"{unit.key}.weight")
            if slope is not None:
                value = slope.reshape(layer.alpha.shape) if slope.size == np.prod(layer.alpha.shape) else slope
                plan.assign(layer.alpha, value, f"{unit.key}.weight", slope.shape)
        if unit.bn:
            _plan_bn(plan, backbone.get_layer(unit.bn), unit.bn_key)
    return plan


def _bias_hint(family, unit):
    if family == "sphere20a" and families.is_sphere_residual(unit.key):
        return (
            "; the PyTorch port trains the residual convolutions' biases: build the backbone with "
            'residual_bias=True (backbone_args={"depth": 20, "residual_bias": True})'
        )
    return " (the reference it follows has none there)"


def _plan_bias(plan, layer, key, hint=" (the reference it follows has none there)"):
    has_bias = getattr(layer, "use_bias", False)
    if has_bias:
        value = plan.take(key)
        plan.assign(layer.bias, value, key, np.shape(value))
    elif key in plan.state:
        plan.used.add(key)
        why = f"the Keras layer {layer.name!r} has no bias{hint}"
        plan.require_constant(key, np.asarray(plan.state[key]), 0.0, why)


def load_state(model, state, family, where="checkpoint", head=None, extras=()):
    """Assigns a state dict (PyTorch names) to `model`'s backbone after checking every tensor.

    Strict as `load_state_dict(strict=True)`: missing keys, unexpected keys
    and wrongly shaped tensors are all listed in one `ValueError`, and
    nothing is assigned unless everything fits. `extras` are keys the caller
    handles itself (a classifier head). Returns the number of tensors assigned.
    """
    spec = families.FAMILIES[family]
    backbone = families.backbone_of(model)
    plan = plan_state(backbone, state, family, where, bgr=spec.bgr)
    unexpected = [
        key for key in state if key not in plan.used and key not in extras and not key.endswith("num_batches_tracked")
    ]
    if plan.missing or unexpected or plan.bad_shapes or plan.problems:
        parts = []
        for title, items in (
            ("missing keys", plan.missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", plan.bad_shapes),
            ("not representable", plan.problems),
        ):
            if items:
                listed = "; ".join(items[:MAX_LISTED]) + (f"; ... ({len(items)} in all)" if len(items) > MAX_LISTED else "")
                parts.append(f"{title}: {listed}")
        raise ValueError(
            f"{where}: the checkpoint ({families.describe_architecture(family, state)}) does not fit the Keras "
            f"model {backbone.name!r}; nothing was loaded. " + ". ".join(parts)
        )
    for variable, value in plan.assignments:
        variable.assign(value.astype(variable.dtype))
    return len(plan.assignments)


def _set_preprocessing(model, scale, offset):
    try:
        layer = model.get_layer("preprocessing")
    except ValueError:
        return False
    layer.scale, layer.offset = scale, offset
    return True


def load_weights(model, path, recipe=None, head=None):
    """Loads a reference checkpoint (PyTorch, ONNX or TF1) into a zoo embedder or a backbone.

    The format is read from the file; the network family from the keys (or,
    for ONNX, from the backbone, then matched by graph structure). The
    source's input normalisation is written into the embedder's
    `preprocessing` layer, so raw RGB pixels (0-255) give the reference
    embedding; a source trained on BGR images has its first convolution's
    input channels reversed instead.

    Args:
        model: a zoo embedder (`FaceModel.embedder`, `make_embedder(...)`), a
            `FaceModel` (its head may take the checkpoint's classifier), or
            a bare backbone.
        path: the checkpoint: `.pth`/`.pt`, `.onnx`, or a TF1 checkpoint
            prefix (or its `.index`, or its folder), or a `Checkpoint`
            already read by `read_checkpoint`.
        recipe: the `Recipe` the model was built from, checked against the
            checkpoint's family (optional).
        head: the recipe's head, which takes `sphere20a`'s `fc6` weights when
            the class count matches (a `FaceModel`'s own head by default).

    Returns:
        A `ConversionReport`.

    Raises:
        ValueError: an unreadable or unsafe file, another architecture, or
            any key missing, unexpected or of the wrong shape (nothing is
            loaded then).
    """
    if hasattr(model, "embedder") and hasattr(model, "head"):
        head = head if head is not None else model.head
        model = model.embedder
    checkpoint = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    path = checkpoint.path
    backbone = families.backbone_of(model)
    backbone_name = recipe.backbone if recipe is not None else _guess_backbone(backbone)
    family = checkpoint.family(backbone_name)
    spec = families.FAMILIES[family]
    if backbone_name is not None and backbone_name != spec.backbone:
        raise ValueError(
            f"{path}: the checkpoint is a {spec.description}, which fits the recipes {spec.recipes} (backbone "
            f"{spec.backbone!r}), not {'recipe ' + repr(recipe.name) if recipe else 'this model'} (backbone "
            f"{backbone_name!r}). Nothing was loaded."
        )
    notes, extras = [], set()
    if checkpoint.format == "onnx":
        units = families.units_for(family, backbone)
        state = onnx_graph.state_dict_from_graph(checkpoint.ops, units, backbone, str(path))
    else:
        state, ignored = _tf1_to_torch(checkpoint.state, family) if checkpoint.format == "tf1" else (
            checkpoint.state, [])
        if ignored:
            notes.append(f"ignored {len(ignored)} variables outside the network or optimiser slots")
    head_value = None
    if family == "sphere20a" and "fc6.weight" in state:
        extras.add("fc6.weight")
        head_value = _head_kernel(head, np.asarray(state["fc6.weight"], np.float32), notes)
    if family == "facenet_pytorch":
        for key in ("logits.weight", "logits.bias"):
            if key in state:
                extras.add(key)
                notes.append(f"{key} (facenet-pytorch's classifier) left out: the facenet recipes train their own")
    assigned = load_state(model, state, family, where=str(path), extras=extras)
    if head_value is not None:
        head.kernel.assign(head_value)
        assigned += 1
    scale, offset, description = spec.preprocessing
    if checkpoint.preprocessing is not None:
        # The graph normalises its input itself: raw pixels go in.
        scale, offset = checkpoint.preprocessing
        description = f"x * {scale:g} + {offset:g} (inside the ONNX graph), RGB"
    elif checkpoint.format == "tf1":
        description += "; a checkpoint trained with prewhitening (facenet before 2018) is not covered"
    if not _set_preprocessing(model, scale, offset):
        notes.append(f"the model has no 'preprocessing' layer: feed it {description}")
    if spec.bgr:
        notes.append("the first convolution's input channels were reversed: the reference read BGR, this reads RGB")
    return ConversionReport(str(path), checkpoint.format, family, assigned, description, notes)


def _head_kernel(head, weight, notes):
    """sphereface_pytorch's AngleLinear weight is `(in_features, out_features)`; the head's rows are classes."""
    if head is None or not hasattr(head, "kernel"):
        notes.append("fc6.weight (the AngleLinear head) left out: no head given")
        return None
    rows = np.ascontiguousarray(weight.T)
    if tuple(head.kernel.shape) != rows.shape:
        notes.append(
            f"fc6.weight {tuple(weight.shape)} (embedding_dim, classes) left out: the head's kernel is "
            f"{tuple(head.kernel.shape)} (classes, embedding_dim), another class count"
        )
        return None
    return rows


def _guess_backbone(backbone):
    name = backbone.name
    for prefix, backbone_name in (
        ("iresnet", "iresnet"),
        ("mobilefacenet", "mobilefacenet"),
        ("inception_resnet_v1", "inception_resnet_v1"),
        ("sphereface", "sphereface"),
    ):
        if name.startswith(prefix):
            return backbone_name
    return None
