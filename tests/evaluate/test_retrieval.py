"""Market-1501 CMC/mAP and 1:N identification."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from kerasface import evaluate


def at_angles(angles):
    """Unit 2-D vectors: the cosine of two of them is the cosine of their angle difference."""
    angles = np.asarray(angles, dtype=np.float64)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


# Gallery at angles 0.0 .. 0.5: the nearer the angle, the higher the similarity.
GALLERY = at_angles([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
GALLERY_IDS = np.array([1, -1, 2, 1, 0, 1])
GALLERY_CAMS = np.array([1, 2, 2, 2, 3, 3])


def test_cmc_map_removes_junk():
    queries = at_angles([0.0, 0.5, 0.5])
    query_ids, query_cams = np.array([1, 2, 2]), np.array([1, 2, 3])
    result = evaluate.cmc_map(queries, query_ids, query_cams, GALLERY, GALLERY_IDS, GALLERY_CAMS, ranks=(1, 2, 5))
    # Query 0 (id 1, cam 1): g0 is junk (same id and camera), g1 is junk (id -1); ranked g2 F, g3 T, g4 F, g5 T:
    #   first hit at rank 2, AP = (1/2 + 2/4) / 2 = 0.5.
    # Query 1 (id 2, cam 2): its only match g2 shares its camera, so it is skipped.
    # Query 2 (id 2, cam 3): ranked g5 F, g4 F, g3 F, g2 T, g0 F: first hit at rank 4, AP = 1/4.
    assert result.num_queries == 2
    assert result.cmc == {1: 0.0, 2: 0.5, 5: 1.0}
    assert result.mean_ap == pytest.approx(0.375)


def test_cmc_map_without_junk_rules_differs():
    # The same query with gallery camera 9 everywhere keeps g0 (id 1): a rank-1 hit.
    result = evaluate.cmc_map(
        at_angles([0.0]), [1], [1], GALLERY, np.where(GALLERY_IDS == -1, 5, GALLERY_IDS), np.full(6, 9), ranks=(1,)
    )
    assert result.cmc == {1: 1.0}
    assert result.mean_ap == pytest.approx((1 + 2 / 4 + 3 / 6) / 3)


def test_average_precision_matches_sklearn():
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(60, 8))
    gallery_ids = np.repeat(np.arange(12), 5)
    gallery_ids[::7] = -1
    gallery_cams = rng.integers(0, 3, size=60)
    queries = gallery[::5] + rng.normal(scale=1.5, size=(12, 8))
    query_ids, query_cams = np.arange(12), np.full(12, 5)  # no camera shared: only id -1 is junk
    result = evaluate.cmc_map(queries, query_ids, query_cams, gallery, gallery_ids, gallery_cams, ranks=(1, 5))
    kept = gallery_ids != -1
    similarity = (queries @ gallery[kept].T) / np.outer(
        np.linalg.norm(queries, axis=1), np.linalg.norm(gallery[kept], axis=1)
    )
    expected_ap = [average_precision_score(gallery_ids[kept] == q, s) for q, s in zip(query_ids, similarity)]
    first_hit = [np.argmax((gallery_ids[kept] == q)[np.argsort(-s)]) for q, s in zip(query_ids, similarity)]
    assert result.num_queries == 12
    assert result.mean_ap == pytest.approx(np.mean(expected_ap))
    assert result.cmc == {
        1: pytest.approx(np.mean(np.array(first_hit) < 1)),
        5: pytest.approx(np.mean(np.array(first_hit) < 5)),
    }


def test_cmc_map_errors():
    with pytest.raises(ValueError, match="query_ids must hold one entry per row of query_features \\(1\\)"):
        evaluate.cmc_map(at_angles([0.0]), [1, 2], [1], GALLERY, GALLERY_IDS, GALLERY_CAMS)
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate.cmc_map(at_angles([0.0]), [7], [1], GALLERY, GALLERY_IDS, GALLERY_CAMS)
    with pytest.raises(ValueError, match="ranks must be a positive integer"):
        evaluate.cmc_map(at_angles([0.0]), [1], [1], GALLERY, GALLERY_IDS, GALLERY_CAMS, ranks=(0,))


def test_identify_scores_each_identity_by_its_best_image():
    gallery = at_angles([0.0, 1.0, 0.3, 2.0])
    result = evaluate.identify(gallery, ["ann", "ann", "bob", "cy"], at_angles([0.9, 1.9]), top_k=2, threshold=0.99)
    np.testing.assert_array_equal(result.ids, [["ann", "bob"], ["cy", "ann"]])
    np.testing.assert_allclose(result.scores, np.cos([[0.1, 0.6], [0.1, 0.9]]))
    np.testing.assert_array_equal(result.accepted, [True, True])
    strict = evaluate.identify(gallery, ["ann", "ann", "bob", "cy"], at_angles([0.9, 1.5]), top_k=1, threshold=0.99)
    np.testing.assert_array_equal(strict.accepted, [True, False])  # cos(0.5) < 0.99
    with pytest.raises(ValueError, match="at most the number of gallery identities \\(3\\)"):
        evaluate.identify(gallery, ["ann", "ann", "bob", "cy"], at_angles([0.0]), top_k=4)


def toward(axis, cosine, dim=4):
    """A unit vector with the given cosine to basis vector `axis` and the rest on the last axis."""
    vector = np.zeros(dim)
    vector[axis], vector[-1] = cosine, np.sqrt(1 - cosine**2)
    return vector


def test_identification_rates_hand_computed():
    gallery, gallery_ids = np.eye(4)[:3], [0, 1, 2]
    mated = [toward(0, 0.9), toward(1, 0.6), toward(0, 0.8), toward(2, 0.3)]  # ids 0, 1, 2 (missed), 2
    non_mated = [toward(1, 0.7), toward(0, 0.5), toward(2, 0.2), toward(2, 0.1)]
    probes = np.stack(mated + non_mated)
    probe_ids = [0, 1, 2, 2, 9, 8, 7, 6]
    rates = evaluate.identification_rates(gallery, gallery_ids, probes, probe_ids, far=[0.25, 0.5, 1.0])
    assert rates.rank1 == pytest.approx(3 / 4)
    # Sorted top-1 scores: .9 hit, .7 false alarm, .6 hit, .5 false alarm, .3 hit, .2 and .1 false alarms.
    assert rates.dir_at_far == pytest.approx({0.25: 2 / 4, 0.5: 3 / 4, 1.0: 3 / 4})
    assert rates.thresholds == pytest.approx({0.25: 0.6, 0.5: 0.3, 1.0: 0.1})
    assert evaluate.identification_rates(gallery, gallery_ids, probes, probe_ids, far=None).dir_at_far == {}
    with pytest.raises(ValueError, match="FAR=0.1 cannot be measured with 4 non-mated probes"):
        evaluate.identification_rates(gallery, gallery_ids, probes, probe_ids, far=0.1)
    with pytest.raises(ValueError, match="needs non-mated probes"):
        evaluate.identification_rates(gallery, gallery_ids, probes[:4], probe_ids[:4], far=0.5)
