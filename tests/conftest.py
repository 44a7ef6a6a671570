import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

# The project's shared reference numbers; tests/fixtures holds a copy for clones without them.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
FIXTURES = Path(
    os.environ.get("KERASFACE_FIXTURES", _SHARED if _SHARED.exists() else Path(__file__).parent / "fixtures")
)


def load_fixture(name):
    path = FIXTURES / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"reference fixtures not found at {path} (set KERASFACE_FIXTURES)")
    return np.load(path)


@pytest.fixture
def margin_reference():
    return load_fixture("margin_reference")


@pytest.fixture
def triplet_reference():
    return load_fixture("triplet_reference")


@pytest.fixture(autouse=True)
def _reset_keras_state():
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
    # Without the full garbage collection clear_session runs by default (seconds per test with TF graphs
    # alive); Python's own collector still runs.
    keras.backend.clear_session(free_memory=False)
