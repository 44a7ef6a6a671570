"""Keras and its backend started with their native start-up lines held back.

TensorFlow 2.21 logs through absl, which ignores `TF_CPP_MIN_LOG_LEVEL`, so
its notes (oneDNN, CUDA probing, CPU instructions) go straight to file
descriptor 2. `import kerasface` and the command line start the backend
inside `native_stderr_filtered`, which drops those known notes and passes
every other line through; `KERASFACE_DEBUG=1` shows them all.
"""

import contextlib
import os
import sys
import tempfile

START_UP_NOTES = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning: Could not find TensorRT",
    "An NVIDIA GPU may be present on this machine, but a CUDA-enabled jaxlib is not installed",
    "Unable to initialize backend 'cuda'",
    "Unable to initialize backend 'tpu'",
)


def start_backend(show_all=False):
    """Imports Keras and its backend with their native start-up lines held back (all shown with `show_all`)."""
    if "keras" in sys.modules:
        return
    with contextlib.ExitStack() as stack:
        if not show_all:
            stack.enter_context(native_stderr_filtered())
        import keras  # noqa: F401

        # The CUDA probe prints at the first device query, not at import.
        if "tensorflow" in sys.modules:
            sys.modules["tensorflow"].config.list_physical_devices()
        elif "jax" in sys.modules:
            sys.modules["jax"].devices()


@contextlib.contextmanager
def native_stderr_filtered():
    """Sends file descriptor 2 to a temporary file for the block, then prints its lines less `START_UP_NOTES`.

    Native libraries write to the descriptor, not to `sys.stderr`; redirecting
    the descriptor is the only way to hold their lines back.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor (a detached process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines()
            kept = [line for line in lines if line.strip() and not any(note in line for note in START_UP_NOTES)]
            if kept:
                print("\n".join(kept), file=sys.stderr)
