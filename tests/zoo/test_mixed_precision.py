"""Mixed precision: recipes train under mixed_bfloat16 with heads and centres kept in float32."""

import keras
import numpy as np
import pytest

from kerasface import zoo

# Small enough for CI; sphereface20 keeps all 20 layers on a 28x24 crop.
RECIPES = {
    "lenetpp_softmax": {},
    "lenetpp_center": {},
    "sphereface20": {"input_shape": (28, 24, 3), "num_classes": 12},
}


def first_steps(name, policy, steps=2, batch_size=8):
    """The losses of `steps` training steps of a recipe built under `policy` (seed 0)."""
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    model = zoo.build(name, steps_per_epoch=steps, **RECIPES[name])
    keras.config.set_dtype_policy("float32")
    rng = np.random.default_rng(0)
    shape = model.input_shape_hw
    images = rng.integers(0, 256, (steps * batch_size, *shape), dtype=np.uint8)
    labels = rng.integers(0, model.head.num_classes, steps * batch_size)
    losses = []
    for step in range(steps):
        batch = slice(step * batch_size, (step + 1) * batch_size)
        losses.append(model.train_on_batch(images[batch], labels[batch], return_dict=True)["loss"])
    return model, np.array(losses)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_mixed_bfloat16_trains_with_float32_heads_and_centres(name):
    model, losses = first_steps(name, "mixed_bfloat16")
    _, reference = first_steps(name, "float32")

    assert np.all(np.isfinite(losses))
    # Same initial weights: the first loss differs only by bfloat16 rounding in the backbone.
    np.testing.assert_allclose(losses[0], reference[0], rtol=1e-2)
    convolutions = [layer for layer in model.embedder.layers[-1].layers if isinstance(layer, keras.layers.Conv2D)]
    assert {layer.compute_dtype for layer in convolutions} == {"bfloat16"}
    assert {layer.kernel.dtype for layer in convolutions} == {"float32"}
    assert model.head.compute_dtype == "float32"
    assert model.head.kernel.dtype == "float32"
    if model.center_loss is not None:
        centers = keras.ops.convert_to_numpy(model.center_loss.centers)
        assert model.center_loss.centers.dtype == "float32"
        assert np.all(np.isfinite(centers)) and np.abs(centers).sum() > 0
