"""Input pipeline speed: kerasface's readers against a PyTorch `DataLoader`, in one run (issue 13).

Every pipeline delivers shuffled, randomly flipped, normalised batches of 256
RGB 112x112 faces, float32 in [-1, 1], with int labels:

    recordio      `kerasface.data.recordio_dataset` on an insightface `.rec`/`.idx`
    image_folder  `kerasface.data.image_folder` on the same faces as JPEG files
    torch         a `torch.utils.data.DataLoader` with as many worker processes
                  as cores, over a `Dataset` that reads the same `.rec` the way
                  insightface's recognition/arcface_torch/dataset.py
                  `MXFaceDataset` does: record by offset from the `.idx`, header
                  unpacked, `cv2.imdecode` (mxnet's imdecode is OpenCV), random
                  left-right flip, (x / 255 - 0.5) / 0.5, CHW tensors, default
                  collate (MXNet itself is replaced by `os.pread` + `struct`).

The faces are synthetic, made here and never downloaded: 112x112 crops of the
scikit-image photographs (the astronaut's face, the cat's, and other
photographs as further "identities"), each image drawn with its own small
rotation, scale, shift, brightness change and noise, JPEG quality 95 as
insightface's `im2rec` writes them.

Each measurement runs in its own process, pinned to 1 core or to all cores
(`os.sched_setaffinity`, before TensorFlow or PyTorch start their thread pools);
the PyTorch side runs with the interpreter given by `--torch-python` (a venv
with torch and OpenCV). A measurement skips `--warmup` batches, then times
`--batches` batches (the epochs repeat). Rounds alternate the pipelines so
that all share the machine's load; the table gives every round and the ratio
to PyTorch measured in the same round.

Start-up: `image_folder` and `identity_balanced` are built on a tree of
`--startup-files` hard links to the faces (CASIA-WebFace's size, 500,000
files in 10,575 identity folders), timed until their first batch.

Usage:
    python bench/pipeline_bench.py [--images 4096] [--rounds 2] [--batches 48] [--startup-files 500000]
        [--torch-python /work/torchenv2/bin/python] [--json out.json]
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULT = "RESULT "
BATCH = 256
SIZE = 112
MAGIC = 0xCED7230A


# === Synthetic faces (no downloads) ===


def _sources():
    """(image, (centre x, centre y), crop width) of photographs in scikit-image."""
    import skimage.data as data

    return [
        (data.astronaut(), (205, 125), 150),  # Eileen Collins' face
        (data.chelsea(), (150, 120), 170),  # the cat's face
        (data.coffee(), (300, 200), 250),
        (data.rocket(), (320, 200), 200),
        (data.astronaut(), (260, 330), 200),
        (data.chelsea(), (300, 200), 200),
    ]


def synthetic_faces(count, identities, seed=0):
    """`(RGB uint8 images (count, 112, 112, 3), labels)`: identity `i` is a
    fixed crop of one photograph; its images differ by small rotations,
    scales and shifts, brightness and Gaussian noise."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    sources = _sources()
    bases = []
    for identity in range(identities):
        image, (cx, cy), width = sources[identity % len(sources)]
        bases.append(
            (
                image,
                cx + rng.normal(0, 15),
                cy + rng.normal(0, 15),
                width * rng.uniform(0.8, 1.2),
                rng.uniform(-20, 20),
            )
        )
    labels = np.sort(rng.integers(0, identities, count))
    labels[:identities] = np.arange(identities)  # every identity has an image
    labels = np.sort(labels)
    faces = np.empty((count, SIZE, SIZE, 3), np.uint8)
    for n, label in enumerate(labels):
        image, cx, cy, width, angle = bases[label]
        scale = SIZE / (width * rng.uniform(0.93, 1.07))
        matrix = cv2.getRotationMatrix2D((cx + rng.normal(0, 3), cy + rng.normal(0, 3)), angle + rng.normal(0, 4), scale)
        matrix[:, 2] += SIZE / 2 - np.array([cx, cy])
        face = cv2.warpAffine(image, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        face = face.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.normal(0, 4, face.shape)
        faces[n] = np.clip(face, 0, 255).astype(np.uint8)
    return faces, labels


def _encode_record(data):
    """dmlc-core RecordIO: parts split at every 4-byte aligned magic, padded to 4 bytes."""
    magic = struct.pack("<I", MAGIC)
    splits = [i for i in range(0, len(data) - len(data) % 4, 4) if data[i : i + 4] == magic]
    starts, ends = [0] + [i + 4 for i in splits], splits + [len(data)]
    flags = [0] if not splits else [1] + [2] * (len(splits) - 1) + [3]
    out = b"".join(
        magic + struct.pack("<I", (flag << 29) | (end - start)) + data[start:end] + b"\0" * (-(end - start) % 4)
        for flag, start, end in zip(flags, starts, ends)
    )
    return out


def _pack(label, payload, id1=0):
    """mxnet.recordio.pack: an IRHeader `IfQQ`, a float label or `flag` float labels."""
    if isinstance(label, (list, tuple)):
        return struct.pack("<IfQQ", len(label), 0.0, id1, 0) + struct.pack(f"<{len(label)}f", *label) + payload
    return struct.pack("<IfQQ", 0, float(label), id1, 0) + payload


def write_data(out, count, identities):
    """Writes `out/train.rec`, `out/train.idx` (insightface's layout: header
    record 0, image records 1..count, identity records) and the same JPEGs
    as `out/folder/<identity>/<n>.jpg`."""
    import cv2

    faces, labels = synthetic_faces(count, identities)
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for f in faces]
    first = count + 1
    records = [_pack([first, first + identities], b"")]
    records += [_pack(int(label), jpeg, n + 1) for n, (jpeg, label) in enumerate(zip(jpegs, labels))]
    for identity in range(identities):
        members = [n + 1 for n in range(count) if labels[n] == identity]
        records.append(_pack([members[0], members[-1] + 1], b""))
    offsets, position = [], 0
    with open(out / "train.rec", "wb") as rec:
        for record in records:
            encoded = _encode_record(record)
            offsets.append(position)
            rec.write(encoded)
            position += len(encoded)
    (out / "train.idx").write_text("".join(f"{key}\t{offset}\n" for key, offset in enumerate(offsets)))
    for n, (jpeg, label) in enumerate(zip(jpegs, labels)):
        folder = out / "folder" / f"id{label:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n:06d}.jpg").write_bytes(jpeg)
    return sum(map(len, jpegs)) / count


# === Workers (one pipeline, one core count, in a process of its own) ===


def _pin(cores):
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[:cores])


def _cpu_seconds(pids):
    """User + system CPU seconds of this process and of the processes `pids` (Linux /proc)."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _time(batches, warmup, count, pids=lambda: ()):
    """images/s and CPU s/image (this process and `pids()`, e.g. loader
    workers) over `count` batches after `warmup` batches of `batches`."""
    import numpy as np

    iterator = iter(batches)
    for _ in range(warmup):
        next(iterator)
    images = 0
    start = time.perf_counter()
    cpu = _cpu_seconds(pids)
    for _ in range(count):
        x, y = next(iterator)
        images += len(y)
    wall = time.perf_counter() - start
    cpu = _cpu_seconds(pids) - cpu
    assert np.asarray(x).dtype == np.float32 and np.asarray(x).min() >= -1 and np.asarray(x).max() <= 1
    return {"images_per_s": images / wall, "cpu_s_per_image": cpu / images}


def kerasface_worker(kind, data, warmup, count):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from kerasface.data import image_folder, recordio_dataset

    normalize = keras.layers.Rescaling(1 / 127.5, offset=-1)
    if kind == "recordio":
        dataset = recordio_dataset(data / "train.rec", image_size=(SIZE, SIZE), batch_size=BATCH, seed=0, normalize=normalize)
    else:
        dataset = image_folder(data / "folder", (SIZE, SIZE), BATCH, seed=0, normalize=normalize)
    batches = (batch for _ in iter(int, 1) for batch in dataset)  # epoch after epoch
    return _time(batches, warmup, count)


def torch_worker(data, cores, warmup, count):
    import cv2
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, Dataset

    class RecordFaces(Dataset):
        """insightface's arcface_torch `MXFaceDataset`, with `os.pread` for MXNet's indexed reader."""

        def __init__(self, rec, idx):
            self.rec = str(rec)
            self.offsets = {}
            for line in Path(idx).read_text().split("\n"):
                if line:
                    key, offset = line.split("\t")
                    self.offsets[int(key)] = int(offset)
            header = self._record(0)
            first = int(struct.unpack_from("<f", header, 24)[0])
            self.keys = list(range(1, first))
            self.fd = None

        def _record(self, key):
            if getattr(self, "fd", None) is None:
                self.fd = os.open(self.rec, os.O_RDONLY)
            offset = self.offsets[key]
            _, word = struct.unpack("<II", os.pread(self.fd, 8, offset))
            assert word >> 29 == 0, "split records are not read by this benchmark's torch side"
            return os.pread(self.fd, word & ((1 << 29) - 1), offset + 8)

        def __len__(self):
            return len(self.keys)

        def __getitem__(self, index):
            record = self._record(self.keys[index])
            flag, label, _, _ = struct.unpack_from("<IfQQ", record)
            payload = record[24 + 4 * flag :]
            if flag > 0:
                label = struct.unpack_from("<f", record, 24)[0]
            bgr = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if np.random.rand() < 0.5:
                rgb = rgb[:, ::-1]
            image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255).sub_(0.5).div_(0.5)
            return image, torch.tensor(int(label), dtype=torch.long)

    torch.set_num_threads(1)
    dataset = RecordFaces(data / "train.rec", data / "train.idx")
    loader = DataLoader(
        dataset, batch_size=BATCH, shuffle=True, num_workers=cores, drop_last=True, persistent_workers=True
    )
    batches = ((x.numpy(), y.numpy()) for _ in iter(int, 1) for x, y in loader)

    def workers():
        iterator = getattr(loader, "_iterator", None)
        return [worker.pid for worker in getattr(iterator, "_workers", [])]

    return _time(batches, warmup, count, workers)


def startup_worker(data, count):
    """Seconds until `image_folder` and `identity_balanced` are built and give
    their first batch, on a tree of `count` hard links to the bench's JPEGs
    in CASIA-WebFace's shape (10,575 identities)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sources = sorted((data / "folder").glob("*/*.jpg"))[:64]
    root = data / f"links_{count}"
    identities = 10_575
    for n in range(count):
        folder = root / f"{n % identities:07d}"
        if n < identities:
            folder.mkdir(parents=True)
        os.link(sources[n % len(sources)], folder / f"{n // identities:04d}.jpg")
    from kerasface.data import identity_balanced, image_folder

    result = {}
    for name, build in (
        ("image_folder", lambda: image_folder(root, SIZE, BATCH, seed=0)),
        ("identity_balanced", lambda: identity_balanced(root, 64, 4, SIZE, seed=0)),
    ):
        start = time.perf_counter()
        dataset = build()
        built = time.perf_counter() - start
        next(iter(dataset))
        result[name] = {"built_s": built, "first_batch_s": time.perf_counter() - start}
    return result


# === The run ===


def run_worker(python, kind, data, cores, args):
    command = [
        python, __file__, "--worker", kind, "--data", str(data), "--cores", str(cores),
        "--warmup", str(args.warmup), "--batches", str(args.batches), "--startup-files", str(args.startup_files),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    raise RuntimeError(f"{kind} on {cores} cores failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--identities", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--batches", type=int, default=48)
    parser.add_argument("--cores", type=int, nargs="*", default=None, help="core counts (default: 1 and all)")
    parser.add_argument("--startup-files", type=int, default=500_000, help="files of the start-up tree (0: skip)")
    parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON", "/work/torchenv2/bin/python"))
    parser.add_argument("--json", default=None)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        cores = args.cores[0]
        _pin(cores)
        data = Path(args.data)
        if args.worker == "torch":
            result = torch_worker(data, cores, args.warmup, args.batches)
        elif args.worker == "startup":
            result = startup_worker(data, args.startup_files)
        else:
            result = kerasface_worker(args.worker, data, args.warmup, args.batches)
        print(RESULT + json.dumps(result), flush=True)
        return

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hardware import describe

    all_cores = len(os.sched_getaffinity(0))
    core_counts = args.cores or sorted({1, all_cores})
    rows = []
    with tempfile.TemporaryDirectory(prefix="kerasface_pipeline_bench_") as tmp:
        data = Path(tmp)
        mean_bytes = write_data(data, args.images, args.identities)
        print(f"{describe()}")
        print(
            f"{args.images} synthetic 112x112 JPEG faces (mean {mean_bytes / 1024:.1f} KiB), {args.identities} "
            f"identities; batches of {BATCH}, {args.warmup} warm-up + {args.batches} timed batches per measurement\n"
        )
        header = f"{'round':>5} {'cores':>5} {'pipeline':<13} {'images/s':>9} {'per core':>9} {'CPU ms/img':>10} {'vs torch':>8}"
        print(header)
        print("-" * len(header))
        for round_ in range(args.rounds):
            for cores in core_counts:
                kinds = ["torch", "recordio", "image_folder"]
                if round_ % 2:
                    kinds = kinds[::-1]
                measured = {}
                for kind in kinds:
                    python = args.torch_python if kind == "torch" else sys.executable
                    measured[kind] = run_worker(python, kind, data, cores, args)
                for kind in ("recordio", "image_folder", "torch"):
                    speed = measured[kind]["images_per_s"]
                    ratio = speed / measured["torch"]["images_per_s"]
                    row = {"round": round_, "cores": cores, "pipeline": kind, **measured[kind], "vs_torch": ratio}
                    rows.append(row)
                    print(
                        f"{round_:>5} {cores:>5} {kind:<13} {speed:>9.0f} {speed / cores:>9.0f} "
                        f"{1000 * row['cpu_s_per_image']:>10.3f} {ratio:>7.2f}x",
                        flush=True,
                    )
        startup = None
        if args.startup_files:
            startup = run_worker(sys.executable, "startup", data, all_cores, args)
            print(f"\nstart-up on {args.startup_files:,} files (hard links, 10,575 identity folders), {all_cores} cores:")
            for name, times in startup.items():
                print(f"  {name:<18} built in {times['built_s']:.1f} s, first batch after {times['first_batch_s']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"hardware": describe(), "rows": rows, "startup": startup}, indent=1))


if __name__ == "__main__":
    main()
