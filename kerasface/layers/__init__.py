"""Layers with state of their own: the centre loss."""

from kerasface.layers.center_loss import CenterLoss, center_update

__all__ = ["CenterLoss", "center_update"]
