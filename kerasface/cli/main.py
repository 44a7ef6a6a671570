"""The `kerasface` command line: a thin layer over the library.

Errors end a command with one line on stderr, `kerasface COMMAND: error: ...`,
and an exit status: 2 for bad input (arguments, files, names), 1 for a run
that failed (training diverged, out of memory, a runtime error of TensorFlow or
JAX), 70 for an error kerasface did not expect (a bug; `--debug` or
`KERASFACE_DEBUG=1` prints its traceback) and 130 when interrupted (Ctrl-C).
TensorFlow's start-up notes (oneDNN, CUDA probing, CPU instructions) are held
back; `--debug` shows them.
"""

import argparse
import os
import sys
import traceback
import zipfile

import kerasface
from kerasface._startup import start_backend

# Before TensorFlow is imported: its C++ logging reads this once. TensorFlow 2.21 logs its start-up through absl,
# which ignores it (and has no variable of its own), so `_start_backend` also holds those lines back.
if kerasface._TF_LOG_LEVEL_DEFAULTED:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

from kerasface.cli import align, convert, demo, evaluate, export, train, zoo  # noqa: E402

COMMANDS = (zoo, train, demo, align, evaluate, export, convert)

EXIT_FAILED, EXIT_INPUT, EXIT_BUG, EXIT_INTERRUPTED = 1, 2, 70, 130

# Lines of native start-up noise: they say nothing about the user's command.

# Errors about what the user gave: a name, an argument, a file.
INPUT_ERRORS = (
    ValueError,
    ImportError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    zipfile.BadZipFile,
)
# Errors of a run that was set up right: divergence (`kerasface.zoo.StopOnNaN`), memory, disk, device.
RUN_ERRORS = (OSError, FloatingPointError, MemoryError, EOFError)


class ArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose usage errors are one line too."""

    def error(self, message):
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser():
    parser = ArgumentParser(
        prog="kerasface",
        description="Keras 3 model zoo for face recognition.",
        epilog="Exit status: 0 done, 1 the run failed, 2 bad input, 70 internal error (a bug), 130 interrupted.",
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks and TensorFlow's start-up lines")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    for subparser in commands.choices.values():
        # SUPPRESS: the command's parser must not reset a --debug given before the command.
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("KERASFACE_DEBUG", "") not in ("", "0")
    try:
        start_backend(show_all=debug)
        return args.func(args)
    except KeyboardInterrupt:
        print(f"kerasface {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001  (every error ends as one line; `--debug` shows the traceback)
        if debug:
            traceback.print_exc()
        status, line = describe_error(error)
        print(f"kerasface {args.command}: {line}", file=sys.stderr)
        return status


def describe_error(error):
    """`(exit status, one line)` for an error that ended a command."""
    message = error_message(error)
    # A missing optional package is the user's to install; a name missing inside kerasface is a bug.
    ours = isinstance(error, ImportError) and (error.name or "").split(".")[0] == "kerasface"
    if (isinstance(error, INPUT_ERRORS) and not ours) or _is_opencv_error(error):
        return EXIT_INPUT, f"error: {message}"
    if isinstance(error, RUN_ERRORS) or _is_runtime_error(error) or type(error).__module__.startswith("kerasface"):
        return EXIT_FAILED, f"error: {message}"
    return EXIT_BUG, (
        f"internal error: {type(error).__name__}: {message} (a bug in kerasface: run again with --debug or "
        "KERASFACE_DEBUG=1 for the traceback, and report it)"
    )


def error_message(error, limit=1000):
    """The error's message on one line: TensorFlow's node and stack details dropped, whitespace collapsed."""
    text = getattr(error, "message", None) if _is_runtime_error(error) else None
    text = str(text if isinstance(text, str) else error)
    for marker in ("\nDetected at node", "\n\nStack trace", "\nStack trace for op definition"):
        text = text.split(marker)[0]
    if text.startswith("{{function_node") and "}}" in text:
        text = text.split("}}", 1)[1]
    text = " ".join(text.split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_opencv_error(error):
    cv2 = sys.modules.get("cv2")
    return cv2 is not None and isinstance(error, cv2.error)


def _is_runtime_error(error):
    """An error of the TensorFlow or JAX runtime (bad data in a graph, out of memory, a device failure)."""
    tf_errors = getattr(sys.modules.get("tensorflow"), "errors", None)
    if tf_errors is not None and isinstance(error, tf_errors.OpError):
        return True
    jax_errors = getattr(sys.modules.get("jax"), "errors", None)
    runtime_error = getattr(jax_errors, "JaxRuntimeError", None)
    return runtime_error is not None and isinstance(error, runtime_error)


def load_model_file(path, **kwargs):
    """`keras.saving.load_model(path)` whose every failure is a `ValueError` naming the file.

    Imports `kerasface.zoo` first: that registers the kerasface objects a `.keras` file may hold.
    """
    import keras

    import kerasface.zoo  # noqa: F401

    where = f"the model {str(path)!r}"
    if not os.path.exists(path):
        raise FileNotFoundError(f"Could not load {where}: it does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"Could not load {where}: it is a folder, not a .keras file.")
    if str(path).endswith(".keras") and not zipfile.is_zipfile(path):
        raise ValueError(f"Could not load {where}: it is not a .keras zip archive (truncated, or another format).")
    try:
        return keras.saving.load_model(path, **kwargs)
    except (ImportError, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001  (zip, HDF5, JSON and config errors all mean: not a usable model)
        message = error_message(error)
        if str(path) not in message:
            message = f"{type(error).__name__}: {message}"
        raise ValueError(f"Could not load {where}: {message}") from error


if __name__ == "__main__":
    sys.exit(main())
