"""`kerasface convert`: a reference checkpoint (PyTorch, ONNX, TF1) to a zoo `.keras` model."""

import sys


def register(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert an insightface/facenet/SphereFace checkpoint (.pth, .onnx, TF1) to a zoo .keras model",
        description=(
            "Reads a PyTorch state dict (.pth/.pt, zip or legacy format; never running code from it), an ONNX "
            "recognition model or a TensorFlow 1 checkpoint (PREFIX or PREFIX.index), loads it strictly into "
            "the recipe's backbone with the source's input normalisation, and saves the FaceModel. For ONNX "
            "sources it prints the parity with onnxruntime."
        ),
    )
    parser.add_argument("source", help="the checkpoint: .pth/.pt, .onnx, or a TF1 checkpoint prefix")
    parser.add_argument("out", help="the .keras file to write (written only if the conversion succeeds)")
    parser.add_argument("--recipe", required=True, help="zoo recipe, e.g. iresnet50_arcface, facenet, sphereface20")
    parser.add_argument("--num-classes", type=int, help="classes of the recipe's head (default: the checkpoint's "
                        "or the recipe's)")
    parser.add_argument("--images", help="folder of aligned face images for the parity check (default: synthetic)")
    parser.set_defaults(func=run)


def run(args):
    from kerasface.convert.recipes import convert_checkpoint, save_atomically

    images = None
    if args.images:
        from kerasface import zoo
        from kerasface.export import ImageSpec, load_images

        images = load_images(args.images, ImageSpec(*zoo.recipe(args.recipe).input_shape))
    try:
        model, report, parity = convert_checkpoint(args.source, args.recipe, args.num_classes, images)
        save_atomically(model, args.out)
    except (ValueError, ImportError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"source:        {report.path} ({report.format}, {report.family})")
    print(f"tensors:       {report.assigned} assigned, every checkpoint tensor used")
    print(f"preprocessing: {report.preprocessing} (inside the model: feed raw RGB pixels, 0-255)")
    for note in report.notes:
        print(f"note:          {note}")
    if parity.max_abs_error is None:
        print(f"parity:        not measured ({parity.reason})")
    else:
        print(
            f"parity:        {parity.runtime} on {parity.images} images: max|diff| {parity.max_abs_error:.2e} "
            f"({parity.max_abs_error / max(parity.scale, 1e-12):.1e} of the largest |embedding| {parity.scale:.3g}), "
            f"mean cos {parity.mean_cosine:.7f}"
        )
    print(f"wrote:         {args.out}")
    return 0

