"""The JSON file written beside each export: how to feed it and what it returns."""

import json
from pathlib import Path

import kerasface
from kerasface.export.images import VALUE_RANGE


def metadata_path(path):
    """Where the metadata of the export at `path` lives: `<path>.json`."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def describe(embedder, spec, format, report, recipe=None, io_details=None, images=None):
    """The metadata of one export, as a JSON-ready dict.

    Args:
        embedder: the exported Keras embedder.
        spec: its `ImageSpec`.
        format: the `Format` written.
        report: the `ExportReport` of the parity check.
        recipe: the zoo recipe the model came from, if any; gives the model
            name and the preprocessing (a string, or an object whose
            `description` is one).
        io_details: for TFLite, the interpreter's `(input, output)` details,
            whose dtypes and quantisation parameters are recorded.
        images: the `ParityImages` of the check; the parity entry then names
            the check images and counts the calibration images.
    """
    input_info = {
        "shape": [None, *spec.shape],
        "layout": "NHWC",
        "dtype": "float32",
        "value_range": list(VALUE_RANGE),
    }
    output_info = {"shape": [None, int(embedder.outputs[0].shape[-1])], "dtype": "float32"}
    if io_details is not None:
        for info, details in zip((input_info, output_info), io_details):
            info["dtype"] = details["dtype"].__name__
            if info["dtype"] != "float32":
                scale, zero_point = details["quantization"]
                info["quantization"] = {"scale": float(scale), "zero_point": int(zero_point)}
    return {
        "name": recipe.name if recipe is not None else embedder.name,
        "format": format.name,
        "kerasface_version": kerasface.__version__,
        "input": input_info,
        "preprocessing": _preprocessing_description(recipe),
        "preprocessing_in_model": True,
        "output": output_info,
        "embedding_dim": output_info["shape"][1],
        "parity": _parity(report, images),
    }


def _parity(report, images):
    parity = {"max_abs_error": report.max_abs_error, "mean_cosine": report.mean_cosine}
    if images is not None:
        parity["images"] = images.describe()
        parity["source"] = images.source
        parity["check_images"] = list(images.check_names)
        parity["calibration_images"] = len(images.calibration_names)
    return parity


def _preprocessing_description(recipe):
    preprocessing = getattr(recipe, "preprocessing", None)
    return getattr(preprocessing, "description", preprocessing)


def write_metadata(path, metadata):
    """Writes `metadata` beside the export at `path`; returns the JSON file's path."""
    target = metadata_path(path)
    target.write_text(json.dumps(metadata, indent=2) + "\n")
    return target
