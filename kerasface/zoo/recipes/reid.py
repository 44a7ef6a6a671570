"""SphereReID (Fan et al. 2018): ResNet-50 with the sphere (NormFace) loss."""

from kerasface.zoo.recipe import IMAGENET, Recipe
from kerasface.zoo.registry import register


@register
def spherereid():
    return Recipe(
        name="spherereid",
        paper="Fan et al., SphereReID: Deep Hypersphere Manifold Embedding for Person Re-Identification, "
        "JVCIR 2019 (arXiv 1807.00537)",
        backbone="resnet50_reid",
        backbone_args={"dropout_rate": 0.5},
        input_shape=(256, 128, 3),
        embedding_dim=1024,
        num_classes=751,
        preprocessing=IMAGENET,
        head="normface",
        head_args={"scale": 14.0},
        optimizer="adam",
        optimizer_args={"beta_2": 0.99, "epsilon": 1e-8},
        schedule="warmup_step",
        schedule_args={
            "unit": "epoch",
            "warmup": 20,
            "warmup_start": 5e-5,
            "boundaries": [80, 100],
            "values": [1e-3, 1e-4, 1e-5],
        },
        batch_size=64,
        identities_per_batch=16,
        images_per_identity=4,
        epochs=140,
        dataset_size=12936,
        dataset="Market-1501 (751 training identities, 12,936 images; research-only licence)",
        reported="Market-1501 rank-1 94.4%, mAP 83.6% (paper, single query, no re-ranking)",
    )
