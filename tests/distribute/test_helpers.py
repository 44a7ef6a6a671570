"""The cross-replica helpers outside a strategy, the `gather` option and the layout's checks."""

import keras
import numpy as np
import pytest

from kerasface import distribute, losses

pytestmark = pytest.mark.backends


def test_helpers_are_no_ops_on_one_replica():
    x = np.arange(6, dtype="float32").reshape(3, 2)
    assert distribute.replica_context() is None
    assert distribute.num_replicas() == 1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(distribute.all_reduce_sum(x)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(distribute.all_gather(x)), x)
    assert distribute.scale_for_replicas(3.0) == 3.0


@pytest.mark.parametrize("cls", [losses.TripletSemiHardLoss, losses.TripletHardLoss, losses.TripletBatchAllLoss])
def test_gather_is_configurable_and_changes_nothing_on_one_replica(cls):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4)).astype("float32")
    y = rng.integers(0, 3, 12)
    gathered = cls(gather=True)
    assert cls.from_config(gathered.get_config()).gather is True
    assert cls().get_config()["gather"] is False
    np.testing.assert_allclose(float(gathered(y, x)), float(cls()(y, x)), rtol=1e-6)


def test_head_parallel_layout_checks_backend_and_class_count():
    if keras.backend.backend() != "jax":
        with pytest.raises(ValueError, match="JAX backend.*Received: backend='tensorflow'"):
            distribute.head_parallel_layout(10)
        return
    devices = keras.distribution.list_devices()
    with pytest.raises(ValueError, match=rf"multiple of {2 * len(devices)}.*Received: num_classes=7"):
        distribute.head_parallel_layout(7, devices=devices * 2)
