"""Imports of the optional export packages, with an error that names the fix."""

import importlib

# Module name -> the PyPI package that provides it.
_PACKAGES = {
    "tf2onnx": "tf2onnx",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "ai_edge_litert": "ai-edge-litert",
}


def require(module, purpose):
    """Imports `module`, or raises `ImportError` saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs the optional package `{_PACKAGES.get(module, module)}`, "
            f'which is not installed. Install the export extras with: pip install "kerasface[export]"'
        ) from error
