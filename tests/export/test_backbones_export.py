"""Every backbone family exports with builtin ops only and Keras parity.

Tiny inputs keep conversion quick. By default each family small enough to
convert in seconds is exported to TFLite (and ONNX where that is quick too);
`-m slow` adds the families with tens of millions of weights (IResNet,
Inception-ResNet-v1, ResNet-50) and the remaining ONNX exports. Int8 quality
is tested on a stand-in model only: the embeddings of an untrained deep
network are chaotic, so their int8 cosine says nothing about the converter.
"""

from pathlib import Path

import keras
import numpy as np
import pytest

from kerasface import backbones
from kerasface import export as kexport
from kerasface.backbones.common import smallest_input
from kerasface.backbones.inception_resnet import VALID_WINDOWS

EMBEDDING_DIM = 16
INCEPTION_SIDE = smallest_input(VALID_WINDOWS)

FAMILIES = {
    "sphereface": lambda: backbones.sphereface(4, input_shape=(32, 32, 3), embedding_dim=EMBEDDING_DIM),
    "lenet_plus_plus": lambda: backbones.lenet_plus_plus(input_shape=(28, 28, 1), embedding_dim=2),
    "mobilefacenet": lambda: backbones.mobilefacenet(input_shape=(32, 32, 3), embedding_dim=EMBEDDING_DIM),
    "iresnet": lambda: backbones.iresnet(18, input_shape=(32, 32, 3), embedding_dim=EMBEDDING_DIM),
    "inception_resnet_v1": lambda: backbones.inception_resnet_v1(
        input_shape=(INCEPTION_SIDE, INCEPTION_SIDE, 3), embedding_dim=EMBEDDING_DIM
    ),
    "resnet50_reid": lambda: backbones.resnet50_reid(input_shape=(32, 32, 3), embedding_dim=EMBEDDING_DIM),
}
QUICK = {
    ("sphereface", "tflite"),
    ("sphereface", "onnx"),
    ("lenet_plus_plus", "tflite"),
    ("lenet_plus_plus", "onnx"),
    ("mobilefacenet", "tflite"),
}


def embedder_of(family):
    """Raw 0-255 images -> (x - 127.5) / 128 -> the backbone, as the zoo builds embedders."""
    backbone = FAMILIES[family]()
    images = keras.Input(backbone.inputs[0].shape[1:])
    normalised = keras.layers.Rescaling(1 / 128, offset=-127.5 / 128)(images)
    return keras.Model(images, backbone(normalised), name=f"{family}_embedder")


def cases():
    return [
        pytest.param(family, format, marks=() if (family, format) in QUICK else pytest.mark.slow)
        for family in FAMILIES
        for format in ("tflite", "onnx")
    ]


@pytest.mark.parametrize("family, format", cases())
def test_backbone_export_matches_keras(family, format, tmp_path):
    embedder = embedder_of(family)
    report = kexport.export(embedder, tmp_path / f"{family}{kexport.FORMATS[format].suffix}", format=format)
    if format == "tflite":
        ops = kexport.operators(Path(report.path).read_bytes())
        assert [name for name, is_builtin in ops if not is_builtin] == []

    images = kexport.synthetic_images(kexport.ImageSpec.of(embedder), count=2, seed=5)
    expected = embedder.predict(images, verbose=0)
    actual = kexport.load_runtime(kexport.FORMATS[format], report.path)(images)
    # Untrained backbones give embeddings from ~1e-6 to ~1e6: compare relative to their scale.
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * scale)
    assert kexport.agreement(expected, actual)[1] >= 0.9999
