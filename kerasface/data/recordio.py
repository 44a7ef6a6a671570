"""insightface's training format: MXNet RecordIO `train.rec` + `train.idx`,
read without MXNet.

Layout (dmlc-core `recordio.h`, MXNet `python/mxnet/recordio.py`):

* the `.rec` file is a sequence of parts, each a little-endian uint32 magic
  `0xced7230a`, a uint32 whose top 3 bits are a continuation flag and low
  29 bits a length, then that many bytes, zero-padded to a multiple of 4.
  A record whose bytes contain the magic at a 4-byte aligned position is
  split there: the magic is dropped and the parts are flagged 1 (first),
  2 (middle) and 3 (last); flag 0 is a whole record.
* the `.idx` file has one `key<TAB>offset` line per record.
* a record is an `IRHeader` packed as `IfQQ` (flag, label, id, id2); when
  `flag > 0` the label is instead `flag` float32 values following the
  header; the encoded image follows.
* in insightface files record 0 has no image: its label is
  `(first identity record, end of identity records)`, images are records
  `1 .. label[0] - 1`, and the identity records after them hold each
  identity's range of image records.
"""

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from kerasface._checks import check_positive_int
from kerasface.data.images import decode_image, finish, image_size_pair

RECORDIO_MAGIC = 0xCED7230A
PART_HEADER = struct.Struct("<II")
IR_HEADER = struct.Struct("<IfQQ")
_LENGTH_BITS = 29
_WHOLE, _FIRST, _MIDDLE, _LAST = range(4)


@dataclass(frozen=True)
class RecordHeader:
    """MXNet's `IRHeader`: `label` is a float, or an array when `flag > 0`."""

    flag: int
    label: object
    id: int
    id2: int


def unpack_record(record):
    """Splits a record into its `RecordHeader` and payload (image bytes)."""
    if len(record) < IR_HEADER.size:
        raise ValueError(f"RecordIO record of {len(record)} bytes is shorter than its {IR_HEADER.size}-byte header.")
    flag, label, id1, id2 = IR_HEADER.unpack_from(record)
    payload = record[IR_HEADER.size :]
    if flag > 0:
        if len(payload) < 4 * flag:
            raise ValueError(
                f"RecordIO record announces {flag} labels but holds only {len(payload)} bytes after its header."
            )
        label = np.frombuffer(payload, "<f4", count=flag).copy()
        payload = payload[4 * flag :]
    return RecordHeader(flag, label, id1, id2), payload


def read_index(idx_path):
    """`{key: byte offset}` from a `.idx` file, in file order."""
    offsets = {}
    for number, line in enumerate(Path(idx_path).read_text().splitlines(), 1):
        if line.strip():
            try:
                key, offset = line.split("\t")
                offsets[int(key)] = int(offset)
            except ValueError as error:
                raise ValueError(f"{idx_path}:{number}: expected 'key<TAB>offset'. Received: {line!r}") from error
    return offsets


class RecordIOReader:
    """Random access to the records of an indexed RecordIO file.

    Args:
        rec_path: the `.rec` file.
        idx_path: its `.idx` file; defaults to `rec_path` with suffix `.idx`.
    """

    def __init__(self, rec_path, idx_path=None):
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path) if idx_path is not None else self.rec_path.with_suffix(".idx")
        for path in (self.rec_path, self.idx_path):
            if not path.is_file():
                raise FileNotFoundError(f"RecordIO file {path} does not exist.")
        self.offsets = read_index(self.idx_path)
        self._file = open(self.rec_path, "rb")  # noqa: SIM115 (closed by close() or __exit__)
        self.image_keys, self.num_classes = self._image_keys()

    def _read_part(self):
        start = self._file.tell()
        head = self._file.read(PART_HEADER.size)
        if len(head) < PART_HEADER.size:
            raise ValueError(f"{self.rec_path}: truncated at byte {start}, expected a record header.")
        magic, word = PART_HEADER.unpack(head)
        if magic != RECORDIO_MAGIC:
            raise ValueError(
                f"{self.rec_path}: no RecordIO magic at byte {start} (found {magic:#010x}); "
                "the file is corrupt or the .idx does not belong to it."
            )
        flag, length = word >> _LENGTH_BITS, word & ((1 << _LENGTH_BITS) - 1)
        data = self._file.read(length)
        if len(data) < length:
            raise ValueError(f"{self.rec_path}: record at byte {start} is truncated ({len(data)} of {length} bytes).")
        self._file.seek(-length % 4, 1)
        return flag, data

    def read(self, key):
        """The bytes of record `key`, its split parts joined again."""
        if key not in self.offsets:
            raise KeyError(f"{self.idx_path} has no record {key}.")
        self._file.seek(self.offsets[key])
        flag, data = self._read_part()
        parts = [data]
        while flag in (_FIRST, _MIDDLE):
            flag, data = self._read_part()
            parts += [struct.pack("<I", RECORDIO_MAGIC), data]
        return b"".join(parts)

    def _image_keys(self):
        """Image record keys and the number of identities (None if unknown)."""
        keys = list(self.offsets)
        if not keys:
            return [], None
        header, payload = unpack_record(self.read(keys[0]))
        if header.flag >= 2 and not payload:
            first_identity, end = int(header.label[0]), int(header.label[1])
            return list(range(1, first_identity)), end - first_identity
        return keys, None

    def __len__(self):
        return len(self.image_keys)

    def encoded(self, key):
        """`(encoded image bytes, int label)` of image record `key`."""
        header, payload = unpack_record(self.read(key))
        label = header.label if header.flag == 0 else header.label[0]
        return payload, int(label)

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def read_recordio(rec_path, idx_path=None):
    """Yields `(image, label)` for every image record: RGB uint8 `(H, W, 3)`
    and an int label, skipping insightface's header and identity records.

    Raises:
        ValueError: for a corrupt record or an image that does not decode,
            naming the record key.
    """
    with RecordIOReader(rec_path, idx_path) as reader:
        for key in reader.image_keys:
            payload, label = reader.encoded(key)
            image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"{rec_path}: record {key} does not hold a decodable image.")
            yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB), label


def recordio_dataset(
    rec_path,
    idx_path=None,
    image_size=(112, 112),
    batch_size=128,
    shuffle=True,
    seed=None,
    flip=True,
    normalize=None,
):
    """A `tf.data.Dataset` of `(images, labels)` batches from a RecordIO file.

    Records are read in Python (in a seeded random order per epoch when
    `shuffle`) and decoded and resized in parallel by tf.data; images are
    float32 RGB in [0, 255] before `normalize`, labels int32.

    Args:
        rec_path: insightface's `train.rec`.
        idx_path: its `train.idx`; defaults to `rec_path` with suffix `.idx`.
        image_size: `(height, width)` to resize to.
        batch_size: images per batch.
        shuffle: visit the records in a new random order every epoch.
        seed: seed of the order and the flips.
        flip: flip each image left-right with probability 1/2.
        normalize: optional callable applied to each float32 batch.

    Returns:
        The dataset, with attributes `num_classes` (from insightface's
        header record, else None) and `num_images`.
    """
    where = "recordio_dataset"
    image_size = image_size_pair(image_size, where)
    batch_size = check_positive_int(batch_size, "batch_size", where)
    reader = RecordIOReader(rec_path, idx_path)
    rng = np.random.default_rng(seed)

    def records():
        keys = rng.permutation(reader.image_keys) if shuffle else reader.image_keys
        for key in keys:
            yield reader.encoded(int(key))

    dataset = tf.data.Dataset.from_generator(
        records, output_signature=(tf.TensorSpec((), tf.string), tf.TensorSpec((), tf.int32))
    )
    dataset = dataset.map(
        lambda contents, label: (decode_image(contents, image_size, 3), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).ignore_errors(log_warning=True)
    dataset = finish(dataset, batch_size, flip=flip, seed=seed, normalize=normalize)
    dataset.num_classes = reader.num_classes
    dataset.num_images = len(reader)
    return dataset
