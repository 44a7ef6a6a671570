"""kerasface: Keras 3 model zoo for deep face recognition and metric learning."""

import os

# TensorFlow's C++ start-up notes (oneDNN, CUDA probing) are INFO lines; keep warnings.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from kerasface import heads, layers, losses, zoo  # noqa: E402

__version__ = "0.1.0"
