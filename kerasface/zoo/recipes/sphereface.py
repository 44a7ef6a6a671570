"""SphereFace-4/10/20/36/64 (Liu et al. CVPR 2017) and CosFace on sphere20.

The solver is wy1iu/sphereface's train/code/sphereface_solver.prototxt: SGD,
momentum 0.9, weight decay 5e-4 added to the gradient (Caffe), not on biases
(`decay_mult: 0` in sphereface_model.prototxt); lr 0.1, x0.1 at iterations
16,000 and 24,000, 28,000 iterations. The prototxt's batch of 256 runs on each
of the 2 GPUs of sphereface_train.sh, so the rate is for a global batch of 512;
`train(batch_size=256)` halves it and doubles the iterations. The A-Softmax
lambda follows margin_inner_product_layer.cpp: base 1000, gamma 0.12, power 1,
minimum 5, the iteration counted before lambda is computed. Caffe trains biases
at twice the learning rate (`lr_mult: 2`); kerasface trains them at the base
rate. Only SphereFace-20 has a released solver; the other depths use it too.
CosFace (s = 64, m = 0.35, the paper's values, not checked against a stored
copy) trains on the same network and solver.
"""

from kerasface.zoo.recipe import SPHEREFACE, Recipe
from kerasface.zoo.registry import register

BIAS = r"(^|/)bias$"
CASIA_WEBFACE = "CASIA-WebFace (10,575 identities, 494k images; 10,572 after the SphereFace clean-up)"


def _sphereface(depth, reported):
    """wy1iu/sphereface train/code/sphereface_solver.prototxt and sphereface_model.prototxt (SphereFace-20;
    the other depths are held to the same solver, which is all the release gives)."""
    return Recipe(
        name=f"sphereface{depth}",
        paper="Liu et al., SphereFace: Deep Hypersphere Embedding for Face Recognition, CVPR 2017 (arXiv 1704.08063)",
        backbone="sphereface",
        backbone_args={"depth": depth},
        input_shape=(112, 96, 3),
        embedding_dim=512,
        num_classes=10572,
        preprocessing=SPHEREFACE,
        head="sphereface",
        head_args={"margin": 4, "lambda_base": 1000.0, "lambda_gamma": 0.12, "lambda_power": 1.0, "lambda_min": 5.0},
        optimizer="sgd",
        # Caffe's coupled decay; biases have decay_mult 0 (train/code/sphereface_model.prototxt), PReLU slopes
        # and the fc6 class weights are decayed.
        optimizer_args={"momentum": 0.9, "l2_decay": 5e-4, "l2_exclude": [BIAS]},
        schedule="step",
        schedule_args={"boundaries": [16000, 24000], "values": [0.1, 0.01, 0.001]},
        # 256 per GPU on 2 GPUs (sphereface_train.sh 0,1): the rate 0.1 is for a global batch of 512.
        batch_size=512,
        steps=28000,
        dataset=CASIA_WEBFACE,
        reported=reported,
    )


@register
def sphereface4():
    return _sphereface(4, "the paper's Table 4 (A-Softmax m=4 by depth)")


@register
def sphereface10():
    return _sphereface(10, "the paper's Table 4 (A-Softmax m=4 by depth)")


@register
def sphereface20():
    return _sphereface(20, "LFW 99.30% (official Caffe model, sphereface repository)")


@register
def sphereface36():
    return _sphereface(36, "the paper's Table 4 (A-Softmax m=4 by depth)")


@register
def sphereface64():
    return _sphereface(64, "LFW 99.42%, YTF 95.0% (paper, Table 3)")


@register
def cosface20():
    return _sphereface(20, "").replace(
        name="cosface20",
        paper="Wang et al., CosFace: Large Margin Cosine Loss for Deep Face Recognition, CVPR 2018 (arXiv 1801.09414)",
        head="cosface",
        head_args={"scale": 64.0, "margin": 0.35},
        reported="the paper trains a 64-layer network on its own 5M-image set: LFW 99.73%; on CASIA-WebFace "
        "(its Table 9 protocol) LFW 99.33%",
    )
