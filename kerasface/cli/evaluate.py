"""`kerasface evaluate`: verification or re-identification metrics of a saved model."""

import argparse
import sys
from pathlib import Path

TABLE_FARS = (1e-1, 1e-2, 1e-3, 1e-4)
DEPLOYMENT_FAR = 1e-3


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy, TAR@FAR and ROC on face pairs, or CMC/mAP on Market-1501",
        description=(
            "Scores a saved .keras embedding model. The model receives RGB pixels in [0, 255] as "
            "float32, resized to its input size, so it must hold its own preprocessing."
        ),
    )
    parser.add_argument("model", help="a .keras model from images (n, h, w, 3) to embeddings (n, dim)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", help="LFW pairs.txt (with --root)")
    source.add_argument("--bin", help="insightface verification file (lfw.bin, cfp_fp.bin, agedb_30.bin)")
    source.add_argument("--reid", help="Market-1501 folder holding query/ and bounding_box_test/")
    parser.add_argument("--root", help="LFW image folder (name/name_0001.jpg), with --pairs")
    parser.add_argument("--out", default=".", help="folder for roc.png (default: the current folder)")
    parser.add_argument("--folds", type=int, default=10, help="verification folds (default: 10)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="concatenate each embedding with its horizontal flip's (default: on)",
    )
    parser.set_defaults(func=run)


def run(args):
    if args.pairs and not args.root:
        print("error: --pairs needs --root, the LFW image folder", file=sys.stderr)
        return 2
    import keras

    from kerasface import evaluate  # importing kerasface registers its serialisable layers, heads and losses

    try:
        model = keras.saving.load_model(args.model)
        if args.reid:
            print(reid_table(model, args))
            return 0
        scores, issame = _verification_scores(model, args)
        print(verification_table(scores, issame, args.folds))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        far, tar, _ = evaluate.roc(scores, issame)
        print(f"ROC curve: {evaluate.plot_roc(far, tar, out / 'roc.png', label=Path(args.model).stem)}")
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _image_size(model):
    """The model's (height, width), or `None` where it accepts any size."""
    height, width = model.input_shape[1:3]
    return None if height is None or width is None else (height, width)


def _verification_scores(model, args):
    from kerasface import evaluate

    size = _image_size(model)
    if args.bin:
        images_a, images_b, issame = evaluate.read_verification_bin(args.bin, image_size=size)
    else:
        paths_a, paths_b, issame = evaluate.read_lfw_pairs(args.pairs)
        root = Path(args.root)
        images_a = evaluate.load_images([root / path for path in paths_a], size)
        images_b = evaluate.load_images([root / path for path in paths_b], size)
    scores = evaluate.pair_scores(model, images_a, images_b, flip=args.flip, batch_size=args.batch_size)
    return scores, issame


def verification_table(scores, issame, folds):
    """The printed summary: accuracy, TAR at the measurable FARs, and the deployment threshold."""
    from kerasface import evaluate

    result = evaluate.verify(scores, issame, folds=folds)
    smallest = evaluate.smallest_measurable_far(issame)
    rows = [
        ("pairs", f"{len(issame)} ({int(issame.sum())} same, {int((~issame).sum())} different)"),
        (f"accuracy ({folds} folds)", f"{100 * result.accuracy:.2f}% ± {100 * result.std:.2f}%"),
    ]
    for far in TABLE_FARS:
        value = evaluate.tar_at_far(scores, issame, far) if far >= smallest else None
        rows.append(
            (f"TAR @ FAR={far:.0e}", "n/a (too few different pairs)" if value is None else f"{100 * value:.2f}%")
        )
    if DEPLOYMENT_FAR >= smallest:
        threshold = f"{evaluate.threshold_at_far(scores, issame, DEPLOYMENT_FAR):.4f}"
    else:
        threshold = "n/a (too few different pairs)"
    rows.append((f"threshold @ FAR={DEPLOYMENT_FAR:.0e}", threshold))
    return _format(rows)


def reid_table(model, args):
    """Embeds Market-1501's query and gallery images and formats CMC and mAP."""
    from kerasface import evaluate

    size = _image_size(model)
    query, gallery = evaluate.read_market1501(args.reid)
    features = [
        evaluate.embed_images(model, evaluate.load_images(split.paths, size), args.flip, args.batch_size)
        for split in (query, gallery)
    ]
    result = evaluate.cmc_map(
        features[0], query.ids, query.cams, features[1], gallery.ids, gallery.cams, ranks=(1, 5, 10)
    )
    rows = [("queries", f"{result.num_queries} of {len(query.ids)}"), ("gallery", str(len(gallery.ids)))]
    rows += [(f"CMC rank-{rank}", f"{100 * rate:.2f}%") for rank, rate in result.cmc.items()]
    rows.append(("mAP", f"{100 * result.mean_ap:.2f}%"))
    return _format(rows)


def _format(rows):
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
