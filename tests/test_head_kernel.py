"""The class kernel of every head: one row per class, initialised with a Dense kernel's fans."""

import math

import keras
import numpy as np
import pytest

from kerasface import heads

pytestmark = pytest.mark.backends

DIM = 64


def built_kernel(num_classes, initializer):
    head = heads.CosFace(num_classes, kernel_initializer=initializer)
    head.build((None, DIM))
    return keras.ops.convert_to_numpy(head.kernel)


# Large enough for TensorFlow's block-by-block initialisation (65,536 rows a block), and small.
@pytest.mark.parametrize("num_classes", [150_000, 3_000])
@pytest.mark.parametrize(
    "initializer, expected_std",
    [
        ("he_normal", math.sqrt(2 / DIM)),  # fan-in = the embedding dimension, as in Dense
        ("he_uniform", math.sqrt(2 / DIM)),
        ("lecun_normal", math.sqrt(1 / DIM)),
        (keras.initializers.VarianceScaling(3.0, "fan_out", "uniform"), None),  # fan-out = classes
        ("glorot_uniform", None),
        (keras.initializers.RandomNormal(0.0, 0.01, seed=3), 0.01),
    ],
)
def test_kernel_rows_have_the_dense_kernels_distribution(num_classes, initializer, expected_std):
    kernel = built_kernel(num_classes, initializer)
    assert kernel.shape == (num_classes, DIM)
    if expected_std is None:
        fan_out = num_classes if isinstance(initializer, keras.initializers.VarianceScaling) else None
        expected_std = math.sqrt(3.0 / fan_out) if fan_out else math.sqrt(2 / (num_classes + DIM))
    np.testing.assert_allclose(kernel.std(), expected_std, rtol=0.02)
    # Every block of rows has the whole kernel's spread, and no two blocks repeat.
    np.testing.assert_allclose(kernel[-1000:].std(), expected_std, rtol=0.05)
    assert not np.array_equal(kernel[:8], kernel[65_536 : 65_536 + 8])


def test_a_seeded_initializer_gives_the_same_kernel_twice():
    first = built_kernel(150_000, keras.initializers.GlorotUniform(seed=7))
    second = built_kernel(150_000, keras.initializers.GlorotUniform(seed=7))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, built_kernel(150_000, keras.initializers.GlorotUniform(seed=8)))


def test_logits_are_products_with_the_rows():
    head = heads.Softmax(5, use_bias=False)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    head.build(x.shape)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(head(x)), x @ keras.ops.convert_to_numpy(head.kernel).T, rtol=1e-5
    )
