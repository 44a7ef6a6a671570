"""FaceNet on Inception-ResNet-v1 (Schroff et al. 2015; davidsandberg/facenet)."""

from kerasface.zoo.recipe import Preprocessing, Recipe
from kerasface.zoo.registry import register

FIXED_STANDARDIZATION = Preprocessing(1.0 / 128.0, -127.5 / 128.0, "(x - 127.5) / 128 (fixed_image_standardization)")


@register
def facenet():
    return Recipe(
        name="facenet",
        paper="Schroff et al., FaceNet: A Unified Embedding for Face Recognition and Clustering, CVPR 2015 "
        "(arXiv 1503.03832); Inception-ResNet-v1 as in davidsandberg/facenet",
        backbone="inception_resnet_v1",
        backbone_args={"dropout_rate": 0.2},
        input_shape=(160, 160, 3),
        embedding_dim=128,
        num_classes=1,
        preprocessing=FIXED_STANDARDIZATION,
        head=None,
        metric_loss="triplet_semihard",
        metric_loss_args={"margin": 0.2, "distance": "l2"},
        optimizer="adagrad",
        optimizer_args={},
        schedule="constant",
        schedule_args={"learning_rate": 0.1},
        batch_size=90,
        identities_per_batch=45,
        images_per_identity=40,
        dataset="the paper: 100-200M images of 8M identities (private); davidsandberg/facenet: CASIA-WebFace / VGGFace2",
        reported="LFW 99.63% (paper, 128-d, with alignment)",
    )


@register
def facenet_center():
    return facenet().replace(
        name="facenet_center",
        embedding_dim=512,
        head="softmax",
        center_loss_weight=0.01,
        center_loss_alpha=0.9,
        num_classes=10575,
        optimizer="adam",
        optimizer_args={"weight_decay": 5e-4},
        schedule="step",
        schedule_args={"unit": "epoch", "boundaries": [100, 200], "values": [0.05, 0.005, 0.0005]},
        batch_size=90,
        epochs=275,
        steps_per_epoch=1000,
        identities_per_batch=None,
        images_per_identity=None,
        reported="davidsandberg/facenet 20180408-102900 (VGGFace2, softmax + centre loss): LFW 99.65%",
    )
