"""`kerasface export`: write a model's embedder for phones and edge devices and check it."""

import sys
from pathlib import Path


def register(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a .keras model's embedder to SavedModel, TFLite or ONNX, checked against Keras",
        description=(
            "Writes the embedder (raw 0-255 images in, embeddings out, normalisation inside) in each "
            "format with a JSON metadata file beside it, loads it back with its own runtime and prints "
            "its agreement with Keras, its size and its latency per image (batch 1) on this machine."
        ),
    )
    parser.add_argument("model", help="a .keras file (a zoo FaceModel or an embedding model)")
    parser.add_argument("out", help="output folder; exports are named after the model file")
    parser.add_argument(
        "--format",
        required=True,
        help=(
            "saved_model, tflite, tflite_fp16, tflite_int8, onnx, or all (every one; "
            "tflite_int8 only with --representative)"
        ),
    )
    parser.add_argument(
        "--representative", help="folder of aligned face images calibrating tflite_int8 (a few hundred)"
    )
    parser.add_argument("--int8-io", action="store_true", help="tflite_int8 with int8 input and output")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per runtime (default: 2)")
    parser.set_defaults(func=run)


def run(args):
    from kerasface.export.formats import FORMATS, get_format

    try:
        names = list(FORMATS) if args.format == "all" else [get_format(args.format).name]
    except ValueError as error:
        print(f"kerasface export: error: {error}", file=sys.stderr)
        return 2
    if args.format == "all" and args.representative is None:
        names.remove("tflite_int8")
        print("note: tflite_int8 skipped, it needs --representative", file=sys.stderr)
    if args.int8_io and "tflite_int8" not in names:
        print("kerasface export: error: --int8-io applies to tflite_int8 only", file=sys.stderr)
        return 2
    if not Path(args.model).is_file():
        print(f"kerasface export: error: the model {args.model!r} is not a file", file=sys.stderr)
        return 2
    from kerasface import export
    from kerasface.cli.main import error_message, load_model_file

    if not export.limit_tensorflow_threads(args.threads):
        print("note: TensorFlow already started, Keras and SavedModel keep their thread count", file=sys.stderr)
    try:
        model = load_model_file(args.model, compile=False)
        embedder = getattr(model, "embedder", model)
        image = export.synthetic_images(export.ImageSpec.of(embedder), count=1)[0]
        keras_latency = export.latency_per_image(export.KerasRuntime(embedder), image)
        print(_row("format", "runtime", "size", "max|diff|", "mean cos", "ms/image"))
        print(_row("keras", "keras", "-", "-", "-", f"{keras_latency * 1e3:.3f}"))
        for name in names:
            fmt = FORMATS[name]
            path = Path(args.out) / f"{Path(args.model).stem}{fmt.suffix}"
            report = export.export(
                model,
                path,
                format=name,
                representative_data=args.representative,
                int8_io=args.int8_io and name == "tflite_int8",
            )
            runtime = export.load_runtime(fmt, path, num_threads=args.threads)
            latency = export.latency_per_image(runtime, image)
            print(
                _row(
                    name,
                    runtime.name,
                    _human_size(report.size_bytes),
                    f"{report.max_abs_error:.2e}",
                    f"{report.mean_cosine:.6f}",
                    f"{latency * 1e3:.3f}",
                )
            )
            print(f"  {path} (metadata: {export.metadata_path(path).name})")
            print(f"  parity measured on {report.parity_images}")
    except (ValueError, ImportError, OSError, export.ExportMismatchError) as error:
        print(f"kerasface export: error: {error_message(error)}", file=sys.stderr)
        return 1
    return 0


def _row(*cells):
    return "".join(f"{cell:<13}" for cell in cells).rstrip()


def _human_size(size_bytes):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.2f} {unit}"
    return f"{size_bytes} B"
