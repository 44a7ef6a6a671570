"""keras.distribution on two XLA host devices, and a model saved under JAX loaded under TensorFlow."""

import json

import keras
import numpy as np
import pytest

from kerasface.zoo import FaceModel
from tests.distribute.compare import RTOL, assert_same_training, load
from tests.distribute.programs import NUM_CLASSES, STEPS, toy_data


@pytest.mark.parametrize("distribution", ["data_parallel", "head_parallel"])
def test_distributions_train_like_one_device(jax_runs, distribution):
    assert_same_training(
        jax_runs / "jax_center_one_device.npz",
        jax_runs / f"jax_center_{distribution}.npz",
        jax_runs / "jax_center_initial.npz",
    )
    assert load(jax_runs / f"jax_center_{distribution}.npz")["head/iteration"] == STEPS


def test_head_parallel_splits_the_classes(jax_runs):
    shards = json.loads((jax_runs / "jax_shards.json").read_text())
    assert shards["devices"] == 2
    assert shards["head_kernel"] == [NUM_CLASSES // 2, 2]
    assert shards["centers"] == [NUM_CLASSES // 2, 2]


def test_model_saved_under_jax_loads_under_tensorflow(jax_runs):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("loads the JAX model in this process, which runs on another backend")
    model = keras.saving.load_model(jax_runs / "jax_head_parallel.keras")
    assert isinstance(model, FaceModel)
    saved = load(jax_runs / "jax_center_head_parallel.npz")
    for variable in model.weights:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), saved[variable.path], err_msg=variable.path)
    jax_embeddings = np.load(jax_runs / "jax_embeddings.npy")
    embeddings = model.predict(toy_data(len(jax_embeddings), seed=1)[0], verbose=0)
    np.testing.assert_allclose(embeddings, jax_embeddings, rtol=RTOL, atol=1e-6)
    assert np.abs(jax_embeddings).max() > 0.01
