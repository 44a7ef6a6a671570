"""Two MultiWorkerMirroredStrategy workers on the loopback address train like one device."""

import numpy as np

from tests.distribute.compare import assert_same_training, load
from tests.distribute.programs import STEPS


def test_two_workers_train_like_one_device(multi_worker_runs):
    for index in (0, 1):
        assert_same_training(
            multi_worker_runs / "center_one_device.npz",
            multi_worker_runs / f"center_worker{index}.npz",
            multi_worker_runs / "center_initial.npz",
        )
        assert load(multi_worker_runs / f"center_worker{index}.npz")["head/iteration"] == STEPS


def test_workers_end_with_the_same_centres(multi_worker_runs):
    first, second = (load(multi_worker_runs / f"center_worker{index}.npz") for index in (0, 1))
    np.testing.assert_array_equal(first["center_loss/centers"], second["center_loss/centers"])
