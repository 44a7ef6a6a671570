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


# --- insightface's protocol -------------------------------------------------------------------------------------


def lfw_shaped(seed, noise=0.8, dim=32):
    """6000 pairs in LFW's order (10 sets of 300 same then 300 different) of unnormalised embeddings."""
    rng = np.random.default_rng(seed)
    issame = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    identities = rng.normal(size=(6000, dim))
    embeddings_a = identities + noise * rng.normal(size=(6000, dim))
    partners = np.where(issame[:, None], identities, rng.normal(size=(6000, dim)))
    embeddings_b = (partners + noise * rng.normal(size=(6000, dim))) * rng.uniform(0.5, 3, size=(6000, 1))
    return embeddings_a, embeddings_b, issame


def reference_calculate_accuracy(threshold, dist, actual_issame):
    predict_issame = dist < threshold
    tp = np.sum(predict_issame & actual_issame)
    tn = np.sum(~predict_issame & ~actual_issame)
    return float(tp + tn) / dist.size


def reference_calculate_val_far(threshold, dist, actual_issame):
    predict_issame = dist < threshold
    val = float(np.sum(predict_issame & actual_issame)) / float(np.sum(actual_issame))
    far = float(np.sum(predict_issame & ~actual_issame)) / float(np.sum(~actual_issame))
    return val, far


def reference_slinear(x, y, target):
    """interp1d(x, y, kind="slinear") as SciPy <= 1.8 built it: the degree-1 B-spline on knots [x0, x, x_last].

    SciPy >= 1.9 refuses the repeated FARs that insightface passes ("Expect x to not have duplicates").
    """
    from scipy.interpolate import BSpline

    return float(BSpline(np.r_[x[0], x, x[-1]], y, k=1)(target))


def reference_insightface(embeddings_a, embeddings_b, issame, nrof_folds=10, far_target=1e-3):
    """insightface's protocol written again from deepinsight/insightface recognition/arcface_torch/eval/
    verification.py (`test` from the normalisation on, `evaluate`, `calculate_roc`, `calculate_val`), with
    its loops over thresholds and sklearn's KFold, as an independent check of the vectorised version."""
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import normalize

    dist = np.sum(np.square(np.subtract(normalize(embeddings_a), normalize(embeddings_b))), 1)
    indices = np.arange(len(issame))
    accuracy, best_thresholds = np.zeros(nrof_folds), np.zeros(nrof_folds)
    val, far = np.zeros(nrof_folds), np.zeros(nrof_folds)
    thresholds, val_thresholds = np.arange(0, 4, 0.01), np.arange(0, 4, 0.001)
    for fold_idx, (train_set, test_set) in enumerate(KFold(n_splits=nrof_folds, shuffle=False).split(indices)):
        acc_train = np.zeros(len(thresholds))
        for threshold_idx, threshold in enumerate(thresholds):
            acc_train[threshold_idx] = reference_calculate_accuracy(threshold, dist[train_set], issame[train_set])
        best_thresholds[fold_idx] = thresholds[np.argmax(acc_train)]
        accuracy[fold_idx] = reference_calculate_accuracy(best_thresholds[fold_idx], dist[test_set], issame[test_set])

        far_train = np.zeros(len(val_thresholds))
        for threshold_idx, threshold in enumerate(val_thresholds):
            _, far_train[threshold_idx] = reference_calculate_val_far(threshold, dist[train_set], issame[train_set])
        if np.max(far_train) >= far_target:
            threshold = reference_slinear(far_train, val_thresholds, far_target)
        else:
            threshold = 0.0
        val[fold_idx], far[fold_idx] = reference_calculate_val_far(threshold, dist[test_set], issame[test_set])
    return {
        "accuracy": np.mean(accuracy),
        "std": np.std(accuracy),
        "fold_accuracies": tuple(accuracy),
        "fold_thresholds": tuple(best_thresholds),
        "val": np.mean(val),
        "val_std": np.std(val),
        "far": np.mean(far),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_insightface_protocol_equals_a_loop_reimplementation(seed):
    embeddings_a, embeddings_b, issame = lfw_shaped(seed)
    result = evaluate.insightface_verification(embeddings_a, embeddings_b, issame)
    expected = reference_insightface(embeddings_a, embeddings_b, issame)
    assert result.protocol == "insightface"
    # To the last digit: the same counts, divisions and means.
    assert {name: getattr(result, name) for name in expected} == expected
    assert 0.9 < result.accuracy < 0.995 and 0.3 < result.val < 0.99  # neither saturated nor trivial
    assert result.far_target == 1e-3 and 0 < result.far < 3e-3


def test_insightface_val_at_a_far_no_threshold_reaches():
    # Three in four different pairs are antipodal (distance 4, beyond the grid's 3.999), so the training FAR
    # never reaches 0.5: insightface then uses threshold 0, which accepts nothing.
    rng = np.random.default_rng(3)
    embeddings_a = rng.normal(size=(400, 8))
    issame = np.arange(400) % 2 == 0
    embeddings_b = np.where(issame[:, None], embeddings_a + 0.1 * rng.normal(size=(400, 8)), -embeddings_a)
    embeddings_b[1::8] = rng.normal(size=(50, 8))
    result = evaluate.insightface_verification(embeddings_a, embeddings_b, issame, far=0.5)
    expected = reference_insightface(embeddings_a, embeddings_b, issame, far_target=0.5)
    assert result.fold_val_thresholds == (0.0,) * 10
    assert (result.val, result.val_std, result.far) == (expected["val"], expected["val_std"], expected["far"])
    assert (result.val, result.far) == (0.0, 0.0)
    assert result.accuracy == expected["accuracy"] > 0.99


def test_insightface_hand_computed():
    # Squared distances 2 - 2 cos of unit vectors, kept off the 0.01 grid: 0.205 same, 2.0 different,
    # 1.005 same, 3.795 different.
    def unit(cos):
        return [cos, np.sqrt(1 - cos**2)]

    embeddings_a = np.array([[1.0, 0.0]] * 4)
    embeddings_b = 3 * np.array([unit(0.8975), unit(0.0), unit(0.4975), unit(-0.8975)])  # scale is normalised away
    issame = [True, False, True, False]
    np.testing.assert_allclose(evaluate.squared_distances(embeddings_a, embeddings_b), [0.205, 2.0, 1.005, 3.795])
    result = evaluate.insightface_verification(embeddings_a, embeddings_b, issame, folds=2, far=0.5)
    # Fold 0 trains on (1.005 same, 3.795 different): the first perfect grid threshold (distance < t) is 1.01,
    # which accepts 0.205 and rejects 2.0. Fold 1 trains on (0.205 same, 2.0 different): 0.21 rejects 1.005.
    np.testing.assert_allclose(result.fold_thresholds, [1.01, 0.21])
    assert result.fold_accuracies == (1.0, 0.5)
    assert (result.accuracy, result.std) == (0.75, 0.25)
    # VAL@FAR=0.5: the training FAR jumps from 0 to 1 between the grid points around the different pair
    # (3.795, 2.0); t is interpolated halfway between them. Fold 0 then accepts both of its pairs.
    np.testing.assert_allclose(result.fold_val_thresholds, [3.795, 2.0005], atol=6e-4)
    assert (result.val, result.val_std, result.far) == (1.0, 0.0, 0.5)


def test_insightface_and_midpoint_protocols_differ():
    """Guards the default: the two protocols give different accuracies on these pairs."""
    embeddings_a, embeddings_b, issame = lfw_shaped(2)
    insightface = evaluate.insightface_verification(embeddings_a, embeddings_b, issame)
    midpoint = evaluate.midpoint_verification(evaluate.cosine_scores(embeddings_a, embeddings_b), issame)
    assert midpoint.protocol == "midpoint" and evaluate.midpoint_verification is evaluate.verify
    differ = np.not_equal(insightface.fold_accuracies, midpoint.fold_accuracies)
    assert differ.sum() == 5 and insightface.accuracy - midpoint.accuracy == pytest.approx(5 / 6000)


def test_slinear_matches_scipy_interp1d_without_repeats():
    from scipy.interpolate import interp1d

    from kerasface.evaluate.verification import _slinear

    rng = np.random.default_rng(4)
    x, y = np.sort(rng.random(50)), rng.random(50)
    for target in rng.uniform(x[0], x[-1], 20):
        assert _slinear(x, y, target) == float(interp1d(x, y, kind="slinear")(target))
    repeated = np.array([0.0, 0.0, 0.1, 0.1, 0.1, 0.3, 1.0, 1.0])
    values = np.arange(8.0)
    for target in (0.05, 0.1, 0.2, 0.3, 0.999, 1.0):
        assert _slinear(repeated, values, target) == reference_slinear(repeated, values, target)


@pytest.mark.parametrize(
    "a, b, issame, kwargs, message",
    [
        (np.ones((4, 2)), np.ones((4, 3)), [True, False] * 2, {}, "embeddings_a.shape=\\(4, 2\\)"),
        (np.ones((4, 2)), np.ones((4, 2)), [True, False], {}, "issame.shape=\\(2,\\)"),
        (np.ones((4, 2)), np.ones((4, 2)), [True, False] * 2, {"folds": 5}, "folds=5"),
        (np.ones((4, 2)), np.ones((4, 2)), [True, False] * 2, {"folds": 2, "far": 0}, "far=0"),
        (np.ones((4, 2)), np.ones((4, 2)), [True, True, False, False], {"folds": 2}, "held-out pairs of fold 0"),
    ],
)
def test_insightface_bad_input_raises(a, b, issame, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate.insightface_verification(a, b, issame, **kwargs)
