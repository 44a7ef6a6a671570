"""MobileFaceNet and IResNet with ArcFace, as insightface's arcface_torch trains them.

arcface_torch (configs/ms1mv2_r50.py, ms1mv2_r100.py, train_v2.py) sets
`batch_size = 128` per GPU on 8 GPUs: the rate 0.1 is for a global batch of
1,024 (train_v2 does not rescale it), decaying per step by PolyScheduler
(power 2, no warm-up) over 20 epochs of 5,822,653 // 1,024 = 5,686 steps.
Weight decay (1e-4 for r50, 5e-4 for r100 in the stored configs) is torch
SGD's, added to the gradient of every parameter, with PyTorch's momentum form
(`momentum_style="pytorch"`). arcface_torch also clips the backbone's gradient
norm at 5 and trains in fp16; kerasface does neither by default.
"""

from kerasface.zoo.recipe import INSIGHTFACE, Recipe
from kerasface.zoo.registry import register

MS1MV2 = "MS1MV2 (85,742 identities, 5.8M images; insightface release, research-only licence)"
ARCFACE_PAPER = "Deng et al., ArcFace: Additive Angular Margin Loss for Deep Face Recognition, CVPR 2019 (arXiv 1801.07698)"


@register
def mobilefacenet_arcface():
    """The MobileFaceNet paper's schedule (section 4.1, not checked against a stored copy: see
    docs/reference_settings.md); its larger decay on the last layers is not reproduced."""
    return Recipe(
        name="mobilefacenet_arcface",
        paper="Chen et al., MobileFaceNets, CCBR 2018 (arXiv 1804.07573); " + ARCFACE_PAPER,
        backbone="mobilefacenet",
        input_shape=(112, 112, 3),
        embedding_dim=128,
        num_classes=85742,
        preprocessing=INSIGHTFACE,
        head="arcface",
        head_args={"scale": 64.0, "margin": 0.5},
        optimizer="sgd",
        optimizer_args={"momentum": 0.9, "l2_decay": 4e-5},
        schedule="step",
        schedule_args={"boundaries": [36000, 52000, 58000], "values": [0.1, 0.01, 0.001, 0.0001]},
        batch_size=512,
        steps=60000,
        dataset=MS1MV2,
        reported="LFW 99.55%, AgeDB-30 96.07% (MobileFaceNet paper, Table 2)",
    )


def _iresnet_arcface(depth, l2_decay, reported):
    """arcface_torch configs/ms1mv2_r{depth}.py with train_v2.py: 128 images per GPU on 8 GPUs (the rate 0.1
    is for the global batch of 1024, not scaled in train_v2), polynomial decay (power 2) per step over 20
    epochs, coupled weight decay on every parameter."""
    return Recipe(
        name=f"iresnet{depth}_arcface",
        paper=ARCFACE_PAPER,
        backbone="iresnet",
        backbone_args={"depth": depth},
        input_shape=(112, 112, 3),
        embedding_dim=512,
        num_classes=85742,
        preprocessing=INSIGHTFACE,
        head="arcface",
        head_args={"scale": 64.0, "margin": 0.5},
        optimizer="sgd",
        optimizer_args={"momentum": 0.9, "l2_decay": l2_decay, "momentum_style": "pytorch"},
        schedule="polynomial",
        schedule_args={"unit": "epoch", "learning_rate": 0.1, "decay_steps": 20, "power": 2.0},
        batch_size=1024,
        epochs=20,
        dataset_size=5822653,
        dataset=MS1MV2,
        reported=reported,
    )


@register
def iresnet50_arcface():
    return _iresnet_arcface(50, 1e-4, "arcface_torch ms1mv2_r50: LFW 99.80%, CFP-FP 97.5%, AgeDB-30 98.2% (its model zoo)")


@register
def iresnet100_arcface():
    return _iresnet_arcface(100, 5e-4, "ArcFace paper (LResNet100E-IR, MS1MV2): LFW 99.83%, CFP-FP 98.27%, AgeDB-30 98.28%")
