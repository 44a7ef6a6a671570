"""Faults the heads, centre loss and metric losses must not let pass silently (issues 10 and 11)."""

import keras
import numpy as np
import pytest

from kerasface import heads, layers, losses

pytestmark = pytest.mark.backends

BACKEND = keras.backend.backend()


def label_error(value, num_classes):
    return rf"labels must lie in \[0, num_classes\) = \[0, {num_classes}\).*Received: label={value}\b"


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


# --------------------------------------------------------------------------
# Labels out of range, in eager calls, traced calls and fit (issue 11.3)
# --------------------------------------------------------------------------


def dataset(x, y, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def labelled_model(num_classes, head=None, center_loss=None):
    features = keras.Input((6,))
    labels = keras.Input((), dtype="int32")
    embeddings = keras.layers.Dense(4)(features)
    if center_loss is not None:
        embeddings = center_loss([embeddings, labels])
    logits = (head or heads.NormFace(num_classes))([embeddings, labels])
    model = keras.Model([features, labels], logits)
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def labelled_data(labels, num_classes=10, seed=0):
    """Two batches of 4: all labels valid, except `labels` in the second batch."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 6)).astype("float32")
    y = np.concatenate([rng.integers(0, num_classes, 4), labels]).astype("int32")
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(((x, y), y)).batch(4)


@pytest.mark.parametrize(
    "make_head",
    [
        lambda n: heads.Softmax(n),
        lambda n: heads.CosFace(n),
        lambda n: heads.ArcFace(n),
        lambda n: heads.SphereFace(n),
        lambda n: heads.LSoftmax(n),
        lambda n: heads.CombinedMargin(n, m1=1.2, m2=0.3, m3=0.1),
    ],
)
def test_fit_stops_at_the_first_batch_with_a_label_out_of_range(make_head):
    model = labelled_model(10, head=make_head(10))
    with pytest.raises(Exception, match=label_error(12, 10)):
        model.fit(labelled_data([1, 12, 3, 4]), epochs=1, verbose=0, shuffle=False)


def test_fit_stops_on_a_negative_label_before_the_centre_loss_moves_a_centre():
    center_loss = layers.CenterLoss(10, alpha=0.5)
    model = labelled_model(10, center_loss=center_loss)
    model.fit(labelled_data([1, 2, 3, 4]), epochs=1, verbose=0, shuffle=False)
    centers = to_numpy(center_loss.centers).copy()
    assert np.abs(centers).max() > 0  # the valid batches moved some centres
    with pytest.raises(Exception, match=label_error(-1, 10)):
        model.fit(labelled_data([0, -1, 0, 0], seed=1).skip(1), epochs=1, verbose=0, shuffle=False)
    if BACKEND == "tensorflow":
        np.testing.assert_array_equal(to_numpy(center_loss.centers), centers)
    # (Keras' JAX trainer leaves the variables detached after a step raises, so
    # there they cannot be read back; test_traced_center_loss... covers JAX.)


def test_face_model_fit_on_a_dataset_stops_at_a_bad_label():
    """FaceModel's loss path (head.logits_and_labels, center_loss.loss_and_update) is checked too."""
    from kerasface.zoo.face_model import FaceModel

    features = keras.Input((6,))
    embedder = keras.Model(features, keras.layers.Dense(4)(features))
    model = FaceModel(embedder, heads.CosFace(5, sample_rate=0.8), layers.CenterLoss(5))
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    x = np.random.default_rng(2).normal(size=(8, 6)).astype("float32")
    labels = np.array([0, 1, 2, 3, 4, 0, 7, 1])
    with pytest.raises(Exception, match=label_error(7, 5)):
        model.fit(dataset(x, labels, 4), epochs=1, verbose=0, shuffle=False)


@pytest.mark.parametrize("sample_rate", [1.0, 0.8])
def test_face_model_under_xla_trains_and_a_bad_label_stops_it(sample_rate):
    """XLA (Keras' default on a GPU) compiles no asserts: valid labels train, a bad one gives a NaN
    loss that StopOnNaN stops at, naming labels among the causes."""
    from kerasface.zoo.face_model import FaceModel

    features = keras.Input((6,))
    embedder = keras.Model(features, keras.layers.Dense(4)(features))
    model = FaceModel(embedder, heads.CosFace(5, sample_rate=sample_rate))
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=True)
    x = np.random.default_rng(3).normal(size=(8, 6)).astype("float32")
    history = model.fit(dataset(x, np.array([0, 1, 2, 3, 4, 0, 1, 2]), 4), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"])) and history.history["loss"][1] > 0
    expected = label_error(7, 5) if BACKEND == "jax" else r"loss is not finite.*outside \[0, num_classes\)"
    with pytest.raises(Exception, match=expected):
        model.fit(dataset(x, np.array([0, 1, 2, 3, 4, 0, 7, 1]), 4), epochs=1, verbose=0)


def traced(fn):
    """`fn` compiled as fit compiles a step: tf.function on TensorFlow, jax.jit on JAX."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    import jax

    return jax.jit(fn)


@pytest.mark.parametrize(
    "make_head, label",
    [
        (lambda: heads.ArcFace(10), -1),
        (lambda: heads.ArcFace(10), 10),
        (lambda: heads.CosFace(10, sample_rate=0.5), -1),  # Partial FC mapped -1 to the last class
        (lambda: heads.SphereFace(10), -1),
        (lambda: heads.Softmax(10), -1),
    ],
)
def test_traced_head_call_with_a_bad_label_raises(make_head, label):
    head = make_head()
    head.build((None, 4))
    x = np.ones((3, 4), "float32")
    good, bad = np.array([0, 1, 2], "int32"), np.array([0, label, 2], "int32")
    trainable = [v.value for v in head.trainable_variables]
    non_trainable = [v.value for v in head.non_trainable_variables]

    def loss(trainable, non_trainable, x, y):
        with keras.StatelessScope(state_mapping=list(zip(head.trainable_variables, trainable))
                                  + list(zip(head.non_trainable_variables, non_trainable))):
            logits, targets = head.logits_and_labels(x, y, training=True)
            return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))

    step = traced(loss)
    assert np.isfinite(float(step(trainable, non_trainable, x, good)))
    with pytest.raises(Exception, match=label_error(label, 10)):
        float(step(trainable, non_trainable, x, bad))


def test_traced_center_loss_with_label_minus_one_raises():
    layer = layers.CenterLoss(10)
    layer.build([(None, 4), (None,)])
    centers = layer.centers.value

    def loss(centers, x, y):
        with keras.StatelessScope(state_mapping=[(layer.centers, centers)]):
            return layer.loss_and_update(x, y, training=True)

    step = traced(loss)
    x = np.ones((3, 4), "float32")
    assert np.isfinite(float(step(centers, x, np.array([0, 1, 9], "int32"))))
    with pytest.raises(Exception, match=label_error(-1, 10)):
        float(step(centers, x, np.array([0, -1, 9], "int32")))


@pytest.mark.parametrize("labels, value", [([0, 3], "3"), ([-1, 0], "-1"), ([0.0, 1.5], "1.5")])
def test_eager_calls_raise_value_error_naming_the_label(labels, value):
    x = np.ones((2, 4), "float32")
    for layer in (heads.ArcFace(3), layers.CenterLoss(3)):
        with pytest.raises(ValueError, match=label_error(value, 3)):
            layer([x, np.array(labels)], training=True)


# --------------------------------------------------------------------------
# An all-zero embedding row: finite gradients, also from float16/bfloat16 (issue 11.5)
# --------------------------------------------------------------------------

ALL_HEADS = {
    "softmax": lambda n: heads.Softmax(n),
    "normface": lambda n: heads.NormFace(n),
    "cosface": lambda n: heads.CosFace(n),
    "arcface": lambda n: heads.ArcFace(n),
    "combined": lambda n: heads.CombinedMargin(n, m1=1.2, m2=0.3, m3=0.1),
    "lsoftmax": lambda n: heads.LSoftmax(n, margin=3, lambda_base=1.0),
    "sphereface": lambda n: heads.SphereFace(n, lambda_base=1.0),
}
DTYPES = ["float32", "float16", "bfloat16"]


def low_precision(array, dtype):
    if dtype == "bfloat16":
        import ml_dtypes

        return np.asarray(array, dtype=ml_dtypes.bfloat16)
    return np.asarray(array, dtype=dtype)


def zero_row_batch(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4, 6)).astype("float32") * 2.0
    x[1] = 0.0
    return low_precision(x, dtype), np.array([0, 1, 2, 3])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ALL_HEADS))
def test_zero_embedding_has_finite_gradients(name, dtype):
    from tests.gradients import head_loss_and_grads

    x, y = zero_row_batch(dtype)
    head = ALL_HEADS[name](5)
    loss, logits, grad_x, grad_w = head_loss_and_grads(head, x, y)
    assert str(grad_x.dtype) == dtype  # the gradient of what was fed, not of a float32 copy
    grad_x = grad_x.astype("float32")
    assert np.isfinite(loss) and np.all(np.isfinite(logits))
    assert np.all(np.isfinite(grad_x)) and np.all(np.isfinite(grad_w))
    assert np.abs(grad_x[[0, 2, 3]]).max() > 0 and np.abs(grad_w).max() > 0
    if dtype == "float32":
        # The other rows train as they would without the zero row (the mean is over 4 rows, not 3).
        rows = [0, 2, 3]
        _, _, grad_rest, _ = head_loss_and_grads(head, x[rows], y[rows])
        np.testing.assert_allclose(grad_x[rows] * 4 / 3, grad_rest, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", ["l2", "squared_l2", "angular"])
@pytest.mark.parametrize(
    "make",
    [
        lambda d: losses.TripletSemiHardLoss(margin=0.5, distance=d),
        lambda d: losses.TripletHardLoss(margin=0.5, distance=d),
        lambda d: losses.TripletBatchAllLoss(margin=0.5, distance=d),
    ],
)
def test_zero_embedding_has_finite_triplet_gradients(make, distance, dtype):
    from tests.gradients import value_and_grads

    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4)).astype("float32")
    x[2] = 0.0
    y = np.array([0, 0, 1, 1, 2, 2])
    loss_fn = make(distance)
    value, _, (grad,) = value_and_grads(lambda e: (loss_fn(y, e), 0.0), low_precision(x, dtype))
    assert str(grad.dtype) == dtype
    assert np.isfinite(value) and np.all(np.isfinite(grad.astype("float32")))
    assert np.abs(grad.astype("float32")).max() > 0


def test_angular_distance_to_a_zero_row_is_one():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 2.0]], "float32")
    d = to_numpy(losses.pairwise_distances(x, "angular"))
    np.testing.assert_allclose(d, [[0, 1, 1], [1, 0, 0.2], [1, 0.2, 0]], atol=1e-6)


# --------------------------------------------------------------------------
# Margins outside the range where they penalise (issue 11.6), scale and
# missing labels (issue 11.7)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: heads.ArcFace(10, margin=28.65), r"margin is an angle in radians.*Received: margin=28.65"),
        (lambda: heads.ArcFace(10, margin=3), r"radians.*\[0, 1.682\].*Received: margin=3"),
        (lambda: heads.ArcFace(10, margin=-0.1), r"margin must be a finite number >= 0.*Received: margin=-0.1"),
        (lambda: heads.ArcFace(10, margin=float("nan")), r"Received: margin=nan"),
        (lambda: heads.CosFace(10, margin=1.2), r"\[0, num_classes/\(num_classes-1\)\] = \[0, 1.111\].*margin=1.2"),
        (lambda: heads.CosFace(10, margin=-0.35), r"Received: margin=-0.35"),
        (lambda: heads.CombinedMargin(10, m1=0.5), r"m1 must be >= 1.*Received: m1=0.5"),
        (lambda: heads.CombinedMargin(10, m2=28.65), r"m2 is an angle in radians.*Received: m2=28.65"),
        (lambda: heads.CombinedMargin(10, m2=1.5, m3=0.5), r"radians.*too large.*Received: m2=1.5, m3=0.5"),
        (lambda: heads.CombinedMargin(10, m3=-0.1), r"Received: m3=-0.1"),
        (lambda: heads.LSoftmax(10, margin=0), r"margin must be a positive integer.*Received: margin=0"),
        (lambda: heads.SphereFace(10, margin=2.5), r"Received: margin=2.5"),
        (lambda: heads.SphereFace(10, margin=True), r"Received: margin=True"),
        (lambda: heads.SphereFace(10, scale=30), r"SphereFace takes no scale.*Received: scale=30"),
        (lambda: heads.LSoftmax(10, scale=16.0), r"LSoftmax takes no scale.*Received: scale=16.0"),
    ],
)
def test_bad_margins_and_scales_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: heads.CosFace(10, margin=10 / 9),
        lambda: heads.CosFace(2, margin=2.0),
        lambda: heads.ArcFace(10, margin=np.arccos(-1 / 9)),
        lambda: heads.ArcFace(3, margin=2.0),
        lambda: heads.CombinedMargin(10, m1=4.0, m2=0.0, m3=0.0),
        lambda: heads.CombinedMargin(10, m1=1.35, m2=0.25, m3=0.1),
        lambda: heads.CombinedMargin(5, m1=1.0, m2=1.2, m3=0.0),
    ],
)
def test_accepted_margins_penalise_and_keep_the_target_monotonic(make):
    head = make()
    theta = np.linspace(0.0, np.pi, 4001)
    cosine = np.cos(theta).astype("float32")
    target = to_numpy(head.target_logit(cosine))
    assert np.all(target <= cosine + 1e-6), "the margin must not raise the true class's logit"
    assert np.all(np.diff(target) <= 1e-6), f"the target logit must not increase with the angle: {np.diff(target).max()}"
    # At theta = 0 the target still beats -1/(C-1), the nearest other centre's best cosine.
    assert target[0] >= -1 / (head.num_classes - 1) - 1e-6


def test_center_loss_without_labels_says_how_to_call_it():
    layer = layers.CenterLoss(4)
    with pytest.raises(ValueError, match=r"CenterLoss is called as layer\(\[embeddings, labels\]\).*Received"):
        layer(np.ones((2, 3), "float32"))
    features = keras.Input((3,))
    with pytest.raises(ValueError, match=r"CenterLoss is called as layer\(\[embeddings, labels\]\)"):
        layer(features)
