"""Deterministic random state dicts, shared by bench/make_checkpoint_fixtures.py and the tests.

A full-size network (Inception-ResNet-v1: 23M parameters) is too large to
commit as a fixture, so the fixture holds its keys, shapes and the reference
embeddings, and both sides draw the same tensors from NumPy's legacy
`RandomState` (whose streams are fixed across NumPy versions).
"""

import numpy as np


def seeded_state(spec, seed=0):
    """`{key: array}` for `spec`, a list of `(key, shape)`, with random weights and batch-norm statistics."""
    rng = np.random.RandomState(seed)
    state = {}
    for key, shape in spec:
        shape = tuple(int(d) for d in shape)
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            state[key] = np.zeros(shape, np.int64)
            continue
        if leaf == "running_var":
            value = rng.uniform(0.5, 2.0, shape)
        elif leaf == "running_mean":
            value = rng.normal(0.0, 0.2, shape)
        elif leaf == "bias":
            value = rng.normal(0.0, 0.1, shape)
        elif len(shape) == 1:  # batch-norm scale, PReLU slope
            value = rng.uniform(0.5, 1.5, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        state[key] = value.astype(np.float32)
    return state
