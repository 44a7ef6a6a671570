"""MirroredStrategy on two logical CPUs gives what one device gives on the global batch."""

import json

import numpy as np
import pytest

from tests.distribute.compare import assert_same_training, load
from tests.distribute.programs import STEPS, TRIPLET_MARGIN
from tests.test_losses_parity import naive_semihard


@pytest.mark.parametrize("run", ["center", "triplet", "triplet_gather"])
def test_two_replicas_train_like_one_device(mirrored_runs, run):
    # "center": SphereFace head + centre loss; "triplet": per-replica mining against its
    # one-device equivalent (the mean of the halves' losses); "triplet_gather": the global batch.
    assert_same_training(
        mirrored_runs / f"{run}_one_device.npz",
        mirrored_runs / f"{run}_mirrored.npz",
        mirrored_runs / f"{run}_initial.npz",
    )


def test_sphereface_counter_advances_once_per_step(mirrored_runs):
    replicas = json.loads((mirrored_runs / "center_mirrored.json").read_text())["iteration_per_replica"]
    assert replicas == [STEPS, STEPS]
    assert load(mirrored_runs / "center_mirrored.npz")["head/iteration"] == STEPS


def test_gathered_and_per_replica_mining_differ(mirrored_runs):
    # Same initial weights and images: mining over halves is another loss.
    per_replica, gathered = (
        load(mirrored_runs / f"{run}_mirrored.npz")["loss"][0] for run in ("triplet", "triplet_gather")
    )
    assert abs(per_replica - gathered) > 1e-3


def center_update(centers, embeddings, labels, alpha=0.5):
    """Eq. 4 of Wen et al. as a loop."""
    updated = centers.copy()
    for j in range(len(centers)):
        members = embeddings[labels == j]
        updated[j] -= alpha * (centers[j] - members).sum(axis=0) / (1 + len(members))
    return updated


def test_centre_update_sums_over_replicas(mirrored_runs):
    calls = load(mirrored_runs / "replica_calls.npz")
    x, y, centers = calls["embeddings"], calls["labels"], calls["centers"]
    half = len(x) // 2
    expected = center_update(centers, x, y)
    for replica_centers in calls["centers_after"]:
        np.testing.assert_allclose(replica_centers, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(center_update(centers, x[:half], y[:half]) - expected).max() > 0.05
    # Each replica's loss is its half's mean over 2 replicas; they add up to the global loss.
    global_loss = 0.5 * np.mean(np.sum((x - centers[y]) ** 2, axis=1))
    np.testing.assert_allclose(calls["center_loss"].sum(), global_loss, rtol=1e-5)
    first_half = 0.5 * np.mean(np.sum((x[:half] - centers[y[:half]]) ** 2, axis=1))
    np.testing.assert_allclose(calls["center_loss"][0], first_half / 2, rtol=1e-5)


def test_triplet_gather_mines_the_global_batch(mirrored_runs):
    calls = load(mirrored_runs / "replica_calls.npz")
    x, y = calls["embeddings"], calls["labels"]
    half = len(x) // 2
    global_loss = naive_semihard(y, x, TRIPLET_MARGIN)
    np.testing.assert_allclose(calls["triplet_gather"], [global_loss / 2] * 2, rtol=1e-5)
    halves = [
        naive_semihard(y[i * half : (i + 1) * half], x[i * half : (i + 1) * half], TRIPLET_MARGIN) for i in (0, 1)
    ]
    np.testing.assert_allclose(calls["triplet"], np.array(halves) / 2, rtol=1e-5)
    assert abs(sum(halves) / 2 - global_loss) > 0.05
