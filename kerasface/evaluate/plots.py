"""ROC figure."""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_roc(far, tar, path, label=None):
    """Writes the ROC curve (TAR against FAR on a log axis) as a PNG.

    Points with FAR = 0 have no place on a log axis and are left out. The
    figure is drawn with the Agg canvas directly, leaving pyplot's state alone.

    Args:
        far, tar: the curve, as returned by `roc`.
        path: the PNG file to write.
        label: optional legend text, e.g. the model name.

    Returns:
        `path` as a `pathlib.Path`.
    """
    far, tar = np.asarray(far, dtype=np.float64), np.asarray(tar, dtype=np.float64)
    if far.shape != tar.shape or far.ndim != 1:
        raise ValueError(
            f"far and tar must be 1-D of one length. Received: far.shape={far.shape}, tar.shape={tar.shape}"
        )
    shown = far > 0
    if not shown.any():
        raise ValueError("plot_roc: every FAR is 0, so nothing can be drawn on a log axis.")
    figure = Figure(figsize=(5, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(far[shown], tar[shown], label=label)
    axes.set_xscale("log")
    axes.set_ylim(0.0, 1.01)
    axes.set_xlabel("False accept rate (FAR)")
    axes.set_ylabel("True accept rate (TAR)")
    axes.grid(True, which="both", alpha=0.3)
    if label is not None:
        axes.legend(loc="lower right")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png")
    return path
