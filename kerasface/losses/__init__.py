"""Metric-learning losses: triplet (semi-hard, batch-hard, batch-all) and contrastive."""

from kerasface.losses.contrastive import ContrastiveLoss, contrastive_loss
from kerasface.losses.distances import pairwise_distances
from kerasface.losses.triplet import (
    FractionPositiveTriplets,
    TripletBatchAllLoss,
    TripletHardLoss,
    TripletSemiHardLoss,
    triplet_batch_all,
    triplet_batch_all_loss,
    triplet_hard_loss,
    triplet_semihard_loss,
)

__all__ = [
    "ContrastiveLoss",
    "FractionPositiveTriplets",
    "TripletBatchAllLoss",
    "TripletHardLoss",
    "TripletSemiHardLoss",
    "contrastive_loss",
    "pairwise_distances",
    "triplet_batch_all",
    "triplet_batch_all_loss",
    "triplet_hard_loss",
    "triplet_semihard_loss",
]
