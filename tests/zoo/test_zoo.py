"""The zoo: every recipe builds, trains, saves and resumes; bad input is refused."""

import keras
import numpy as np
import pytest

from kerasface import zoo
from kerasface.zoo.schedules import WarmupPiecewiseDecay

# Inputs small enough for CI, large enough for each backbone's strides.
SMALL_INPUT = {
    "sphereface": (28, 24, 3),
    "lenet_plus_plus": (28, 28, 1),
    "inception_resnet_v1": (80, 80, 3),
    "mobilefacenet": (32, 32, 3),
    "iresnet": (32, 32, 3),
    "resnet50_reid": (64, 32, 3),
}


def tiny(name, **overrides):
    spec = zoo.recipe(name)
    settings = dict(num_classes=5, input_shape=SMALL_INPUT[spec.backbone])
    if spec.backbone != "lenet_plus_plus":
        settings["embedding_dim"] = 8
    settings.update(overrides)
    return zoo.build(name, **settings)


def toy_images(n, shape, classes=5, seed=0):
    """Images whose class is visible (a bright band per class), 0-255 uint8."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.uniform(0, 60, (n,) + shape)
    rows = shape[0] // classes
    for i, label in enumerate(labels):
        images[i, label * rows : (label + 1) * rows] += 180
    return images.astype("uint8"), labels


@pytest.mark.parametrize("name", zoo.names())
def test_every_recipe_builds_with_its_paper_settings(name):
    spec = zoo.recipe(name)
    model = tiny(name)
    assert model.embedder.output.shape[-1] == (2 if spec.backbone == "lenet_plus_plus" else 8)
    assert tuple(model.embedder.input.shape[1:]) == SMALL_INPUT[spec.backbone]
    rescaling = model.embedder.get_layer("preprocessing")
    np.testing.assert_allclose(rescaling.scale, spec.preprocessing.scale)
    assert (model.head is None) == (spec.metric_loss is not None)
    assert (model.center_loss is not None) == (spec.center_loss_weight > 0)
    if model.head is not None:
        assert type(model.head).__name__.lower().startswith(spec.head[:4]) or spec.head == "combined"
        for key, value in spec.head_args.items():
            assert getattr(model.head, key) == value
    assert model.optimizer is not None


def test_preprocessing_is_inside_the_embedder():
    model = tiny("sphereface4")
    images = np.full((1, 28, 24, 3), 127.5, "float32")
    normalised = model.embedder.get_layer("preprocessing")(images)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalised), 0.0, atol=1e-6)
    raw = np.random.default_rng(0).integers(0, 256, (2, 28, 24, 3)).astype("uint8")
    np.testing.assert_allclose(
        model.predict(raw, verbose=0), model.predict(raw.astype("float32"), verbose=0), rtol=1e-5
    )


@pytest.mark.backends
@pytest.mark.parametrize(
    "name, overrides",
    [
        ("lenetpp_sphereface", {}),
        ("lenetpp_center", {}),
        ("lenetpp_arcface", {}),
        ("lenetpp_softmax", {"metric_loss": "triplet_semihard", "metric_loss_args": {"margin": 0.5}}),
    ],
)
def test_fit_lowers_the_loss(name, overrides):
    model = tiny(name, **overrides)
    model.compile(keras.optimizers.Adam(3e-3))
    images, labels = toy_images(320, (28, 28, 1))
    centers = None if model.center_loss is None else keras.ops.convert_to_numpy(model.center_loss.centers).copy()
    # Judged on evaluate's loss (no margin, no annealing): an annealed head's training loss rises
    # as lambda falls and the margin tightens, whatever the network learns.
    before = model.evaluate(images, labels, batch_size=64, verbose=0, return_dict=True)["loss"]
    history = model.fit(images, labels, batch_size=64, epochs=6, verbose=0, shuffle=False)
    after = model.evaluate(images, labels, batch_size=64, verbose=0, return_dict=True)["loss"]
    assert after < 0.8 * before, (before, after, history.history["loss"])
    if centers is not None:
        moved = keras.ops.convert_to_numpy(model.center_loss.centers)
        assert not np.allclose(moved, centers)
        assert all(v is not model.center_loss.centers for v in model.trainable_variables)
    if model.head is not None and hasattr(model.head, "annealing_lambda"):
        assert history.history["head_iteration"] == [5 * (i + 1) for i in range(6)]
        assert history.history["lambda"][0] == pytest.approx(1000.0 / (1 + 0.12 * 5), rel=1e-5)


def test_save_load_and_resume_give_the_same_next_step(tmp_path):
    model = tiny("lenetpp_sphereface", center_loss_weight=0.01)
    images, labels = toy_images(64, (28, 28, 1))
    model.fit(images, labels, batch_size=32, epochs=1, verbose=0, shuffle=False)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, zoo.FaceModel)
    assert restored.recipe == model.recipe
    for name in ("iteration",):
        assert int(getattr(restored.head, name)) == int(getattr(model.head, name)) == 2
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored.center_loss.centers), keras.ops.convert_to_numpy(model.center_loss.centers)
    )
    expected = model.train_on_batch(images[:32], labels[:32])
    got = restored.train_on_batch(images[:32], labels[:32])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-4, atol=1e-5)


def test_fashion_mnist_center_loss_beats_chance():
    from kerasface.data import load_fashion_mnist

    try:
        (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    # The recipe's SGD, at 3x its first learning rate for this short run on a tenth of the data.
    model = zoo.build("lenetpp_center", schedule="constant", schedule_args={"learning_rate": 0.03})
    model.fit(x_train[:6000], y_train[:6000], batch_size=128, epochs=3, verbose=0)
    accuracy = model.evaluate(x_test[:2000], y_test[:2000], verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.6, accuracy  # chance is 0.10; measured 0.71


def test_unknown_recipe_suggests_close_names():
    with pytest.raises(ValueError, match="Did you mean sphereface20"):
        zoo.build("sphereface21")


def test_overrides_swap_parts_and_refuse_unknown_fields():
    model = tiny("sphereface4", head="arcface")
    assert type(model.head).__name__ == "ArcFace" and model.head.margin == 0.5
    with pytest.raises(ValueError, match="Unknown recipe field"):
        zoo.build("sphereface4", heads="arcface")
    with pytest.raises(ValueError, match="head must be one of"):
        zoo.build("sphereface4", head="arcfaces")


def test_bad_images_and_labels_are_refused():
    model = tiny("lenetpp_softmax")
    images, labels = toy_images(8, (28, 28, 1))
    with pytest.raises(ValueError, match=r"images of shape \(batch, 28, 28, 1\)"):
        model.fit(np.zeros((8, 32, 32, 1), "uint8"), labels, verbose=0)
    with pytest.raises(ValueError, match=r"images of shape"):
        model.predict(np.zeros((8, 28, 28, 3), "uint8"), verbose=0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, num_classes\) = \[0, 5\)"):
        model.fit(images, labels + 3, verbose=0)


def test_register_a_recipe_of_your_own():
    name = "test_only_tiny_cosface"
    if name not in zoo.names():

        @zoo.register
        def test_only_tiny_cosface():
            return zoo.recipe("lenetpp_cosface").replace(name=name, head_args={"scale": 8.0, "margin": 0.1})

    assert name in zoo.names("test_only_*")
    assert zoo.build(name).head.scale == 8.0
    with pytest.raises(ValueError, match="already registered"):
        zoo.register(zoo.registry._RECIPES[name])


def test_schedules_follow_the_papers():
    # Rates change at the boundary iteration (0-based), as Caffe's multistep and PyTorch's MultiStepLR.
    sphere = zoo.learning_rate(zoo.recipe("sphereface20"))
    assert [float(sphere(s)) for s in (0, 15999, 16000, 24000, 27999)] == pytest.approx([0.1, 0.1, 0.01, 0.001, 0.001])
    reid = zoo.learning_rate(zoo.recipe("spherereid"), steps_per_epoch=10)
    assert isinstance(reid, WarmupPiecewiseDecay)
    assert float(reid(0)) == pytest.approx(5e-5)
    assert float(reid(100)) == pytest.approx(5e-5 * 20**0.5)  # exponential warm-up, halfway
    assert [float(reid(s)) for s in (200, 799, 800, 1000, 1399)] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5, 1e-5])
