"""kerasface: Keras 3 model zoo for deep face recognition and metric learning.

Every subpackage is reachable from here (`kerasface.zoo`, `kerasface.evaluate`,
`kerasface.data`, ...). The ones whose classes a `.keras` file names (heads,
layers, losses, optimisers, the zoo's `FaceModel` and schedules) are imported
with the package, so `import kerasface` is all `keras.saving.load_model`
needs; the rest (data, alignment, evaluation, export, conversion, ...) are
imported on first use (PEP 562), as they pull in OpenCV, onnx or tf.data.
"""

import importlib
import os

# TensorFlow's C++ start-up notes (oneDNN, CUDA probing) are INFO lines; keep warnings. Recorded so that the
# command line, which shows less, knows whether the level was the user's choice.
_TF_LOG_LEVEL_DEFAULTED = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

__version__ = "0.1.0"

SUBMODULES = (
    "align",
    "callbacks",
    "convert",
    "backbones",
    "checkpoints",
    "data",
    "distribute",
    "evaluate",
    "export",
    "heads",
    "layers",
    "losses",
    "optimizers",
    "train",
    "zoo",
)


from kerasface._startup import start_backend  # noqa: E402

start_backend(show_all=bool(os.environ.get("KERASFACE_DEBUG")))
# Registered with Keras' serialisation on import: a saved model names them.
from kerasface import heads, layers, losses, optimizers, zoo  # noqa: E402,F401


def __getattr__(name):
    if name in SUBMODULES:
        # import_module also sets the attribute on this package, so this runs once per name.
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}. Its subpackages: {', '.join(SUBMODULES)}.")


def __dir__():
    return sorted({*globals(), *SUBMODULES})


__all__ = ["__version__", *SUBMODULES]
