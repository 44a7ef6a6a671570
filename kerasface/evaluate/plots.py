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


def plot_features_2d(panels, path, class_names=None):
    """Draws 2-d features, one colour per class, one panel per model (Wen et al. 2016, Fig. 3).

    Args:
        panels: a list of `(title, features (N, 2), labels (N,))`.
        path: the PNG file to write.
        class_names: optional legend names, indexed by label.

    Returns:
        `path` as a `pathlib.Path`.
    """
    for title, features, labels in panels:
        if np.asarray(features).ndim != 2 or np.asarray(features).shape[1] != 2:
            raise ValueError(f"plot_features_2d: {title!r} features must be (N, 2). Received {np.shape(features)}")
    figure = Figure(figsize=(5.5 * len(panels), 5.2), dpi=100)
    FigureCanvasAgg(figure)
    colours = [f"C{k}" for k in range(10)]
    for position, (title, features, labels) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), position)
        features, labels = np.asarray(features), np.asarray(labels)
        for label in np.unique(labels):
            chosen = labels == label
            name = class_names[label] if class_names is not None else str(label)
            axes.scatter(*features[chosen].T, s=2, alpha=0.5, color=colours[int(label) % 10], label=name)
        axes.set_title(title)
        axes.set_aspect("equal", adjustable="datalim")
        axes.legend(markerscale=5, fontsize=7, loc="upper right")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png")
    return path
