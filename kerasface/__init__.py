"""kerasface: Keras 3 model zoo for deep face recognition and metric learning."""

from kerasface import heads, layers, losses, zoo

__version__ = "0.1.0"
