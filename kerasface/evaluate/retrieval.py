"""Retrieval and identification: Market-1501 CMC and mAP, closed- and open-set 1:N search."""

import dataclasses

import numpy as np

from kerasface._checks import check_positive_int
from kerasface.evaluate.similarity import check_features, cosine_similarity_matrix
from kerasface.evaluate.verification import operating_points

# Market-1501 marks unusable gallery boxes with this person id.
JUNK_ID = -1
# Queries scored at once, so that Market's 3368 x 19732 scores never sit in memory together.
_BLOCK = 512


def _check_per_row(values, features, name, features_name):
    values = np.asarray(values)
    if values.shape != (features.shape[0],):
        raise ValueError(
            f"{name} must hold one entry per row of {features_name} ({features.shape[0]}). "
            f"Received: {name}.shape={values.shape}"
        )
    return values


def _similarity_blocks(queries, gallery):
    """Yields `(rows, cosine similarities of those query rows with the gallery)`."""
    for start in range(0, queries.shape[0], _BLOCK):
        rows = slice(start, start + _BLOCK)
        yield rows, cosine_similarity_matrix(queries[rows], gallery)


def average_precision(hits):
    """AP of one ranked list: mean precision at the rank of each hit (0 without hits)."""
    positions = np.flatnonzero(hits)
    if positions.size == 0:
        return 0.0
    return float(np.mean(np.arange(1, positions.size + 1) / (positions + 1)))


@dataclasses.dataclass(frozen=True)
class RetrievalResult:
    """CMC and mAP over the queries that have a true match in the gallery.

    Attributes:
        cmc: `{rank: fraction of queries with a true match within the top rank}`.
        mean_ap: mean average precision.
        num_queries: queries evaluated; those without any valid true match
            are skipped, as in Market-1501's and torchreid's evaluation.
    """

    cmc: dict
    mean_ap: float
    num_queries: int


def cmc_map(
    query_features,
    query_ids,
    query_cams,
    gallery_features,
    gallery_ids,
    gallery_cams,
    ranks=(1, 5, 10),
):
    """Re-identification CMC and mAP with the Market-1501 protocol.

    Each query ranks the gallery by cosine similarity (ties keep gallery
    order). Gallery entries of the query's id seen by the query's camera, and
    entries of id `-1` (Market's junk boxes), are removed before ranking;
    distractors (any other id absent from the queries, e.g. Market's `0`)
    stay as wrong matches. AP is the mean precision at each true match, as
    `sklearn.metrics.average_precision_score` computes it.

    Args:
        query_features, gallery_features: embeddings, shape (n, dim).
        query_ids, gallery_ids: person id of each row.
        query_cams, gallery_cams: camera id of each row.
        ranks: the CMC ranks to report. Defaults to `(1, 5, 10)`.

    Returns:
        A `RetrievalResult`.

    Reference:
        - [Zheng et al., 2015, Scalable Person Re-identification: A Benchmark](https://openaccess.thecvf.com/content_iccv_2015/papers/Zheng_Scalable_Person_Re-Identification_ICCV_2015_paper.pdf)
    """
    queries = check_features(query_features, "query_features")
    gallery = check_features(gallery_features, "gallery_features")
    query_ids = _check_per_row(query_ids, queries, "query_ids", "query_features")
    query_cams = _check_per_row(query_cams, queries, "query_cams", "query_features")
    gallery_ids = _check_per_row(gallery_ids, gallery, "gallery_ids", "gallery_features")
    gallery_cams = _check_per_row(gallery_cams, gallery, "gallery_cams", "gallery_features")
    ranks = tuple(check_positive_int(rank, "ranks", "cmc_map") for rank in ranks)
    first_hits, precisions = [], []
    for rows, similarity in _similarity_blocks(queries, gallery):
        for query_id, query_cam, scores in zip(query_ids[rows], query_cams[rows], similarity):
            junk = ((gallery_ids == query_id) & (gallery_cams == query_cam)) | (gallery_ids == JUNK_ID)
            order = np.argsort(-scores[~junk], kind="stable")
            hits = gallery_ids[~junk][order] == query_id
            if hits.any():
                first_hits.append(np.argmax(hits))
                precisions.append(average_precision(hits))
    if not first_hits:
        raise ValueError("cmc_map: no query has a true match in the gallery once junk entries are removed.")
    first_hits = np.asarray(first_hits)
    return RetrievalResult(
        cmc={rank: float(np.mean(first_hits < rank)) for rank in ranks},
        mean_ap=float(np.mean(precisions)),
        num_queries=len(first_hits),
    )


@dataclasses.dataclass(frozen=True)
class Identification:
    """The answer of a 1:N search.

    Attributes:
        ids: (probes, top_k) gallery identities, best first.
        scores: (probes, top_k) their scores (best cosine over the identity's images).
        accepted: (probes,) `False` where the best score is below the threshold.
    """

    ids: np.ndarray
    scores: np.ndarray
    accepted: np.ndarray


def identify(gallery_features, gallery_ids, probe_features, top_k=5, threshold=None):
    """Searches each probe in the gallery (1:N identification).

    An identity scores the highest cosine similarity between the probe and
    that identity's gallery images.

    Args:
        gallery_features: enrolled embeddings, shape (n, dim).
        gallery_ids: identity of each gallery row (several rows may share one).
        probe_features: embeddings to identify, shape (m, dim).
        top_k: identities returned per probe, at most the number of
            gallery identities. Defaults to `5`.
        threshold: if given, probes whose best score is below it are
            rejected (open-set: "not in the gallery"). Defaults to `None`.

    Returns:
        An `Identification`.
    """
    gallery = check_features(gallery_features, "gallery_features")
    probes = check_features(probe_features, "probe_features")
    gallery_ids = _check_per_row(gallery_ids, gallery, "gallery_ids", "gallery_features")
    top_k = check_positive_int(top_k, "top_k", "identify")
    identities, identity_of_row = np.unique(gallery_ids, return_inverse=True)
    if top_k > identities.size:
        raise ValueError(
            f"identify: top_k must be at most the number of gallery identities ({identities.size}). "
            f"Received: top_k={top_k}"
        )
    by_identity = np.argsort(identity_of_row, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(identity_of_row[by_identity]) != 0])
    ids, scores = [], []
    for _, similarity in _similarity_blocks(probes, gallery):
        identity_scores = np.maximum.reduceat(similarity[:, by_identity], starts, axis=1)
        best = np.argsort(-identity_scores, axis=1, kind="stable")[:, :top_k]
        ids.append(identities[best])
        scores.append(np.take_along_axis(identity_scores, best, axis=1))
    ids, scores = np.concatenate(ids), np.concatenate(scores)
    accepted = np.ones(len(scores), dtype=bool) if threshold is None else scores[:, 0] >= threshold
    return Identification(ids=ids, scores=scores, accepted=accepted)


@dataclasses.dataclass(frozen=True)
class IdentificationRates:
    """Closed- and open-set identification rates.

    Attributes:
        rank1: fraction of mated probes (id in the gallery) whose best identity is right.
        dir_at_far: `{far: detection and identification rate}`: the fraction
            of mated probes identified at rank 1 with a score at or above the
            threshold where at most `far` of the non-mated probes score.
        thresholds: `{far: that threshold}`.
    """

    rank1: float
    dir_at_far: dict
    thresholds: dict


def identification_rates(gallery_features, gallery_ids, probe_features, probe_ids, far=(1e-2, 1e-1)):
    """Rank-1 and DIR@FAR of 1:N search, as the IJB-C and NIST FRVT open-set protocols.

    Probes whose id is in the gallery are mated; the others are non-mated and
    give the false alarms: a threshold `t` has FAR (FPIR) = fraction of
    non-mated probes whose best score is `>= t`, and DIR = fraction of mated
    probes identified at rank 1 with a score `>= t`. The threshold for a FAR
    is chosen as `threshold_at_far` does.

    Args:
        gallery_features, gallery_ids: the enrolled embeddings and identities.
        probe_features, probe_ids: the searched embeddings and their true ids.
        far: a false alarm rate or a sequence of them; `None` for rank-1 only
            (closed set, no non-mated probes needed). Defaults to `(1e-2, 1e-1)`.

    Returns:
        An `IdentificationRates`.

    Reference:
        - [Maze et al., 2018, IARPA Janus Benchmark-C](https://doi.org/10.1109/ICB2018.2018.00033)
    """
    search = identify(gallery_features, gallery_ids, probe_features, top_k=1)
    probe_ids = _check_per_row(probe_ids, search.scores, "probe_ids", "probe_features")
    mated = np.isin(probe_ids, np.asarray(gallery_ids))
    if not mated.any():
        raise ValueError("identification_rates: no probe id is in the gallery, so rank-1 is undefined.")
    identified = mated & (search.ids[:, 0] == probe_ids)
    rank1 = float(identified.sum() / mated.sum())
    if far is None:
        return IdentificationRates(rank1=rank1, dir_at_far={}, thresholds={})
    if mated.all():
        raise ValueError(
            "identification_rates: DIR@FAR needs non-mated probes (ids absent from the gallery). "
            "Pass far=None for rank-1 only."
        )
    fars = np.atleast_1d(np.asarray(far, dtype=np.float64))
    counted = identified | ~mated
    thresholds, detected = operating_points(
        search.scores[counted, 0], identified[counted], fars, negatives="non-mated probes"
    )
    return IdentificationRates(
        rank1=rank1,
        dir_at_far=dict(zip(fars.tolist(), (detected / mated.sum()).tolist())),
        thresholds=dict(zip(fars.tolist(), thresholds.tolist())),
    )
