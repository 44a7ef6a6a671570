"""Layers with state of their own: the centre loss."""

from kerasface.layers.center_loss import CenterLoss, moved_centers

__all__ = ["CenterLoss", "moved_centers"]
