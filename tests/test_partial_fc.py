"""Partial FC (An et al., CVPR 2022): margin heads that train on a sample of the classes."""

import math

import keras
import numpy as np
import pytest

from kerasface import heads, zoo
from kerasface import optimizers as kf_optimizers
from tests.gradients import head_loss_and_grads, value_and_grads

pytestmark = pytest.mark.backends

MARGIN_HEADS = {
    "lsoftmax": lambda n, **kw: heads.LSoftmax(n, margin=3, lambda_base=10.0, **kw),
    "sphereface": lambda n, **kw: heads.SphereFace(n, **kw),
    "normface": lambda n, **kw: heads.NormFace(n, **kw),
    "cosface": lambda n, **kw: heads.CosFace(n, **kw),
    "arcface": lambda n, **kw: heads.ArcFace(n, **kw),
    "combined": lambda n, **kw: heads.CombinedMargin(n, m1=1.2, m2=0.3, m3=0.1, **kw),
}


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def seed_state(head):
    return to_numpy(head.seed_generator.state).copy()


def drawn_classes(head, labels, state):
    """The classes `head` sampled from seed `state`, re-drawn (the state then moves on)."""
    head.seed_generator.state.assign(state)
    return to_numpy(head.sample_classes(labels))


def stateless_logits_and_labels(head, trainable, non_trainable, x, labels):
    """`head.logits_and_labels(x, labels, training=True)` on the given variable values
    (a stateless call: the seed state is read, not advanced)."""
    mapping = list(zip(head.trainable_variables, trainable)) + list(zip(head.non_trainable_variables, non_trainable))
    with keras.StatelessScope(state_mapping=mapping):
        return head.logits_and_labels(x, labels, training=True)


def partial_fc_loss_and_grads(head, embeddings, labels):
    """Like `head_loss_and_grads`, with the labels mapped to the sampled classes;
    the seed state is read, not advanced."""
    if not head.built:
        head.build(embeddings.shape)
    non_trainable = [v.value for v in head.non_trainable_variables]

    def loss(x, kernel):
        logits, targets = stateless_logits_and_labels(head, [kernel], non_trainable, x, labels)
        ce = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        return keras.ops.mean(ce), logits

    value, logits, (_, grad_kernel) = value_and_grads(loss, embeddings, to_numpy(head.kernel))
    return value, logits, grad_kernel


def batch(num_classes, size, dim, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(size, dim)).astype("float32"), rng.integers(0, num_classes, size)


def twin_heads(name, num_classes, dim, **kwargs):
    """A full head and a sampling one (`kwargs`) of the same kind with the same kernel."""
    full, sampled = MARGIN_HEADS[name](num_classes), MARGIN_HEADS[name](num_classes, **kwargs)
    full.build((None, dim))
    sampled.build((None, dim))
    sampled.kernel.assign(full.kernel)
    return full, sampled


def arcface_reference_loss(x, kernel, labels, scale, margin):
    """Mean ArcFace cross-entropy over the rows (classes) of `kernel`, in float64 NumPy."""
    x, kernel = x.astype("float64"), kernel.astype("float64")
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (kernel / np.linalg.norm(kernel, axis=1, keepdims=True)).T
    rows = np.arange(len(labels))
    theta = np.arccos(np.clip(cos[rows, labels], -1, 1))
    logits = cos.copy()
    logits[rows, labels] = np.where(
        theta <= math.pi - margin, np.cos(theta + margin), np.cos(theta) - margin * math.sin(margin)
    )
    logits *= scale
    top = logits.max(axis=1, keepdims=True)
    log_sum = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return np.mean(log_sum - logits[rows, labels]), logits


@pytest.mark.parametrize("name", sorted(MARGIN_HEADS))
def test_sample_rate_one_is_the_full_head(name):
    full, sampled = twin_heads(name, 7, 5, sample_rate=1.0)
    assert not sampled.samples_classes and sampled.seed_generator is None
    x, y = batch(7, 6, 5, seed=0)
    expected = head_loss_and_grads(full, x, y)
    received = head_loss_and_grads(sampled, x, y)
    np.testing.assert_allclose(received[0], expected[0], rtol=1e-6)
    for got, want in zip(received[1:], expected[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(MARGIN_HEADS))
def test_sampled_logits_are_the_full_heads_logits_of_the_sampled_classes(name):
    full, sampled = twin_heads(name, 40, 6, sample_rate=0.3, seed=1)
    x, y = batch(40, 9, 6, seed=1)
    state = seed_state(sampled)
    logits, labels = sampled.logits_and_labels(x, y, training=True)
    classes = drawn_classes(sampled, y, state)
    assert logits.shape == (9, 12)
    np.testing.assert_array_equal(classes[to_numpy(labels)], y)
    full_logits = to_numpy(full([x, y], training=True))
    np.testing.assert_allclose(to_numpy(logits), full_logits[:, classes], rtol=1e-5, atol=1e-5)


def test_every_positive_is_sampled_first_and_negatives_are_uniform():
    head = heads.ArcFace(1000, sample_rate=0.1, seed=2)
    head.build((None, 4))
    assert head.num_sampled == 100
    rng = np.random.default_rng(2)
    for _ in range(5):
        y = rng.integers(0, 1000, 64)
        classes = to_numpy(head.sample_classes(y))
        positives = np.unique(y)
        assert classes.shape == (100,) and len(np.unique(classes)) == 100
        np.testing.assert_array_equal(classes[: len(positives)], positives)
        assert np.all(np.diff(classes[len(positives) :]) > 0)  # negatives in order too
        assert classes.min() >= 0 and classes.max() < 1000
        np.testing.assert_array_equal(to_numpy(head.sampled_labels(y)), np.searchsorted(positives, y))

    # 10 fixed positives, 90 of the 990 others per draw: each negative in 200 draws ~ Binomial(200, 1/11).
    y = np.arange(0, 1000, 100)
    counts = np.zeros(1000, int)
    for _ in range(200):
        counts[to_numpy(head.sample_classes(y))] += 1
    negatives = np.delete(counts, y)
    assert np.all(counts[y] == 200)
    assert negatives.sum() == 200 * 90
    assert negatives.min() >= 3 and negatives.max() <= 40, (negatives.min(), negatives.max())
    assert abs(negatives.std() - math.sqrt(200 / 11 * 10 / 11)) < 0.6, negatives.std()


def test_sample_size_is_static_when_traced():
    head = heads.CosFace(1000, sample_rate=0.1)
    head.build((None, 8))
    x, y = batch(1000, 32, 8, seed=3)
    variables = ([v.value for v in head.trainable_variables], [v.value for v in head.non_trainable_variables])
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        @tf.function
        def logits(x, y):
            return stateless_logits_and_labels(head, *variables, x, y)[0]

        traced = logits.get_concrete_function(
            tf.TensorSpec((None, 8), "float32"), tf.TensorSpec((None,), "int32")
        ).structured_outputs
        assert traced.shape.as_list() == [None, 100]
    else:
        import jax

        def logits(trainable, non_trainable, x, y):
            return stateless_logits_and_labels(head, trainable, non_trainable, x, y)[0]

        assert jax.eval_shape(logits, *variables, x, y).shape == (32, 100)
        assert jax.jit(logits)(*variables, x, y).shape == (32, 100)


def test_partial_fc_loss_and_gradients_match_numpy():
    scale, margin = 30.0, 0.5
    head = heads.ArcFace(1000, scale=scale, margin=margin, sample_rate=0.1, seed=4)
    x, y = batch(1000, 32, 16, seed=4)
    y[:8] = y[8:16]  # repeated classes
    head.build(x.shape)
    state = seed_state(head)
    loss, logits, grad_kernel = partial_fc_loss_and_grads(head, x, y)
    classes = drawn_classes(head, y, state)
    kernel = to_numpy(head.kernel)

    targets = np.argmax(classes[None, :] == y[:, None], axis=1)
    expected_loss, expected_logits = arcface_reference_loss(x, kernel[classes], targets, scale, margin)
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)

    unsampled = np.setdiff1d(np.arange(1000), classes)
    assert np.all(grad_kernel[unsampled] == 0)
    # The sampled rows get the gradients of a 100-class head on those rows.
    small = heads.ArcFace(100, scale=scale, margin=margin)
    small.build(x.shape)
    small.kernel.assign(kernel[classes])
    small_loss, _, _, small_grad = head_loss_and_grads(small, x, targets)
    np.testing.assert_allclose(loss, small_loss, rtol=1e-6)
    np.testing.assert_allclose(grad_kernel[classes], small_grad, rtol=1e-5, atol=1e-7)
    assert np.all(np.abs(grad_kernel[classes]).max(axis=1) > 0)


def two_optimizer_steps(optimizer):
    """Two dense steps of a sampling head on different batches (a Keras optimiser given the
    kernel's full gradient, as Keras' own train_step does): (kernels before/after each, samples)."""
    head = heads.CosFace(200, scale=16.0, sample_rate=0.05, seed=5)
    head.build((None, 8))
    optimizer.build([head.kernel])
    kernels, samples = [to_numpy(head.kernel).copy()], []
    for seed in (5, 6):
        x, y = batch(200, 4, 8, seed)
        _, _, grad_kernel = partial_fc_loss_and_grads(head, x, y)
        samples.append(to_numpy(head.sample_classes(y)))  # the step's classes; advances the seed
        optimizer.apply([grad_kernel], [head.kernel])
        kernels.append(to_numpy(head.kernel).copy())
    return kernels, samples


@pytest.mark.parametrize(
    "make, sampled_before_moves",
    [
        (lambda: keras.optimizers.SGD(0.5), False),
        (lambda: keras.optimizers.SGD(0.5, momentum=0.9), True),
        (lambda: keras.optimizers.Adam(0.01), True),
    ],
)
def test_dense_steps_leave_never_sampled_rows_alone(make, sampled_before_moves):
    (w0, w1, w2), (first, second) = two_optimizer_steps(make())
    never = np.setdiff1d(np.arange(200), np.union1d(first, second))
    earlier_only = np.setdiff1d(first, second)
    assert len(never) > 150 and len(earlier_only) > 0
    not_first = np.setdiff1d(np.arange(200), first)
    np.testing.assert_array_equal(w1[not_first], w0[not_first])
    np.testing.assert_array_equal(w2[never], w0[never])
    assert np.all(np.any(w1[first] != w0[first], axis=1))
    moved = np.any(w2[earlier_only] != w1[earlier_only], axis=1)
    assert np.all(moved) if sampled_before_moves else not np.any(moved)


def test_dense_momentum_moves_a_row_sampled_before_by_its_velocity():
    (w0, w1, w2), (first, second) = two_optimizer_steps(keras.optimizers.SGD(0.5, momentum=0.9))
    earlier_only = np.setdiff1d(first, second)
    # Keras SGD: v <- 0.9 v - lr g, w <- w + v; a zero gradient leaves w2 - w1 = 0.9 (w1 - w0).
    np.testing.assert_allclose(w2[earlier_only] - w1[earlier_only], 0.9 * (w1 - w0)[earlier_only], atol=1e-6)


def test_dense_weight_decay_shrinks_unsampled_rows_without_changing_their_cosines():
    (w0, w1, _), (first, _) = two_optimizer_steps(keras.optimizers.SGD(0.5, weight_decay=0.01))
    unsampled = np.setdiff1d(np.arange(200), first)
    np.testing.assert_allclose(w1[unsampled], w0[unsampled] * (1 - 0.5 * 0.01), rtol=1e-6)


def test_eval_calls_use_every_class_and_the_original_labels():
    full, sampled = twin_heads("arcface", 50, 6, sample_rate=0.2)
    x, y = batch(50, 5, 6, seed=7)
    logits, labels = sampled.logits_and_labels(x, y, training=False)
    assert logits.shape == (5, 50)
    np.testing.assert_array_equal(to_numpy(labels), y)
    np.testing.assert_allclose(to_numpy(logits), to_numpy(full(x)), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(sampled([x, y])), to_numpy(full(x)), rtol=1e-6)
    assert sampled.logits_and_labels(x, y, training=True)[0].shape == (5, 10)


@pytest.mark.parametrize(
    "rate, num_classes, num_sampled", [(0.1, 1000, 100), (0.07, 100, 7), (0.01, 10, 1), (0.5, 3, 2)]
)
def test_num_sampled_rounds_the_decimal_rate_up(rate, num_classes, num_sampled):
    assert heads.CosFace(num_classes, sample_rate=rate).num_sampled == num_sampled


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5, float("nan"), True])
def test_bad_sample_rate_raises(rate):
    with pytest.raises(ValueError, match=r"sample_rate must be in \(0, 1\]"):
        heads.ArcFace(10, sample_rate=rate)


def test_batch_larger_than_the_sample_raises():
    head = heads.ArcFace(100, sample_rate=0.05)
    x, y = batch(100, 6, 4, seed=8)
    with pytest.raises(ValueError, match="keeps 5 of 100 classes, fewer than the batch size"):
        head.logits_and_labels(x, y, training=True)


@pytest.mark.parametrize("name", sorted(MARGIN_HEADS))
def test_training_call_outside_logits_and_labels_raises(name):
    """A plain Keras model would pair the original labels with the sampled columns."""
    head = MARGIN_HEADS[name](40, sample_rate=0.5)
    x, y = batch(40, 4, 6, seed=12)
    message = r"sample_rate=0.5 \(Partial FC\).*FaceModel.*head.logits_and_labels\(embeddings, labels, training=True\)"
    with pytest.raises(ValueError, match=message):
        head([x, y], training=True)
    assert head.logits_and_labels(x, y, training=True)[0].shape == (4, 20)
    assert head([x, y]).shape == (4, 40)  # inference: all classes, no labels needed

    features = keras.Input((6,))
    labels = keras.Input((), dtype="int32")
    model = keras.Model([features, labels], MARGIN_HEADS[name](40, sample_rate=0.5)([features, labels]))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=message):
        model.fit([x, y], y, epochs=1, verbose=0)


def test_keras_file_round_trip_keeps_the_sampling(tmp_path):
    features = keras.Input((4,))
    labels = keras.Input((), dtype="int32")
    head = heads.SphereFace(50, sample_rate=0.3, seed=9)
    model = keras.Model([features, labels], head([features, labels]))
    model.save(tmp_path / "partial_fc.keras")
    loaded = keras.saving.load_model(tmp_path / "partial_fc.keras").layers[-1]
    assert (loaded.sample_rate, loaded.num_sampled, loaded.seed) == (0.3, 15, 9)
    assert loaded.get_config() == head.get_config()
    x, y = batch(50, 3, 4, seed=9)
    np.testing.assert_allclose(to_numpy(loaded([x, y])), to_numpy(head([x, y])), rtol=1e-6)


def partial_fc_lenet(num_classes, sample_rate, learning_rate):
    """lenetpp_arcface with Partial FC: `head_args` replaces the recipe's, so merge them."""
    head_args = {**zoo.recipe("lenetpp_arcface").head_args, "sample_rate": sample_rate}
    model = zoo.build("lenetpp_arcface", num_classes=num_classes, head_args=head_args)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate))
    return model


def test_face_model_fit_reports_the_partial_fc_loss_and_accuracy():
    model = partial_fc_lenet(40, 0.5, learning_rate=0.0)
    head = model.head
    assert (head.scale, head.margin, head.num_sampled) == (16.0, 0.3, 20)
    rng = np.random.default_rng(10)
    images, y = rng.uniform(0, 255, (16, 28, 28, 1)).astype("float32"), rng.integers(0, 40, 16)
    state = seed_state(head)
    history = model.fit(images, y, batch_size=16, epochs=1, verbose=0)
    np.testing.assert_array_equal(seed_state(head), state + [0, 1])

    head.seed_generator.state.assign(state)
    logits, labels = head.logits_and_labels(model(images), y, training=True)
    loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    np.testing.assert_allclose(history.history["loss"][0], float(keras.ops.mean(loss)), rtol=1e-4)
    accuracy = np.mean(np.argmax(to_numpy(logits), axis=1) == to_numpy(labels))
    np.testing.assert_allclose(history.history["accuracy"][0], accuracy)


def test_face_model_fit_updates_only_the_sampled_rows():
    model = partial_fc_lenet(40, 0.5, learning_rate=0.5)
    head = model.head
    rng = np.random.default_rng(11)
    images, y = rng.uniform(0, 255, (48, 28, 28, 1)).astype("float32"), rng.integers(0, 40, 48)
    state, kernel = seed_state(head), to_numpy(head.kernel).copy()
    model.fit(images, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_array_equal(seed_state(head), state + [0, 3])

    head.seed_generator.state.assign(state)
    sampled = np.unique(np.concatenate([to_numpy(head.sample_classes(y[i : i + 16])) for i in (0, 16, 32)]))
    unsampled = np.setdiff1d(np.arange(40), sampled)
    assert len(unsampled) > 0
    trained = to_numpy(head.kernel)
    np.testing.assert_array_equal(trained[unsampled], kernel[unsampled])
    # Positives always move; a negative's softmax share may be below float32 resolution.
    positives = np.unique(y)
    assert np.all(np.any(trained[positives] != kernel[positives], axis=1))


@pytest.mark.backends
def test_a_batch_with_more_classes_than_the_sample_stops_fit():
    """Batch size unknown when traced (a dataset): 8 distinct classes, 4 sampled -> stop, naming Partial FC."""
    import tensorflow as tf

    from kerasface import zoo

    model = zoo.build(
        "lenetpp_arcface", num_classes=8, head_args={"scale": 16.0, "margin": 0.3, "sample_rate": 0.5},
        steps_per_epoch=1,
    )
    images = np.random.default_rng(0).integers(0, 255, (8, 28, 28, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(8))).batch(8)
    with pytest.raises(Exception, match=r"sample_rate=0.5(: 4 sampled classes| keeps 4 of 8 classes)"):
        model.fit(data, epochs=1, verbose=0)


class HeadTrainer(heads.SampledRowsTraining, keras.Model):
    """Fits a head alone on given embeddings with FaceModel's loss; `sampled_rows=False` is
    Keras' own train_step (dense kernel gradients)."""

    def __init__(self, head, sampled_rows=True):
        super().__init__()
        self.head = head
        self.sampled_rows = sampled_rows

    def call(self, embeddings):
        return embeddings

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits, labels = self.head.logits_and_labels(y_pred, y, training)
        return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))

    def train_step(self, *args):
        if self.sampled_rows:
            return super().train_step(*args)
        return keras.Model.train_step(self, *args)


NUM_CLASSES, DIM, BATCH, STEPS = 60, 6, 4, 3


def fit_head(optimizer, sample_rate, sampled_rows=True, seed=20):
    """`STEPS` steps of fit on a CosFace head: (trainer, initial kernel, embeddings, labels)."""
    keras.utils.set_random_seed(seed)
    head = heads.CosFace(NUM_CLASSES, scale=8.0, margin=0.2, sample_rate=sample_rate, seed=seed)
    head.build((None, DIM))
    trainer = HeadTrainer(head, sampled_rows)
    trainer.compile(optimizer=optimizer)
    x, y = batch(NUM_CLASSES, BATCH * STEPS, DIM, seed)
    kernel = to_numpy(head.kernel).copy()
    state = seed_state(head) if head.samples_classes else None
    trainer.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    if state is not None:
        head.seed_generator.state.assign(state)  # the trainer's draws can be replayed
    return trainer, kernel, x, y


@pytest.mark.parametrize("sample_rate", [1.0, 0.2])
def test_sampled_rows_step_equals_keras_step_where_unsampled_rows_would_not_move(sample_rate):
    """Plain SGD moves only rows with a gradient, so the sampled-rows step must equal Keras' own
    (dense) step; at rate 1.0, with momentum and L2, the two are the same code path."""
    make = (lambda: kf_optimizers.SGD(0.5)) if sample_rate < 1 else (
        lambda: kf_optimizers.SGD(0.5, momentum=0.9, l2_decay=0.01)
    )
    rows, kernel, _, _ = fit_head(make(), sample_rate)
    dense, dense_kernel, _, _ = fit_head(make(), sample_rate, sampled_rows=False)
    np.testing.assert_array_equal(kernel, dense_kernel)
    trained = to_numpy(rows.head.kernel)
    assert np.abs(trained - kernel).max() > 1e-3
    np.testing.assert_allclose(trained, to_numpy(dense.head.kernel), rtol=1e-5, atol=1e-6)


def numpy_row_rule(name, w, g, state, lr, step):
    """The references' update rules, written out: (new rows, new state)."""
    if name == "caffe_sgd":  # Caffe SGDSolver::ComputeUpdateValue, wd 0.01 in the gradient
        g = g + 0.01 * w
        v = 0.9 * state.get("momentum", 0) - lr * g
        return w + v, {"momentum": v}
    if name == "torch_sgd":  # torch.optim.SGD(momentum=0.9, weight_decay=0.01)
        g = g + 0.01 * w
        b = 0.9 * state.get("momentum", 0) + g
        return w - lr * b, {"momentum": b}
    if name == "adamw":  # Keras AdamW: decay first, then Adam at step t (1-based)
        w = w - w * 0.01 * lr
        m = 0.9 * state.get("momentum", 0) + 0.1 * g
        v = 0.999 * state.get("velocity", 0) + 0.001 * g * g
        alpha = lr * math.sqrt(1 - 0.999**step) / (1 - 0.9**step)
        return w - alpha * m / (np.sqrt(v) + 1e-7), {"momentum": m, "velocity": v}
    if name == "adagrad":  # TF1 Adagrad with an L2 loss of 0.01
        g = g + 0.01 * w
        accumulator = state.get("accumulator", 0.1) + g * g
        return w - lr * g / np.sqrt(accumulator + 1e-7), {"accumulator": accumulator}
    raise ValueError(name)


ROW_OPTIMIZERS = {
    "caffe_sgd": lambda lr: kf_optimizers.SGD(lr, momentum=0.9, l2_decay=0.01),
    "torch_sgd": lambda lr: kf_optimizers.SGD(lr, momentum=0.9, l2_decay=0.01, momentum_style="pytorch"),
    "adamw": lambda lr: keras.optimizers.AdamW(lr, weight_decay=0.01),
    "adagrad": lambda lr: kf_optimizers.Adagrad(lr, l2_decay=0.01),
}
SLOTS = {"caffe_sgd": ("momentums",), "torch_sgd": ("momentums",), "adamw": ("_momentums", "_velocities"),
         "adagrad": ("_accumulators",)}


@pytest.mark.parametrize("name", sorted(ROW_OPTIMIZERS))
def test_sampled_rows_step_matches_a_numpy_reference(name):
    """Three fit steps at rate 0.2 with a learning rate that drops after the first: the sampled rows
    and their optimiser state follow the reference rule on the gradient of a head of those rows
    alone; every other row and its state stay as they were (arcface_torch's Partial FC v1)."""
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0], [0.3, 0.1])  # 0.3 at step 0 only
    trainer, kernel, x, y = fit_head(ROW_OPTIMIZERS[name](schedule), 0.2)
    head = trainer.head
    expected, states, touched = kernel.astype("float64"), {}, set()
    for step in range(STEPS):
        xb, yb = x[step * BATCH : (step + 1) * BATCH], y[step * BATCH : (step + 1) * BATCH]
        classes = to_numpy(head.sample_classes(yb))  # replays the trainer's draw
        small = heads.CosFace(len(classes), scale=8.0, margin=0.2)
        small.build((None, DIM))
        small.kernel.assign(expected[classes].astype("float32"))
        targets = np.searchsorted(np.unique(yb), yb)
        *_, gradient = head_loss_and_grads(small, xb, targets)
        lr = 0.3 if step == 0 else 0.1
        for row, g in zip(classes, gradient.astype("float64")):
            expected[row], states[row] = numpy_row_rule(name, expected[row], g, states.get(row, {}), lr, step + 1)
        touched.update(classes.tolist())

    trained = to_numpy(head.kernel)
    touched = np.array(sorted(touched))
    untouched = np.setdiff1d(np.arange(NUM_CLASSES), touched)
    assert len(untouched) > 10
    np.testing.assert_allclose(trained[touched], expected[touched], rtol=2e-5, atol=2e-6)
    np.testing.assert_array_equal(trained[untouched], kernel[untouched])
    optimizer = trainer.optimizer
    index = optimizer._get_variable_index(head.kernel)
    for attribute, key in zip(SLOTS[name], ("momentum", "velocity") if name == "adamw" else (None,)):
        slot = to_numpy(getattr(optimizer, attribute)[index])
        key = key or next(iter(states[touched[0]]))
        reference = np.stack([states[row][key] for row in touched])
        np.testing.assert_allclose(slot[touched], reference, rtol=2e-5, atol=1e-7)
        initial = 0.1 if key == "accumulator" else 0.0
        assert np.all(slot[untouched] == initial)
    assert int(optimizer.iterations) == STEPS


@pytest.mark.parametrize(
    "optimizer, reason",
    [
        (lambda: keras.optimizers.SGD(0.1, clipnorm=1.0), "clipnorm acts on all gradients"),
        (lambda: keras.optimizers.RMSprop(0.1), "RMSprop is not SGD, Adam or Adagrad"),
        (lambda: keras.optimizers.Adam(0.1, amsgrad=True), "amsgrad"),
    ],
)
def test_other_optimisers_train_densely_and_say_why(optimizer, reason):
    with pytest.warns(UserWarning, match=f"Partial FC trains with dense kernel gradients.*{reason}"):
        trainer, kernel, _, _ = fit_head(optimizer(), 0.2)
    assert np.abs(to_numpy(trainer.head.kernel) - kernel).max() > 1e-4


def test_sampled_rows_gradient_needs_exactly_one_training_call():
    head = heads.ArcFace(20, sample_rate=0.5)
    x, y = batch(20, 4, 6, seed=21)
    head.build(x.shape)
    delta = keras.ops.zeros((10, 6))
    no_call = pytest.raises(ValueError, match="no training call with labels ran inside sampled_rows_gradient")
    with no_call, head.sampled_rows_gradient(delta):
        head(x)
    second_call = pytest.raises(ValueError, match="Received: a second training call inside the block")
    with second_call, head.sampled_rows_gradient(delta):
        head.logits_and_labels(x, y, training=True)
        head.logits_and_labels(x, y, training=True)
    not_sampling = pytest.raises(ValueError, match=r"needs sample_rate < 1 \(Partial FC\). Received: sample_rate=1.0")
    with not_sampling, heads.ArcFace(20).sampled_rows_gradient(delta):
        pass
