"""`kerasface align SRC DST`: detect and align every face image of a folder tree."""

import sys
import time
from pathlib import Path

from kerasface.align.templates import TEMPLATES
from kerasface.cli.train import positive_int

REPORT_NAME = "align_report.txt"


def register(subparsers):
    parser = subparsers.add_parser(
        "align",
        help="detect (MTCNN) and align the faces of an image folder tree",
        description=(
            "Finds the faces of every image under SRC with MTCNN and keeps the largest face nearest the "
            "centre (facenet's and insightface's rule: area minus twice the squared offset of the box "
            "centre from the image centre), aligns its five landmarks onto the template and writes the "
            "crop to the same relative path under DST, so identity folders are kept. With --all-faces "
            "every face is written, as NAME_0.EXT, NAME_1.EXT, ... (_0 is the face kept otherwise). Images "
            f"without a face or that cannot be read are listed at the end and in DST/{REPORT_NAME}."
        ),
    )
    parser.add_argument("src", help="folder of images, e.g. one sub-folder per identity")
    parser.add_argument("dst", help="output folder, created if needed")
    parser.add_argument(
        "--template",
        default="arcface_112x112",
        choices=sorted(TEMPLATES),
        help="landmark template and crop size (default: arcface_112x112)",
    )
    parser.add_argument(
        "--image-size",
        type=positive_int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="crop size; the template is scaled to it (default: the template's size)",
    )
    parser.add_argument(
        "--all-faces",
        action="store_true",
        help="write every detected face, with suffixes _0, _1, ... (default: only the central largest face)",
    )
    parser.set_defaults(func=run)


class Progress:
    """Prints `align: done/total (percent) rate` lines to stderr at each new percent."""

    def __init__(self, total):
        self.total = total
        self.start, self.percent = time.monotonic(), -1

    def update(self, done):
        percent = 100 * done // self.total
        if percent != self.percent:
            self.percent = percent
            rate = done / max(time.monotonic() - self.start, 1e-9)
            print(f"align: {done}/{self.total} ({percent}%) {rate:.1f} images/s", file=sys.stderr, flush=True)


def run(args):
    import cv2

    from kerasface.align import align, by_centrality, detect
    from kerasface.checkpoints import write_bytes, write_text
    from kerasface.data.images import IMAGE_EXTENSIONS, is_readable_image

    src, dst = Path(args.src), Path(args.dst)
    if not src.is_dir():
        print(f"kerasface align: error: {src} is not a folder", file=sys.stderr)
        return 2
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        print(f"kerasface align: error: no images ({', '.join(IMAGE_EXTENSIONS)}) under {src}", file=sys.stderr)
        return 2
    failures = {"unreadable": [], "no face": []}
    progress = Progress(len(files))
    written = 0
    try:
        for done, path in enumerate(files, 1):
            # OpenCV fills truncated JPEGs with grey; training would reject them.
            image = cv2.imread(str(path), cv2.IMREAD_COLOR) if is_readable_image(path) else None
            faces = [] if image is None else by_centrality(detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), image.shape)
            if image is None or not faces:
                failures["unreadable" if image is None else "no face"].append(path)
            else:
                target = dst / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                if args.all_faces:
                    targets = [target.with_name(f"{target.stem}_{index}{target.suffix}") for index in range(len(faces))]
                else:
                    faces, targets = faces[:1], [target]
                for face, face_target in zip(faces, targets):
                    crop = align(image, face.landmarks, args.template, args.image_size)
                    encoded, data = cv2.imencode(face_target.suffix, crop)
                    if not encoded:
                        raise OSError(f"could not encode {face_target} as {face_target.suffix}")
                    # Renamed into place once whole: an interrupted run leaves no truncated crop to train on.
                    write_bytes(face_target, data.tobytes())
                    written += 1
            progress.update(done)
    except (ImportError, OSError) as error:
        print(f"kerasface align: error: {error}", file=sys.stderr)
        return 2
    except cv2.error as error:  # OpenCV's own messages name no file
        from kerasface.cli.main import error_message

        print(f"kerasface align: error: could not align {path}: {error_message(error)}", file=sys.stderr)
        return 2
    aligned = len(files) - sum(len(paths) for paths in failures.values())
    report = _report(aligned, failures, written if args.all_faces else None)
    dst.mkdir(parents=True, exist_ok=True)
    write_text(dst / REPORT_NAME, report)
    print(report, end="", file=sys.stderr)
    return 0 if aligned else 1


def _report(aligned, failures, faces=None):
    counts = ", ".join(f"{len(paths)} {kind}" for kind, paths in failures.items())
    lines = [f"aligned {aligned} images" + ("" if faces is None else f" ({faces} faces)") + f"; {counts}"]
    for kind, paths in failures.items():
        lines += [f"{kind}: {path}" for path in paths]
    return "\n".join(lines) + "\n"
