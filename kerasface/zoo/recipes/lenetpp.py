"""LeNet++ with 2-d features (Wen et al. ECCV 2016, Fig. 2), one recipe per loss.

The solver is the centre-loss paper's MNIST example (ydwen/caffe-face
mnist_example/mnist_solver.prototxt): SGD, momentum 0.9, coupled weight decay
5e-4, lr 0.01 multiplied by 0.8 at iterations 5000 and 8000, 10,000
iterations of 128 images (21 epochs of 60k), centre loss weight 0.01.
caffe-face moves its centres with the solver (lr and momentum); `CenterLoss`
uses the paper's eq. 4 with alpha = 0.5 instead.

These recipes are measured here on Fashion-MNIST (same 28x28 grey format,
installable offline), and the margin settings are ours: no paper trained
CosFace or ArcFace on 2-d features. The heads on normalised features train
with Adam on the same iterations: with SGD at 0.01 their 2-d features hardly
move in a short run (10k images x 3 epochs: NormFace 10 %, ArcFace 11 % test
accuracy; Adam 1e-3: 43 %, 53 %).
"""

from kerasface.zoo.recipe import SPHEREFACE, Recipe
from kerasface.zoo.registry import register

CENTER_LOSS_PAPER = "Wen et al., A Discriminative Feature Learning Approach for Deep Face Recognition, ECCV 2016"


def _lenetpp(name, head, reported="", **changes):
    recipe = Recipe(
        name=name,
        paper=CENTER_LOSS_PAPER,
        backbone="lenet_plus_plus",
        input_shape=(28, 28, 1),
        embedding_dim=2,
        num_classes=10,
        preprocessing=SPHEREFACE,
        head=head,
        optimizer="sgd",
        optimizer_args={"momentum": 0.9, "l2_decay": 5e-4},
        schedule="step",
        schedule_args={"boundaries": [5000, 8000], "values": [0.01, 0.008, 0.0064]},
        batch_size=128,
        steps=10000,
        dataset_size=60000,
        dataset="MNIST in the paper; Fashion-MNIST here (60k train / 10k test, MIT licence)",
        reported=reported,
    )
    return recipe.replace(**changes) if changes else recipe


@register
def lenetpp_softmax():
    return _lenetpp("lenetpp_softmax", "softmax", "MNIST 2-d features: the paper's Fig. 3 (softmax only)")


@register
def lenetpp_center():
    return _lenetpp(
        "lenetpp_center",
        "softmax",
        "MNIST 2-d features: the paper's Fig. 3 (softmax + centre loss, lambda swept 0.0001-1); "
        "weight 0.01 as caffe-face's mnist_example",
        center_loss_weight=0.01,
        center_loss_alpha=0.5,
    )


@register
def lenetpp_sphereface():
    return _lenetpp(
        "lenetpp_sphereface",
        "sphereface",
        "SphereFace's 2-d MNIST visualisation (paper Fig. 2) uses m = 1..4",
        head_args={"margin": 4, "lambda_base": 1000.0, "lambda_gamma": 0.12, "lambda_power": 1.0, "lambda_min": 5.0},
    )


ADAM = dict(
    optimizer="adam",
    optimizer_args={},
    schedule_args={"boundaries": [5000, 8000], "values": [1e-3, 1e-4, 1e-5]},
)


@register
def lenetpp_normface():
    return _lenetpp("lenetpp_normface", "normface", head_args={"scale": 16.0}, **ADAM)


@register
def lenetpp_cosface():
    return _lenetpp("lenetpp_cosface", "cosface", head_args={"scale": 16.0, "margin": 0.2}, **ADAM)


@register
def lenetpp_arcface():
    return _lenetpp("lenetpp_arcface", "arcface", head_args={"scale": 16.0, "margin": 0.3}, **ADAM)
