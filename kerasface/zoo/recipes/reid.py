"""SphereReID (Fan et al. 2018): ResNet-50 with the sphere (NormFace) loss."""

from kerasface.zoo.recipe import IMAGENET, Recipe
from kerasface.zoo.registry import register


@register
def spherereid():
    """The paper's network D and schedule as the CoinCheung/SphereReID reproduction (train.py) trains it:
    Adam with coupled L2 5e-4, a per-epoch exponential warm-up 5e-5 -> 1e-3 over 20 epochs, x0.1 at 80
    and 100, 140 epochs of P x K = 16 x 4."""
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
        # torch.optim.Adam(lr=1e-3, weight_decay=5e-4): default betas and eps, L2 in the gradient.
        optimizer="adam",
        optimizer_args={"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8, "l2_decay": 5e-4},
        schedule="warmup_step",
        schedule_args={
            "unit": "epoch",
            "warmup": 20,
            "warmup_start": 5e-5,
            "warmup_shape": "exponential",
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
