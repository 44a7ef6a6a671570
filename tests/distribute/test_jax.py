"""keras.distribution on two XLA host devices, and a model saved under JAX loaded under TensorFlow."""

import json

import numpy as np
import pytest

from tests.distribute.compare import RTOL, assert_same_training, load, variables
from tests.distribute.conftest import finish, program_env, start
from tests.distribute.programs import NUM_CLASSES, STEPS


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
    assert shards["head_kernel"] == [2, NUM_CLASSES // 2]
    assert shards["centers"] == [NUM_CLASSES // 2, 2]


def test_model_saved_under_jax_loads_under_tensorflow(jax_runs):
    finish([start("load_on_tensorflow", jax_runs, program_env("tensorflow"))], "load_on_tensorflow")
    loaded, saved = load(jax_runs / "tf_loaded.npz"), load(jax_runs / "jax_center_head_parallel.npz")
    for name, value in variables(saved).items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    jax_embeddings = np.load(jax_runs / "jax_embeddings.npy")
    np.testing.assert_allclose(loaded["embeddings"], jax_embeddings, rtol=RTOL, atol=1e-6)
    assert np.abs(jax_embeddings).max() > 0.01
