"""Backbones: functional Keras models from (normalised) images to embeddings."""

from kerasface.backbones.inception_resnet import inception_resnet_v1
from kerasface.backbones.iresnet import iresnet
from kerasface.backbones.lenet import lenet_plus_plus
from kerasface.backbones.mobilefacenet import mobilefacenet
from kerasface.backbones.resnet_reid import resnet50_reid
from kerasface.backbones.sphereface import sphereface

BACKBONES = {
    "sphereface": sphereface,
    "lenet_plus_plus": lenet_plus_plus,
    "inception_resnet_v1": inception_resnet_v1,
    "mobilefacenet": mobilefacenet,
    "iresnet": iresnet,
    "resnet50_reid": resnet50_reid,
}

__all__ = [
    "BACKBONES",
    "inception_resnet_v1",
    "iresnet",
    "lenet_plus_plus",
    "mobilefacenet",
    "resnet50_reid",
    "sphereface",
]
