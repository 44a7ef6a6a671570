"""SphereFace and L-Softmax lambda annealing against the reference Caffe layers.

`caffe_forward` re-implements, in NumPy, `Forward_cpu` of
- wy1iu/sphereface, tools/caffe-sphereface/src/caffe/layers/margin_inner_product_layer.cpp
  (A-Softmax: the weight rows normalised in place, logits `x'w`), and
- wy1iu/LargeMargin_Softmax_Loss, src/caffe/layers/largemargin_inner_product_layer.cpp
  (L-Softmax: `cos = x'w / (|x||w| + 1e-9)`, target scaled by `|x||w|`),
with their sign-based formulas for cos(m theta) and its branches (`sign_0` ... `sign_4`).
Both layers start with `iter_ += 1` and then set
`lambda = max(base * (1 + gamma * iter_)^-power, lambda_min)`.
"""

import keras
import numpy as np
import pytest

from kerasface import heads

pytestmark = pytest.mark.backends


def caffe_lambda(iteration, base, gamma, power, lambda_min):
    return max(base * (1.0 + gamma * iteration) ** (-power), lambda_min)


def caffe_forward(x, weight, labels, margin, lam, normalise_weight):
    """One Forward of the Caffe layer; `weight` is Caffe's (num_output, dim) blob."""
    x, weight = x.astype("float64"), weight.astype("float64")
    if normalise_weight:  # margin_inner_product_layer.cpp: "normalize weight"
        weight = weight / np.sqrt((weight * weight).sum(axis=1, keepdims=True))
        norms = np.sqrt((x * x).sum(axis=1, keepdims=True)) * np.ones((1, len(weight)))
        cos = (x @ weight.T) / norms
    else:  # largemargin_inner_product_layer.cpp: xw_norm_product_ (+1e-9 in the divisor only)
        norms = np.sqrt((x * x).sum(axis=1, keepdims=True)) * np.sqrt((weight * weight).sum(axis=1))[None]
        cos = (x @ weight.T) / (norms + 1e-9)
    sign_0 = np.sign(cos)
    if margin == 1:
        return x @ weight.T
    if margin == 2:
        psi = 2.0 * sign_0 * cos**2 - 1.0
    elif margin == 3:
        sign_1 = np.sign(np.abs(cos) - 0.5)
        sign_2 = sign_0 * (1.0 + sign_1) - 2.0
        psi = sign_1 * (4.0 * cos**3 - 3.0 * cos) + sign_2
    elif margin == 4:
        sign_3 = sign_0 * np.sign(2.0 * cos**2 - 1.0)
        sign_4 = 2.0 * sign_0 + sign_3 - 3.0
        psi = sign_3 * (8.0 * cos**4 - 8.0 * cos**2 + 1.0) + sign_4
    top = x @ weight.T
    rows = np.arange(len(labels))
    top[rows, labels] = norms[rows, labels] * psi[rows, labels]
    top = top + lam * (x @ weight.T)
    return top / (1.0 + lam)


def run_steps(head, x, y, steps):
    """Trains `head` for `steps` calls; returns its kernel (one row per class, as Caffe's blob) and the lambda and logits of each."""
    head.build(x.shape)
    kernel = keras.ops.convert_to_numpy(head.kernel)
    lambdas, logits = [], []
    for _ in range(steps):
        logits.append(keras.ops.convert_to_numpy(head([x, y], training=True)))
        lambdas.append(float(keras.ops.convert_to_numpy(head.annealing_lambda())))
    return kernel, np.array(lambdas), logits


SPHEREFACE_PROTOTXT = dict(base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0)
FAST = dict(base=10.0, gamma=1.0, power=1.0, lambda_min=0.5)
FAST_ARGS = dict(lambda_base=10.0, lambda_gamma=1.0, lambda_power=1.0, lambda_min=0.5)


@pytest.mark.parametrize(
    "make, margin, anneal, normalise",
    [
        (lambda: heads.SphereFace(5), 4, SPHEREFACE_PROTOTXT, True),
        (lambda: heads.SphereFace(5, margin=4, **FAST_ARGS), 4, FAST, True),
        (lambda: heads.SphereFace(5, margin=3, **FAST_ARGS), 3, FAST, True),
        (lambda: heads.LSoftmax(5, margin=2, **FAST_ARGS), 2, FAST, False),
        (lambda: heads.LSoftmax(5, margin=4, **FAST_ARGS), 4, FAST, False),
    ],
)
def test_first_steps_match_the_caffe_forward(make, margin, anneal, normalise):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype("float32") * 3.0
    y = np.array([0, 1, 2, 3, 4, 0])
    weight, lambdas, logits = run_steps(make(), x, y, steps=4)
    expected = [caffe_lambda(t, **anneal) for t in (1, 2, 3, 4)]
    np.testing.assert_allclose(lambdas, expected, rtol=1e-5)
    if anneal is FAST:  # 5, 3.33, 2.5, 2: each step's lambda differs from the last (not 10, 5, 3.33, 2.5)
        np.testing.assert_allclose(lambdas, [5.0, 10 / 3, 2.5, 2.0], rtol=1e-5)
    for step, lam in enumerate(expected):
        want = caffe_forward(x, weight, y, margin, lam, normalise)
        np.testing.assert_allclose(logits[step], want, rtol=1e-4, atol=1e-4)
    # The lambda the step before would have used gives other target logits.
    stale = caffe_forward(x, weight, y, margin, caffe_lambda(0, **anneal), normalise)
    assert np.abs(logits[0] - stale).max() > 1e-3


def test_sphereface_lambda_sequence_over_training():
    head = heads.SphereFace(3)
    head.build((None, 2))
    steps = np.array([0, 1, 2, 10, 100, 1658, 1659, 10**5])
    got = keras.ops.convert_to_numpy(head.annealing_lambda(steps))
    np.testing.assert_allclose(got, [caffe_lambda(t, **SPHEREFACE_PROTOTXT) for t in steps], rtol=1e-5)
    assert got[1] == pytest.approx(1000 / 1.12, rel=1e-6)


def test_first_fit_step_uses_lambda_of_step_one():
    """Through `fit` (tf.function / jax.jit), the first step's loss is that of lambda(1)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 4)).astype("float32") * 3.0
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    features = keras.Input((4,))
    labels = keras.Input((), dtype="int32")
    head = heads.SphereFace(3, lambda_base=10.0, lambda_gamma=1.0, lambda_min=0.0)
    model = keras.Model([features, labels], head([features, labels]))
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    weight = keras.ops.convert_to_numpy(head.kernel)
    loss = model.fit([x, y], y, batch_size=8, epochs=1, verbose=0).history["loss"][0]
    assert int(keras.ops.convert_to_numpy(head.iteration)) == 1

    def cross_entropy(lam):
        logits = caffe_forward(x, weight, y, 4, lam, True)
        logits = logits - logits.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(8), y])

    np.testing.assert_allclose(loss, cross_entropy(5.0), rtol=1e-4)  # lambda(1) = 10 / 2
    assert abs(cross_entropy(10.0) - cross_entropy(5.0)) > 1e-2


def test_lsoftmax_defaults_are_the_l_softmax_release():
    """wy1iu/LargeMargin_Softmax_Loss, myexamples/cifar10/model/cifar_train_test.prototxt:
    largemargin_inner_product_param { type: DOUBLE base: 1000 gamma: 0.00002 power: 45
    iteration: 0 } (lambda_min: the proto default 0, src/caffe/proto/caffe.proto)."""
    head = heads.LSoftmax(10)
    assert (head.margin, head.lambda_base, head.lambda_gamma, head.lambda_power, head.lambda_min) == (
        2,
        1000.0,
        2e-5,
        45.0,
        0.0,
    )
    head.build((None, 4))
    got = keras.ops.convert_to_numpy(head.annealing_lambda(np.array([1, 5000, 8296, 50000])))
    np.testing.assert_allclose(got, [1000 * (1 + 2e-5 * t) ** -45 for t in (1, 5000, 8296, 50000)], rtol=1e-4)


def test_sphereface_defaults_are_the_sphereface_release():
    """wy1iu/sphereface, train/code/sphereface_model.prototxt: margin_inner_product_param
    { type: QUADRUPLE base: 1000 gamma: 0.12 power: 1 lambda_min: 5 iteration: 0 }."""
    head = heads.SphereFace(10)
    assert (head.margin, head.lambda_base, head.lambda_gamma, head.lambda_power, head.lambda_min) == (
        4,
        1000.0,
        0.12,
        1.0,
        5.0,
    )
