"""FaceNet on Inception-ResNet-v1 (Schroff et al. 2015; davidsandberg/facenet)."""

from kerasface.zoo.recipe import Preprocessing, Recipe
from kerasface.zoo.registry import register

FIXED_STANDARDIZATION = Preprocessing(1.0 / 128.0, -127.5 / 128.0, "(x - 127.5) / 128 (fixed_image_standardization)")
FACENET_REPO = "davidsandberg/facenet"


@register
def facenet():
    """Triplet training as davidsandberg/facenet's src/train_tripletloss.py.

    The reference samples 45 identities x up to 40 images, embeds them,
    selects semi-hard triplets offline and trains on batches of 90 images
    (30 triplets). Here the semi-hard triplets are mined online in each batch
    of 90 = 45 identities x 2 images: the same 45 identities and 90-image
    gradient batch the learning rate was set for. Embeddings are
    L2-normalised and compared by squared distance, so the margin 0.2 is on
    the unit sphere as in the reference.
    """
    return Recipe(
        name="facenet",
        paper="Schroff et al., FaceNet: A Unified Embedding for Face Recognition and Clustering, CVPR 2015 "
        "(arXiv 1503.03832); Inception-ResNet-v1 as in " + FACENET_REPO,
        backbone="inception_resnet_v1",
        backbone_args={"dropout_rate": 0.0},
        input_shape=(160, 160, 3),
        embedding_dim=128,
        num_classes=1,
        preprocessing=FIXED_STANDARDIZATION,
        normalize_embeddings=True,
        head=None,
        metric_loss="triplet_semihard",
        metric_loss_args={"margin": 0.2, "distance": "squared_l2"},
        optimizer="adagrad",
        optimizer_args={"initial_accumulator_value": 0.1},
        schedule="constant",
        schedule_args={"learning_rate": 0.1},
        batch_size=90,
        identities_per_batch=45,
        images_per_identity=2,
        steps=500 * 1000,
        dataset="the paper: 100-200M images of 8M identities (private); davidsandberg/facenet: CASIA-WebFace / VGGFace2",
        reported="LFW 99.63% (paper, 128-d, with alignment)",
    )


@register
def facenet_center():
    return facenet().replace(
        name="facenet_center",
        embedding_dim=512,
        normalize_embeddings=False,
        head="softmax",
        center_loss_weight=0.01,
        center_loss_alpha=0.9,
        num_classes=10575,
        optimizer="adam",
        optimizer_args={"l2_decay": 5e-4, "epsilon": 0.1},
        schedule="step",
        schedule_args={"unit": "epoch", "boundaries": [100, 200], "values": [0.05, 0.005, 0.0005]},
        batch_size=90,
        epochs=275,
        steps=None,
        dataset_size=90000,
        identities_per_batch=None,
        images_per_identity=None,
        reported="davidsandberg/facenet 20180408-102900 (CASIA-WebFace): LFW 99.05%",
    )
