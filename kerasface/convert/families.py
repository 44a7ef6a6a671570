"""What each reference network's checkpoint holds, and which Keras layer each tensor fills.

A family's `units(backbone)` lists the network's parametrised modules in
the order the reference's `forward` runs them (the order of an exported
ONNX graph), each naming its Keras layer(s) and its source module: the
PyTorch state-dict prefix, or the TF-slim variable scope. The list is read
off the Keras model itself, so a model of another depth or width expects
other keys, and a checkpoint that does not fit it is reported key by key.

Sources, by family:

- `arcface_iresnet`: insightface `recognition/arcface_torch/backbones/
  iresnet.py` (`IResNet`, every depth: the blocks per stage are counted on
  the Keras model);
- `arcface_mobilefacenet`: the same repository's `backbones/mobilefacenet.py`
  with `blocks=(1, 4, 6, 2)` at any `scale`: kerasface's `mobilefacenet`
  (`scale=1`, the paper's) or `mobilefacenet(scale=2)`, the published
  "mbf" models of `get_mbf` (doubled widths, a grouped second
  convolution); the scale is read off the stem's filters;
- `facenet_pytorch`: timesler/facenet-pytorch `models/inception_resnet_v1.py`
  (`InceptionResnetV1`, affine batch norms: build with
  `batch_norm_scale=True`);
- `facenet_tf1`: davidsandberg/facenet `src/models/inception_resnet_v1.py`
  (TF-slim scopes `InceptionResnetV1/...`, batch norm without gamma);
- `sphere20a`: clcarwin/sphereface_pytorch `net_sphere.py` (`sphere20a`:
  every convolution has a bias, `fc5` the embedding, `fc6` an `AngleLinear`
  whose weight `(512, classes)` is the SphereFace head's kernel).
"""

import dataclasses

import keras
import numpy as np


@dataclasses.dataclass
class Unit:
    """One parametrised module: a convolution or dense layer with the batch
    norm after it, a lone batch norm, or a PReLU.

    `key` and `bn_key` are the source's module names; `flatten` is the
    `(height, width, channels)` of the feature map a dense layer flattens
    (PyTorch flattens it as (channels, height, width)).
    """

    kind: str
    layer: str
    key: str
    bn: str = None
    bn_key: str = None
    flatten: tuple = None


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    description: str
    backbone: str
    preprocessing: tuple  # (scale, offset, description)
    bgr: bool
    recipes: str


INSIGHTFACE_NORM = (1.0 / 127.5, -1.0, "(x - 127.5) / 127.5, RGB")
FIXED_STANDARDIZATION = (1.0 / 128.0, -127.5 / 128.0, "(x - 127.5) / 128, RGB (fixed_image_standardization)")
SPHEREFACE_NORM = (1.0 / 128.0, -127.5 / 128.0, "(x - 127.5) / 128, BGR (cv2 images)")

FAMILIES = {
    "arcface_iresnet": Family(
        "arcface_iresnet", "insightface arcface_torch IResNet", "iresnet", INSIGHTFACE_NORM, False,
        "iresnet*_arcface",
    ),
    "arcface_mobilefacenet": Family(
        "arcface_mobilefacenet", "insightface arcface_torch MobileFaceNet", "mobilefacenet", INSIGHTFACE_NORM,
        False, "mobilefacenet_arcface",
    ),
    "facenet_pytorch": Family(
        "facenet_pytorch", "facenet-pytorch InceptionResnetV1", "inception_resnet_v1", FIXED_STANDARDIZATION,
        False, "facenet",
    ),
    "facenet_tf1": Family(
        "facenet_tf1", "davidsandberg/facenet Inception-ResNet-v1 (TF1)", "inception_resnet_v1",
        FIXED_STANDARDIZATION, False, "facenet",
    ),
    "sphere20a": Family(
        "sphere20a", "clcarwin/sphereface_pytorch sphere20a", "sphereface", SPHEREFACE_NORM, True, "sphereface20",
    ),
}


def detect_family(keys):
    """The family whose signature keys a checkpoint holds, or `None`."""
    keys = set(keys)
    if {"conv1.weight", "layer1.0.bn1.weight", "fc.weight", "features.running_mean"} <= keys:
        return "arcface_iresnet"
    if {"layers.0.layers.0.weight", "conv_sep.layers.0.weight", "features.layers.2.weight"} <= keys:
        return "arcface_mobilefacenet"
    if {"conv2d_1a.conv.weight", "last_linear.weight", "last_bn.running_mean"} <= keys:
        return "facenet_pytorch"
    if {"conv1_1.weight", "relu1_1.weight", "fc5.weight"} <= keys:
        return "sphere20a"
    if any(k.startswith("InceptionResnetV1/Conv2d_1a_3x3/") for k in keys):
        return "facenet_tf1"
    return None


# arcface_torch `iresnet18` ... `iresnet200`: IBasicBlocks per stage -> depth.
IRESNET_DEPTHS = {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34, (3, 4, 14, 3): 50, (3, 13, 30, 3): 100, (6, 26, 60, 6): 200}


def iresnet_blocks(keys):
    """IBasicBlocks per stage of an arcface_torch IResNet state dict (`layer{S}.{I}.` prefixes)."""
    keys = list(keys)
    return tuple(
        len({k.split(".")[1] for k in keys if k.startswith(f"layer{s}.") and k.split(".")[1].isdigit()})
        for s in range(1, 5)
    )


def iresnet_depth(keys):
    """The depth (18, 34, 50, 100 or 200) of an arcface_torch IResNet state dict, or `None`."""
    return IRESNET_DEPTHS.get(iresnet_blocks(keys))


def sphere_convolutions(keys):
    """The `convS_I` module names of a sphere20a-style state dict."""
    return sorted({k.split(".")[0] for k in keys if k.startswith("conv") and k.endswith(".weight")})


def is_sphere_residual(module):
    """`conv2_3` is a residual convolution; `conv2_1` (stride 2, the stage's first) is not."""
    return module.startswith("conv") and not module.endswith("_1")


def mobilefacenet_scale(stem_filters):
    """arcface_torch MobileFaceNet's `scale` from its first convolution's filters (`64 * scale`), or `None`."""
    stem_filters = int(stem_filters)
    return stem_filters // 64 if stem_filters % 64 == 0 and stem_filters >= 64 else None


def backbone_args_of(family, state):
    """The backbone arguments a state dict dictates: depth, residual biases, width.

    `arcface_iresnet`: `depth` from the blocks per stage; `sphere20a`:
    `depth` (its convolutions) and `residual_bias=True` when a residual
    convolution has a non-zero bias (the PyTorch port trains them; Caffe
    froze them at 0); `arcface_mobilefacenet`: `scale` from the stem's
    filters (arcface_torch's `get_mbf` uses `scale=2`). Empty when nothing
    can be read off (the loader then reports what does not fit).
    """
    args = {}
    if family == "arcface_iresnet":
        depth = iresnet_depth(state)
        if depth is not None:
            args["depth"] = depth
    elif family == "sphere20a":
        convs = sphere_convolutions(state)
        if convs:
            args["depth"] = len(convs)
        args["residual_bias"] = any(
            is_sphere_residual(conv) and f"{conv}.bias" in state and np.any(np.asarray(state[f"{conv}.bias"]) != 0)
            for conv in convs
        )
    elif family == "arcface_mobilefacenet" and "layers.0.layers.0.weight" in state:
        scale = mobilefacenet_scale(np.shape(state["layers.0.layers.0.weight"])[0])
        if scale is not None:
            args["scale"] = scale
    return args


def describe_architecture(family, keys_or_state):
    """A short description of the network a checkpoint holds (blocks per stage and the like)."""
    keys = list(keys_or_state)
    if family == "arcface_iresnet":
        blocks = iresnet_blocks(keys)
        depth = IRESNET_DEPTHS.get(blocks)
        return f"IResNet with blocks per stage {blocks}" + (f" (iresnet{depth})" if depth else "")
    if family == "sphere20a":
        return f"SphereFace network with {len(sphere_convolutions(keys))} convolutions"
    stem = "layers.0.layers.0.weight"
    if family == "arcface_mobilefacenet" and isinstance(keys_or_state, dict) and stem in keys_or_state:
        filters = int(np.shape(keys_or_state[stem])[0])
        return f"MobileFaceNet with {filters} stem filters (scale {filters / 64:g})"
    return FAMILIES[family].description


def backbone_of(model):
    """The backbone inside a zoo embedder (the nested functional model), or `model` itself."""
    names = {layer.name for layer in model.layers}
    if "preprocessing" in names:
        nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if len(nested) == 1:
            return nested[0]
    return model


def _has(model, name):
    try:
        model.get_layer(name)
        return True
    except ValueError:
        return False


def _conv(keras_name, key, bn=True, bn_key=None):
    return Unit("conv", keras_name, key, f"{keras_name}_bn" if bn else None, bn_key)


# === arcface_torch IResNet ===


def iresnet_units(model):
    units = [_conv("conv1", "conv1", bn_key="bn1"), Unit("prelu", "conv1_prelu", "prelu")]
    for stage in range(1, 5):
        index = 0
        while _has(model, f"layer{stage}_{index}_bn1"):
            name, key = f"layer{stage}_{index}", f"layer{stage}.{index}"
            units += [
                Unit("bn", f"{name}_bn1", f"{key}.bn1"),
                _conv(f"{name}_conv1", f"{key}.conv1", bn_key=f"{key}.bn2"),
                Unit("prelu", f"{name}_conv1_prelu", f"{key}.prelu"),
                _conv(f"{name}_conv2", f"{key}.conv2", bn_key=f"{key}.bn3"),
            ]
            if _has(model, f"{name}_downsample"):
                units.append(_conv(f"{name}_downsample", f"{key}.downsample.0", bn_key=f"{key}.downsample.1"))
            index += 1
    flatten = tuple(model.get_layer("flatten").input.shape[1:])
    units += [
        Unit("bn", "bn2", "bn2"),
        Unit("dense", "fc", "fc", "embedding", "features", flatten=flatten),
    ]
    return units


# === arcface_torch MobileFaceNet (scale=1) ===


def mobilefacenet_units(model):
    def block(keras_name, key, prelu=True):
        out = [_conv(keras_name, f"{key}.layers.0", bn_key=f"{key}.layers.1")]
        if prelu:
            out.append(Unit("prelu", f"{keras_name}_prelu", f"{key}.layers.2"))
        return out

    units = block("conv1", "layers.0") + block("conv2_dw", "layers.1")
    # Table 1 rows: the first block of rows 1, 2 and 4 is a DepthWise module
    # (layers.2, .4, .6), the rest Residual modules (layers.3, .5, .7).
    row, module = 1, 2
    while _has(model, f"bottleneck{row}_1_expand"):
        count = 1
        while _has(model, f"bottleneck{row}_{count + 1}_expand"):
            count += 1
        for index in range(1, count + 1):
            name = f"bottleneck{row}_{index}"
            if row in (1, 2, 4):
                key = f"layers.{module}" if index == 1 else f"layers.{module + 1}.layers.{index - 2}"
            else:
                key = f"layers.{module - 1}.layers.{index - 1}"
            units += block(f"{name}_expand", f"{key}.layers.0")
            units += block(f"{name}_dw", f"{key}.layers.1")
            units += block(f"{name}_project", f"{key}.layers.2", prelu=False)
        if row in (1, 2, 4):
            module += 2
        row += 1
    units += block("conv_sep", "conv_sep")
    units += block("gdconv", "features.layers.0", prelu=False)
    flatten = tuple(model.get_layer("flatten").input.shape[1:])
    units.append(Unit("dense", "linear", "features.layers.2", "embedding", "features.layers.3", flatten=flatten))
    return units


# === Inception-ResNet-v1: facenet-pytorch names and davidsandberg's TF-slim scopes ===

STEM = (
    ("Conv2d_1a_3x3", "conv2d_1a"),
    ("Conv2d_2a_3x3", "conv2d_2a"),
    ("Conv2d_2b_3x3", "conv2d_2b"),
    ("Conv2d_3b_1x1", "conv2d_3b"),
    ("Conv2d_4a_3x3", "conv2d_4a"),
    ("Conv2d_4b_3x3", "conv2d_4b"),
)
BLOCK35 = (
    ("Branch_0/Conv2d_1x1", "branch0"),
    ("Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("Branch_1/Conv2d_0b_3x3", "branch1.1"),
    ("Branch_2/Conv2d_0a_1x1", "branch2.0"),
    ("Branch_2/Conv2d_0b_3x3", "branch2.1"),
    ("Branch_2/Conv2d_0c_3x3", "branch2.2"),
)
BLOCK17 = (
    ("Branch_0/Conv2d_1x1", "branch0"),
    ("Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("Branch_1/Conv2d_0b_1x7", "branch1.1"),
    ("Branch_1/Conv2d_0c_7x1", "branch1.2"),
)
BLOCK8 = (
    ("Branch_0/Conv2d_1x1", "branch0"),
    ("Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("Branch_1/Conv2d_0b_1x3", "branch1.1"),
    ("Branch_1/Conv2d_0c_3x1", "branch1.2"),
)
MIXED_6A = (
    ("Branch_0/Conv2d_1a_3x3", "branch0"),
    ("Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("Branch_1/Conv2d_0b_3x3", "branch1.1"),
    ("Branch_1/Conv2d_1a_3x3", "branch1.2"),
)
MIXED_7A = (
    ("Branch_0/Conv2d_0a_1x1", "branch0.0"),
    ("Branch_0/Conv2d_1a_3x3", "branch0.1"),
    ("Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("Branch_1/Conv2d_1a_3x3", "branch1.1"),
    ("Branch_2/Conv2d_0a_1x1", "branch2.0"),
    ("Branch_2/Conv2d_0b_3x3", "branch2.1"),
    ("Branch_2/Conv2d_1a_3x3", "branch2.2"),
)
TF1_SCOPE = "InceptionResnetV1"


def inception_resnet_units(model, source):
    """Units with `key` the facenet-pytorch prefix (`source="torch"`) or the TF-slim scope (`"tf1"`)."""
    tf1 = source == "tf1"
    units = []

    def basic(tf_scope, torch_key):
        keras_name = tf_scope.replace("/", "_")
        if tf1:
            units.append(_conv(keras_name, f"{TF1_SCOPE}/{tf_scope}", bn_key=f"{TF1_SCOPE}/{tf_scope}/BatchNorm"))
        else:
            units.append(_conv(keras_name, f"{torch_key}.conv", bn_key=f"{torch_key}.bn"))

    def up(tf_scope, torch_key):
        keras_name = tf_scope.replace("/", "_")
        units.append(Unit("conv", keras_name, f"{TF1_SCOPE}/{tf_scope}" if tf1 else torch_key))

    for tf_scope, torch_key in STEM:
        basic(tf_scope, torch_key)
    stages = (
        ("Repeat", "block35", "repeat_1", BLOCK35),
        ("Mixed_6a", None, "mixed_6a", MIXED_6A),
        ("Repeat_1", "block17", "repeat_2", BLOCK17),
        ("Mixed_7a", None, "mixed_7a", MIXED_7A),
        ("Repeat_2", "block8", "repeat_3", BLOCK8),
        ("Block8", None, "block8", BLOCK8),
    )
    for tf_stage, block, torch_stage, layout in stages:
        if block is None:
            scopes = [(tf_stage, torch_stage)]
        else:
            count = 0
            while _has(model, f"{tf_stage}_{block}_{count + 1}_concat"):
                count += 1
            scopes = [(f"{tf_stage}/{block}_{i + 1}", f"{torch_stage}.{i}") for i in range(count)]
        for tf_scope, torch_key in scopes:
            for tf_branch, torch_branch in layout:
                basic(f"{tf_scope}/{tf_branch}", f"{torch_key}.{torch_branch}")
            if not tf_stage.startswith("Mixed"):
                up(f"{tf_scope}/Conv2d_1x1", f"{torch_key}.conv2d")
    if tf1:
        units.append(Unit("dense", "Bottleneck", f"{TF1_SCOPE}/Bottleneck", "embedding", f"{TF1_SCOPE}/Bottleneck/BatchNorm"))
    else:
        units.append(Unit("dense", "Bottleneck", "last_linear", "embedding", "last_bn"))
    return units


# === SphereFace (clcarwin/sphereface_pytorch sphere20a) ===


def sphereface_units(model):
    units = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            units += [
                Unit("conv", layer.name, layer.name),
                Unit("prelu", f"{layer.name}_prelu", layer.name.replace("conv", "relu", 1)),
            ]
    flatten = tuple(model.get_layer("flatten").input.shape[1:])
    units.append(Unit("dense", "embedding", "fc5", flatten=flatten))
    return units


def units_for(family, backbone):
    if family == "arcface_iresnet":
        return iresnet_units(backbone)
    if family == "arcface_mobilefacenet":
        return mobilefacenet_units(backbone)
    if family == "facenet_pytorch":
        return inception_resnet_units(backbone, "torch")
    if family == "facenet_tf1":
        return inception_resnet_units(backbone, "tf1")
    if family == "sphere20a":
        return sphereface_units(backbone)
    raise ValueError(f"Unknown checkpoint family {family!r}. Known: {sorted(FAMILIES)}")


def family_for_backbone(backbone_name, source):
    """The family a backbone's checkpoints come in, from a given source kind ("torch", "onnx", "tf1")."""
    table = {
        "iresnet": "arcface_iresnet",
        "mobilefacenet": "arcface_mobilefacenet",
        "inception_resnet_v1": "facenet_tf1" if source == "tf1" else "facenet_pytorch",
        "sphereface": "sphere20a",
    }
    return table.get(backbone_name)
