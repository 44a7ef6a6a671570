"""ROC, TAR@FAR, deployment thresholds and the LFW 10-fold protocol."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from kerasface import evaluate

# Six pairs scored in decreasing order: same, different, same, same, different, different.
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
ISSAME = np.array([True, False, True, True, False, False])


def random_pairs(seed, n=400, decimals=None):
    rng = np.random.default_rng(seed)
    issame = rng.random(n) < 0.4
    scores = np.tanh(rng.normal(size=n) + 1.2 * issame)
    return (scores if decimals is None else np.round(scores, decimals)), issame


def test_roc_hand_computed():
    far, tar, thresholds = evaluate.roc(SCORES, ISSAME)
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    np.testing.assert_allclose(tar, np.array([0, 1, 1, 2, 3, 3, 3]) / 3)
    np.testing.assert_allclose(far, np.array([0, 0, 1, 1, 1, 2, 3]) / 3)


@pytest.mark.parametrize("decimals", [None, 1])
def test_roc_matches_sklearn(decimals):
    scores, issame = random_pairs(0, decimals=decimals)  # rounding to 1 decimal makes many ties
    far, tar, thresholds = evaluate.roc(scores, issame)
    sk_far, sk_tar, sk_thresholds = roc_curve(issame, scores, drop_intermediate=False)
    np.testing.assert_allclose(far, sk_far)
    np.testing.assert_allclose(tar, sk_tar)
    np.testing.assert_array_equal(thresholds, sk_thresholds)
    np.testing.assert_allclose(np.trapezoid(tar, far), roc_auc_score(issame, scores))


def test_tar_and_threshold_at_far_hand_computed():
    # One false accept allowed (FAR 1/3 or 0.5 of 3): the lowest threshold keeping it is 0.6, where all 3 same pass.
    assert evaluate.threshold_at_far(SCORES, ISSAME, 1 / 3) == 0.6
    assert evaluate.threshold_at_far(SCORES, ISSAME, 0.5) == 0.6
    assert evaluate.tar_at_far(SCORES, ISSAME, 0.5) == 1.0
    np.testing.assert_array_equal(evaluate.threshold_at_far(SCORES, ISSAME, [1 / 3, 2 / 3, 1.0]), [0.6, 0.5, 0.4])
    # Ties: the pair at 0.5 is accepted together with its different-identity twin.
    tied_scores, tied_same = [0.5, 0.5, 0.3], [True, False, False]
    assert evaluate.threshold_at_far(tied_scores, tied_same, 0.5) == 0.5
    assert evaluate.tar_at_far(tied_scores, tied_same, 0.5) == 1.0


def test_tar_at_far_is_best_sklearn_point_within_far():
    scores, issame = random_pairs(1, n=3000)
    fars = [1e-1, 1e-2, 1e-3]
    sk_far, sk_tar, sk_thresholds = roc_curve(issame, scores, drop_intermediate=False)
    expected = [sk_tar[sk_far <= far].max() for far in fars]
    expected_thresholds = [sk_thresholds[sk_far <= far].min() for far in fars]
    np.testing.assert_allclose(evaluate.tar_at_far(scores, issame, fars), expected)
    np.testing.assert_array_equal(evaluate.threshold_at_far(scores, issame, fars), expected_thresholds)
    for far, threshold in zip(fars, expected_thresholds):
        assert np.mean(scores[~issame] >= threshold) <= far


def test_far_below_one_impostor_is_refused():
    assert evaluate.smallest_measurable_far(ISSAME) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"FAR=0.1 cannot be measured with 3 different-identity pairs.*at least 10"):
        evaluate.tar_at_far(SCORES, ISSAME, [0.5, 0.1])
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        evaluate.threshold_at_far(SCORES, ISSAME, 0.0)
    # 1e-3 of 1000 impostors is exactly one false accept.
    scores, issame = np.r_[np.linspace(0, 1, 1000), 2.0], np.r_[np.zeros(1000, bool), True]
    assert evaluate.threshold_at_far(scores, issame, 1e-3) == 1.0


def test_verify_hand_computed_folds():
    scores = [0.9, 0.1, 0.8, 0.2, 0.7, 0.75, 0.6, 0.4]
    issame = [True, False] * 4
    result = evaluate.verify(scores, issame, folds=4)
    # Fold 3 trains on 0.1F 0.2F 0.7T 0.75F 0.8T 0.9T: thresholds 0.45 and 0.775 both make 1 error;
    # the strictest, 0.775, is kept and rejects the held-out 0.6T.
    np.testing.assert_allclose(result.fold_thresholds, [0.5, 0.5, 0.5, 0.775])
    np.testing.assert_allclose(result.fold_accuracies, [1.0, 1.0, 0.5, 0.5])
    assert result.accuracy == pytest.approx(0.75)
    assert result.std == pytest.approx(0.25)


def test_verify_uses_contiguous_lfw_blocks():
    # 10 sets of 300 same then 300 different pairs, separable at 0.35 except 9 errors in set 4.
    scores = np.tile(np.r_[np.linspace(0.5, 1.0, 300), np.linspace(-0.5, 0.2, 300)], 10)
    issame = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    scores[4 * 600 + np.arange(3)] = 0.0
    scores[4 * 600 + 300 + np.arange(6)] = 0.95
    result = evaluate.verify(scores, issame)
    expected = [1.0] * 4 + [591 / 600] + [1.0] * 5
    np.testing.assert_allclose(result.fold_accuracies, expected)
    np.testing.assert_allclose(result.fold_thresholds, 0.35)
    assert result.accuracy == pytest.approx(1 - 9 / 6000)
    assert result.std == pytest.approx(np.std(expected))


def test_best_threshold_reaches_best_training_accuracy():
    scores, issame = random_pairs(2, n=300, decimals=2)
    threshold = evaluate.best_accuracy_threshold(scores, issame)
    best = max(np.mean((scores >= t) == issame) for t in np.r_[np.unique(scores), np.inf])
    assert np.mean((scores >= threshold) == issame) == best


@pytest.mark.parametrize(
    "scores, issame, folds, message",
    [
        ([0.1, 0.2], [True], 10, "one entry per pair"),
        ([0.1, np.nan, 0.3, 0.4], [True, False, True, False], 2, "NaN or infinity at pairs \\[1\\]"),
        ([0.1, 0.2, 0.3], [True, True, True], 2, "both same-identity and different-identity"),
        ([0.1, 0.2, 0.3], [True, False, True], 4, "folds must be between 2 and the number of pairs \\(3\\)"),
        ([0.1, 0.2, 0.3], [True, False, True], 1, "Received: folds=1"),
        ([0.1, 0.2, 0.3], [1, 0, 2], 2, "booleans"),
    ],
)
def test_bad_input_raises(scores, issame, folds, message):
    with pytest.raises(ValueError, match=message):
        evaluate.verify(scores, issame, folds=folds)
