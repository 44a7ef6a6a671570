"""Weights from the field: reference checkpoints loaded into the zoo's backbones, exactly.

`load_weights(model, path, recipe)` reads a PyTorch state dict (`.pth`/`.pt`,
zip or legacy format, through a restricted unpickler: no PyTorch needed, no
code from the file run), an ONNX model (matched by graph structure) or a
TensorFlow 1 checkpoint, checks every tensor against the Keras model as
`load_state_dict(strict=True)` does, converts layouts (OIHW -> HWIO,
depthwise kernels, PyTorch's (C, H, W) flatten order before a dense layer)
and writes the source's input normalisation into the embedder. Sources:
insightface arcface_torch IResNet (depths 18 to 200) and MobileFaceNet
(`scale` 1, or 2 as its published "mbf" models; and insightface's ONNX
files of those), facenet-pytorch and davidsandberg/facenet
Inception-ResNet-v1, and clcarwin/sphereface_pytorch `sphere20a` (biased
residual convolutions). `fit_recipe` reads the architecture a checkpoint
dictates (depth, width, residual biases, embedding size) so that the model
is built to fit it; `zoo.build(weights=...)` uses it.

This package imports no zoo at module level; `convert_checkpoint` (the CLI's
entry) imports it when it builds a recipe.
"""

from kerasface.convert.families import FAMILIES, detect_family
from kerasface.convert.loader import (
    Checkpoint,
    ConversionReport,
    detect_format,
    load_state,
    load_weights,
    read_checkpoint,
)
from kerasface.convert.recipes import checkpoint_overrides, describe_overrides, fit_recipe
from kerasface.convert.torch_pickle import read_state_dict

__all__ = [
    "FAMILIES",
    "Checkpoint",
    "ConversionReport",
    "detect_family",
    "checkpoint_overrides",
    "describe_overrides",
    "detect_format",
    "load_state",
    "fit_recipe",
    "load_weights",
    "read_checkpoint",
    "read_state_dict",
]
