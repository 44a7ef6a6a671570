"""Behaviour of the heads beyond the fixtures: annealing, saving, precision, errors."""

import math

import keras
import numpy as np
import pytest

from kerasface import heads, layers
from kerasface.heads.lsoftmax import angular_margin_psi
from tests.gradients import head_loss_and_grads

pytestmark = pytest.mark.backends

ALL_HEADS = {
    "softmax": lambda n: heads.Softmax(n),
    "lsoftmax": lambda n: heads.LSoftmax(n, margin=3),
    "sphereface": lambda n: heads.SphereFace(n),
    "normface": lambda n: heads.NormFace(n),
    "cosface": lambda n: heads.CosFace(n),
    "arcface": lambda n: heads.ArcFace(n),
    "combined": lambda n: heads.CombinedMargin(n, m1=1.2, m2=0.3, m3=0.1),
}


def test_psi_is_monotonic_and_matches_cos_m_theta():
    theta = np.linspace(0, math.pi, 2001)
    for m in (1, 2, 3, 4):
        psi = keras.ops.convert_to_numpy(angular_margin_psi(np.cos(theta).astype("float32"), m))
        k = np.minimum(np.floor(m * theta / math.pi), m - 1)
        np.testing.assert_allclose(psi, (-1) ** k * np.cos(m * theta) - 2 * k, atol=2e-3)
        assert np.all(np.diff(psi) <= 1e-4), f"psi not decreasing for m={m}"


def test_sphereface_lambda_anneals_with_the_counter():
    head = heads.SphereFace(3)
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    y = np.array([0, 1, 2, 0])
    head([x, y], training=True)
    assert int(keras.ops.convert_to_numpy(head.iteration)) == 1
    np.testing.assert_allclose(float(head.annealing_lambda(0)), 1000.0)
    np.testing.assert_allclose(float(head.annealing_lambda(100)), 1000.0 / 13.0, rtol=1e-6)
    np.testing.assert_allclose(float(head.annealing_lambda(10**6)), 5.0)
    # Inference never advances the counter.
    head([x, y], training=False)
    head(x)
    assert int(keras.ops.convert_to_numpy(head.iteration)) == 1


def test_annealed_target_is_the_weighted_mean_of_cos_and_psi():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 4)).astype("float32"), np.array([0, 1, 2, 0, 1, 2])
    head = heads.LSoftmax(3, margin=2, lambda_base=10.0, lambda_gamma=0.0, lambda_min=0.0)
    logits = keras.ops.convert_to_numpy(head([x, y], training=True))
    w = keras.ops.convert_to_numpy(head.kernel)  # (classes, dim): one row per class
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
    norms = np.linalg.norm(x, axis=1, keepdims=True) * np.linalg.norm(w, axis=1)
    theta = np.arccos(np.clip(cos, -1, 1))
    k = np.floor(2 * theta / math.pi)
    psi = (-1) ** k * np.cos(2 * theta) - 2 * k
    expected = cos * norms
    rows = np.arange(6)
    expected[rows, y] = (norms * (10 * cos + psi) / 11)[rows, y]
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(ALL_HEADS))
def test_eval_mode_returns_margin_free_logits(name):
    head = ALL_HEADS[name](4)
    if name in ("lsoftmax", "sphereface"):
        head = type(head)(4, lambda_base=1.0)
    x = np.random.default_rng(2).normal(size=(5, 3)).astype("float32")
    y = np.array([0, 1, 2, 3, 0])
    plain = keras.ops.convert_to_numpy(head(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(head([x, y], training=False)), plain)
    if name not in ("softmax", "normface"):
        trained = keras.ops.convert_to_numpy(head([x, y], training=True))
        rows = np.arange(5)
        assert np.all(trained[rows, y] < plain[rows, y]), "a margin must lower the target logit"
        mask = np.ones_like(plain, bool)
        mask[rows, y] = False
        np.testing.assert_allclose(trained[mask], plain[mask], rtol=1e-5)


@pytest.mark.parametrize("name", sorted(ALL_HEADS))
def test_config_and_keras_file_round_trip(name, tmp_path):
    head = ALL_HEADS[name](6)
    clone = type(head).from_config(head.get_config())
    assert clone.get_config() == head.get_config()

    features = keras.Input((4,))
    labels = keras.Input((), dtype="int32")
    model = keras.Model([features, labels], head([features, labels]))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(3).normal(size=(3, 4)).astype("float32")
    y = np.array([0, 5, 2])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded([x, y])), keras.ops.convert_to_numpy(model([x, y])), rtol=1e-6
    )


def test_model_saved_under_mixed_float16_reloads(tmp_path):
    keras.config.set_dtype_policy("mixed_float16")
    features = keras.Input((8,))
    labels = keras.Input((), dtype="int32")
    embeddings = keras.layers.Dense(4)(features)
    embeddings = layers.CenterLoss(5)([embeddings, labels])
    logits = heads.ArcFace(5)([embeddings, labels])
    model = keras.Model([features, labels], logits)
    assert logits.dtype == "float32"
    x, y = np.ones((2, 8), "float32"), np.array([1, 3])
    expected = keras.ops.convert_to_numpy(model([x, y]))
    model.save(tmp_path / "mixed.keras")
    keras.config.set_dtype_policy("float32")
    loaded = keras.saving.load_model(tmp_path / "mixed.keras")
    dense = next(layer for layer in loaded.layers if isinstance(layer, keras.layers.Dense))
    assert dense.dtype_policy.name == "mixed_float16"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded([x, y])), expected, rtol=1e-3)


@pytest.mark.parametrize("name", ["lsoftmax", "sphereface", "cosface", "arcface", "combined", "normface"])
def test_finite_at_cos_plus_minus_one_with_100k_classes_in_float16(name):
    keras.config.set_dtype_policy("mixed_float16")
    num_classes, dim = 100_000, 8
    head = ALL_HEADS[name](num_classes)
    head.build((4, dim))
    assert head.compute_dtype == "float32"
    kernel = np.random.default_rng(4).normal(size=(num_classes, dim)).astype("float32")
    head.kernel.assign(kernel)
    # Rows 0-1 sit exactly on their class weight (cos = 1), rows 2-3 exactly opposite (cos = -1).
    x = np.stack([kernel[7], kernel[9], -kernel[11], -kernel[13]]).astype("float16")
    y = np.array([7, 9, 11, 13])
    loss, logits, grad_x, grad_w = head_loss_and_grads(head, x, y)
    assert grad_x.dtype == np.float16  # fed as float16, not a float32 copy
    assert np.isfinite(loss) and np.all(np.isfinite(logits))
    assert np.all(np.isfinite(grad_x)) and np.all(np.isfinite(grad_w))
    assert np.abs(grad_w).max() > 0


def test_arcface_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 4))
    y = np.array([0, 1, 2])
    head = heads.ArcFace(3, scale=4.0, margin=0.5)
    head.build(x.shape)
    _, _, grad_x, _ = head_loss_and_grads(head, x, y)
    w = keras.ops.convert_to_numpy(head.kernel).astype("float64")

    def loss(xs):
        cos = (xs / np.linalg.norm(xs, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
        theta = np.arccos(cos[np.arange(3), y])
        logits = cos.copy()
        logits[np.arange(3), y] = np.where(
            theta <= math.pi - 0.5, np.cos(theta + 0.5), np.cos(theta) - 0.5 * math.sin(0.5)
        )
        logits *= 4.0
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -logp[np.arange(3), y].mean()

    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = 1e-6
        numeric[index] = (loss(x + step) - loss(x - step)) / 2e-6
    np.testing.assert_allclose(grad_x, numeric, atol=2e-4)


def test_head_trained_by_fit_lowers_the_loss():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 5, 256)
    x = (rng.normal(size=(5, 10))[y] + 0.5 * rng.normal(size=(256, 10))).astype("float32")
    features = keras.Input((10,))
    labels = keras.Input((), dtype="int32")
    embeddings = keras.layers.Dense(8)(features)
    embeddings = layers.CenterLoss(5, weight=0.01)([embeddings, labels])
    logits = heads.SphereFace(5, lambda_base=100.0)([embeddings, labels])
    model = keras.Model([features, labels], logits)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    centers = keras.ops.convert_to_numpy(model.layers[-2].centers).copy()
    history = model.fit([x, y], y, batch_size=32, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses
    assert int(keras.ops.convert_to_numpy(model.layers[-1].iteration)) == 4 * 8
    assert not np.allclose(keras.ops.convert_to_numpy(model.layers[-2].centers), centers)
    assert all(v is not model.layers[-2].centers for v in model.trainable_variables)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: heads.LSoftmax(3, margin=2.5), "margin must be a positive integer"),
        (lambda: heads.SphereFace(3, margin=0), "margin must be a positive integer"),
        (lambda: heads.ArcFace(0), "num_classes"),
        (lambda: heads.CosFace(3, scale=-1.0), "scale"),
        (lambda: heads.CombinedMargin(3, m1=0.0), "m1"),
        (lambda: layers.CenterLoss(3, alpha=2.0), "alpha"),
    ],
)
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("head", [heads.ArcFace(3), heads.Softmax(3), heads.SphereFace(3)])
def test_bad_inputs_raise(head):
    x = np.ones((2, 4), "float32")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, num_classes\)"):
        head([x, np.array([0, 3])], training=True)
    with pytest.raises(ValueError, match="labels must lie"):
        head([x, np.array([-1, 0])], training=True)
    with pytest.raises(ValueError, match="rank 2"):
        head([np.ones((2, 4, 1), "float32"), np.array([0, 1])], training=True)


def test_nan_embeddings_raise_when_checked():
    head = heads.CosFace(3, check_numerics=True)
    x = np.array([[1.0, np.nan], [0.0, 1.0]], "float32")
    with pytest.raises(ValueError, match="NaN"):
        head([x, np.array([0, 1])], training=True)


def test_center_loss_labels_out_of_range():
    layer = layers.CenterLoss(3)
    with pytest.raises(ValueError, match="labels must lie"):
        layer([np.ones((2, 4), "float32"), np.array([0, 3])], training=True)
