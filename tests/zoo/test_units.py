"""Recipe units (global batch, P x K, epochs), the losses a FaceModel accepts, and NaN stops."""

import keras
import numpy as np
import pytest

from kerasface import zoo
from kerasface.zoo.schedules import WarmupPiecewiseDecay
from tests.zoo.test_zoo import tiny, toy_images


def test_a_smaller_global_batch_scales_the_rate_and_stretches_iterations():
    spec = zoo.recipe("sphereface20")  # lr 0.1 for 512 images, steps at 16k and 24k of 28k
    half = spec.for_batch_size(256)
    assert half.schedule_args["values"] == pytest.approx([0.05, 0.005, 0.0005])
    assert half.schedule_args["boundaries"] == [32000, 48000] and half.steps == 56000
    # Epoch schedules keep their epochs; only the rate follows the batch.
    arc = zoo.recipe("iresnet50_arcface").for_batch_size(128)
    assert arc.schedule_args["learning_rate"] == pytest.approx(0.1 / 8) and arc.epochs == 20
    assert arc.schedule_args["decay_steps"] == 20


def test_p_x_k_batches_keep_k_and_refuse_what_does_not_divide():
    reid = zoo.recipe("spherereid").for_batch_size(32)
    assert (reid.identities_per_batch, reid.images_per_identity, reid.batch_size) == (8, 4, 32)
    with pytest.raises(ValueError, match="multiple of 4. Received: batch_size=30"):
        zoo.recipe("spherereid").for_batch_size(30)
    with pytest.raises(ValueError, match=r"identities_per_batch \* images_per_identity = 64. Received: batch_size=90"):
        zoo.recipe("spherereid").replace(batch_size=90)


def test_a_recipe_needs_a_training_length():
    with pytest.raises(ValueError, match="epochs or steps"):
        zoo.recipe("lenetpp_softmax").replace(steps=None)


def test_epoch_schedules_without_data_say_what_they_assumed():
    with pytest.warns(UserWarning, match=r"5822653 images / batch 1024 = 5686 steps per epoch"):
        schedule = zoo.learning_rate(zoo.recipe("iresnet50_arcface"))
    assert schedule.decay_steps == 20 * 5686
    with pytest.warns(UserWarning, match="assuming the paper's data set"):
        zoo.build("spherereid", input_shape=(64, 32, 3), embedding_dim=8, num_classes=3)


def test_rates_change_at_the_boundary_as_caffe_and_pytorch():
    sphere = zoo.learning_rate(zoo.recipe("sphereface20"))
    rates = [float(sphere(s)) for s in (0, 15999, 16000, 23999, 24000)]
    assert rates == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])


def test_spherereid_warms_up_exponentially_once_per_epoch():
    schedule = zoo.learning_rate(zoo.recipe("spherereid"), steps_per_epoch=10)
    assert isinstance(schedule, WarmupPiecewiseDecay)
    # CoinCheung/SphereReID: lr = 5e-5 * 20 ** (epoch / 20) for epoch < 20.
    for step in (0, 9, 10, 55, 199):
        assert float(schedule(step)) == pytest.approx(5e-5 * 20 ** ((step // 10) / 20), rel=1e-5)
    assert [float(schedule(s)) for s in (200, 799, 800, 1000)] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5])


def test_facenet_trains_on_the_unit_sphere_with_squared_distances():
    model = tiny("facenet", input_shape=(80, 80, 3))
    images, _ = toy_images(4, (80, 80, 3))
    embeddings = keras.ops.convert_to_numpy(model(images, training=True))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    assert model.loss.get_config()["distance"] == "squared_l2"
    assert model.loss.get_config()["margin"] == 0.2


@pytest.mark.backends
def test_a_cross_entropy_named_by_string_is_taken_from_logits():
    images, labels = toy_images(32, (28, 28, 1))
    losses = []
    for loss in ("auto", "sparse_categorical_crossentropy"):
        keras.utils.set_random_seed(1)
        model = tiny("lenetpp_softmax")
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
        losses.append(model.train_on_batch(images, labels))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


@pytest.mark.parametrize(
    "loss, message",
    [
        ("mse", "Received: loss='mse'"),
        (keras.losses.SparseCategoricalCrossentropy(), "from_logits=False"),
    ],
)
def test_losses_that_read_logits_as_probabilities_are_refused(loss, message):
    with pytest.raises(ValueError, match=message):
        tiny("lenetpp_softmax").compile(optimizer="sgd", loss=loss)


@pytest.mark.backends
def test_a_nan_term_stops_fit_naming_the_step_and_the_term():
    model = tiny("lenetpp_center")
    images, labels = toy_images(64, (28, 28, 1))
    model.fit(images, labels, batch_size=32, epochs=1, verbose=0)
    model.center_loss.centers.assign(np.full(model.center_loss.centers.shape, np.nan, "float32"))
    with pytest.raises(FloatingPointError, match=r"step 3 \(epoch 1, batch 1\).*center_loss=nan") as error:
        model.fit(images, labels, batch_size=32, epochs=1, verbose=0, shuffle=False)
    assert "head_loss" not in str(error.value)
