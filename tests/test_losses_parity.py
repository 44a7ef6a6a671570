"""Metric losses and centre loss against tensorflow-addons' numbers (shared fixtures)."""

import keras
import numpy as np
import pytest

from kerasface import layers, losses
from tests.gradients import value_and_grads

pytestmark = pytest.mark.backends

DISTANCE = {"L2": "l2", "squared-L2": "squared_l2", "angular": "angular"}


@pytest.mark.parametrize("distance", sorted(DISTANCE))
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_semihard_matches_tfa(distance, margin, triplet_reference):
    ref = triplet_reference
    loss_fn = losses.TripletSemiHardLoss(margin=margin, distance=DISTANCE[distance])
    value, _, (grad,) = value_and_grads(lambda x: (loss_fn(ref["labels"], x), 0.0), ref["embeddings_unit"])
    key = f"semihard_{distance}_m{margin}"
    np.testing.assert_allclose(value, ref[f"{key}/loss"], rtol=1e-3)
    np.testing.assert_allclose(grad, ref[f"{key}/grad"], atol=1e-4)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_hard_matches_tfa(soft, margin, triplet_reference):
    ref = triplet_reference
    loss_fn = losses.TripletHardLoss(margin=margin, soft=soft)
    value, _, (grad,) = value_and_grads(lambda x: (loss_fn(ref["labels"], x), 0.0), ref["embeddings_unit"])
    key = f"hard_{'soft' if soft else 'hinge'}_m{margin}"
    np.testing.assert_allclose(value, ref[f"{key}/loss"], rtol=1e-3)
    np.testing.assert_allclose(grad, ref[f"{key}/grad"], atol=1e-4)


@pytest.mark.parametrize(
    "key, loss_fn",
    [
        ("semihard_L2_m1.0_raw", losses.TripletSemiHardLoss(1.0)),
        ("hard_hinge_m1.0_raw", losses.TripletHardLoss(1.0)),
    ],
)
def test_triplet_on_raw_embeddings(key, loss_fn, triplet_reference):
    ref = triplet_reference
    value, _, (grad,) = value_and_grads(lambda x: (loss_fn(ref["labels"], x), 0.0), ref["embeddings"])
    np.testing.assert_allclose(value, ref[f"{key}/loss"], rtol=1e-3)
    np.testing.assert_allclose(grad, ref[f"{key}/grad"], atol=1e-4)


@pytest.mark.parametrize("margin", [0.5, 1.0])
def test_contrastive_matches_tfa(margin, triplet_reference):
    ref = triplet_reference
    value = losses.ContrastiveLoss(margin)(ref["contrastive/same"], ref["contrastive/distances"])
    np.testing.assert_allclose(float(value), ref[f"contrastive_m{margin}/loss"], rtol=1e-4)


def naive_batch_all(labels, x, margin):
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    values = [
        d[a, p] - d[a, n] + margin
        for a in range(len(x))
        for p in range(len(x))
        for n in range(len(x))
        if a != p and labels[a] == labels[p] and labels[a] != labels[n]
    ]
    values = np.array(values)
    positive = values[values > 1e-16]
    return positive.sum() / len(positive), len(positive) / len(values)


def test_batch_all_against_loops(triplet_reference):
    ref = triplet_reference
    x, y = ref["embeddings_unit"], ref["labels"]
    loss, fraction = losses.triplet_batch_all(y, x, margin=0.2)
    expected_loss, expected_fraction = naive_batch_all(y, x, 0.2)
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-4)
    np.testing.assert_allclose(float(fraction), expected_fraction, rtol=1e-5)
    metric = losses.FractionPositiveTriplets(margin=0.2)
    metric.update_state(y, x)
    np.testing.assert_allclose(float(metric.result()), expected_fraction, rtol=1e-5)


def naive_semihard(labels, x, margin):
    """FaceNet semi-hard mining written as loops, for cases the fixtures lack."""
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    total, count = 0.0, 0
    for a in range(len(x)):
        negatives = [n for n in range(len(x)) if labels[n] != labels[a]]
        for p in range(len(x)):
            if p == a or labels[p] != labels[a]:
                continue
            farther = [d[a, n] for n in negatives if d[a, n] > d[a, p]]
            negative = min(farther) if farther else max(d[a, n] for n in negatives)
            total += max(d[a, p] - negative + margin, 0.0)
            count += 1
    return total / count


def test_semihard_against_loops_on_new_data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 5)).astype("float32")
    y = rng.integers(0, 4, 20)
    got = float(losses.triplet_semihard_loss(y, x, margin=0.5))
    np.testing.assert_allclose(got, naive_semihard(y, x, 0.5), rtol=1e-4)


@pytest.mark.parametrize("alpha", [0.5, 0.1])
def test_center_loss_matches_reference(alpha, triplet_reference):
    ref = triplet_reference
    x, y = ref["embeddings"], ref["labels"]
    centers_before = ref["center/centers_before"]
    layer = layers.CenterLoss(len(centers_before), alpha=alpha, weight=1.0)
    layer.build([x.shape, y.shape])
    layer.centers.assign(centers_before.astype("float32"))
    out = layer([x, y], training=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), x)
    np.testing.assert_allclose(float(layer.losses[0]), ref["center/loss_half_mean_sq"], rtol=1e-4)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer.centers), ref[f"center/centers_after_alpha{alpha}"], rtol=1e-5, atol=1e-6
    )


def test_center_loss_does_not_move_centers_when_not_training(triplet_reference):
    ref = triplet_reference
    layer = layers.CenterLoss(9, alpha=0.5)
    layer.build([ref["embeddings"].shape, ref["labels"].shape])
    layer.centers.assign(ref["center/centers_before"].astype("float32"))
    layer([ref["embeddings"], ref["labels"]], training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.centers), ref["center/centers_before"], rtol=1e-6)
