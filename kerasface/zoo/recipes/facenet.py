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
        # tf.train.AdagradOptimizer(0.1): accumulators start at 0.1; weight_decay 0.0 by default.
        optimizer="adagrad",
        optimizer_args={"initial_accumulator_value": 0.1},
        schedule="constant",
        schedule_args={"learning_rate": 0.1},
        batch_size=90,
        identities_per_batch=45,
        images_per_identity=2,
        # An epoch is epoch_size = 1000 batches of 90; max_nrof_epochs = 500.
        epochs=500,
        dataset_size=1000 * 90,
        dataset="the paper: 100-200M images of 8M identities (private); davidsandberg/facenet: CASIA-WebFace / VGGFace2",
        reported="LFW 99.63% (paper, 128-d, with alignment)",
    )


# davidsandberg's centre loss (src/facenet.py center_loss) at his defaults: alfa 0.95, factor 0.01.
FACENET_CENTER_ALFA, FACENET_CENTER_FACTOR = 0.95, 0.01


@register
def facenet_center():
    """davidsandberg/facenet's softmax classifier (src/train_softmax.py, the wiki's CASIA-WebFace command)
    with his centre loss added.

    The command behind 20180408-102900 (CASIA-WebFace, LFW 99.05 %) sets no centre loss
    (`--center_loss_factor` 0) but a prelogits L1-norm loss (5e-4), which kerasface does not have; this
    recipe is that command with his centre loss at factor 0.01 and alfa 0.95 instead. His update
    `c <- c - (1 - alfa) sum_i (c - x_i)` equals `CenterLoss`'s eq. 4 when each class appears once in a
    batch (90 images over 10,575 identities), which gives alpha = 2 (1 - alfa); his loss
    `factor * mean((x - c)^2)` over batch and features equals `weight / 2 * mean ||x - c||^2` with
    weight = 2 factor / 512. Embeddings are not normalised in training (softmax and centres act on the
    prelogits); facenet normalises them for verification, which cosine scoring does anyway.
    """
    return facenet().replace(
        name="facenet_center",
        backbone_args={"dropout_rate": 1.0 - 0.8},
        embedding_dim=512,
        normalize_embeddings=False,
        head="softmax",
        center_loss_weight=2 * FACENET_CENTER_FACTOR / 512,
        center_loss_alpha=2 * (1 - FACENET_CENTER_ALFA),
        num_classes=10575,
        # tf.train.AdamOptimizer(lr, beta1=0.9, beta2=0.999, epsilon=0.1) (src/facenet.py train()), slim L2 5e-4.
        optimizer="adam",
        optimizer_args={"beta_1": 0.9, "beta_2": 0.999, "epsilon": 0.1, "l2_decay": 5e-4},
        schedule="step",
        # data/learning_rate_schedule_classifier_casia.txt: 0: 0.1, 65: 0.01, 80: 0.001.
        schedule_args={"unit": "epoch", "boundaries": [65, 80], "values": [0.1, 0.01, 0.001]},
        batch_size=90,
        epochs=150,
        dataset_size=1000 * 90,
        identities_per_batch=None,
        images_per_identity=None,
        dataset="CASIA-WebFace (10,575 identities), MTCNN-aligned 182x182, random crop 160 and flip",
        reported="davidsandberg/facenet 20180408-102900 (CASIA-WebFace, softmax, no centre loss): LFW 99.05%; "
        "20180402-114759 (VGGFace2): LFW 99.65%",
    )
