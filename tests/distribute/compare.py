"""Comparisons of the runs that `programs.py` writes."""

import numpy as np

# The observed gaps between one device and two are below 3.3e-6 (summation
# order; JAX's two-device runs of the cosine heads reach it on LeNet++ kernels).
RTOL, ATOL = 1e-5, 5e-6


def load(path):
    with np.load(path) as saved:
        return dict(saved)


def variables(run):
    return {name: value for name, value in run.items() if "/" in name}


def assert_same_training(reference_path, candidate_path, initial_path):
    """Same logged losses and weights, on weights that training did move."""
    reference, candidate, initial = load(reference_path), load(candidate_path), load(initial_path)
    np.testing.assert_allclose(candidate["loss"], reference["loss"], rtol=RTOL)
    reference_weights = variables(reference)
    assert sorted(variables(candidate)) == sorted(reference_weights)
    for name, expected in reference_weights.items():
        np.testing.assert_allclose(candidate[name], expected, rtol=RTOL, atol=ATOL, err_msg=name)
    trained = [name for name, value in reference_weights.items() if value.dtype.kind == "f"]
    moved = min(np.abs(reference_weights[name] - initial[name]).max() for name in trained)
    assert moved > 10 * ATOL, moved
