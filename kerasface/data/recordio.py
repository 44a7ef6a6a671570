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

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasface._checks import check_positive_int
from kerasface.data.images import (
    EpochOrder,
    FailureLog,
    decode_with_opencv,
    finish,
    image_batches,
    image_size_pair,
    ordered_items,
)

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


def unpack_record(record, source="RecordIO record"):
    """Splits a record into its `RecordHeader` and payload (image bytes).

    Raises:
        ValueError: naming `source`, when the record is shorter than its
            header or than the labels the header announces.
    """
    if len(record) < IR_HEADER.size:
        raise ValueError(f"{source}: {len(record)} bytes is shorter than the {IR_HEADER.size}-byte record header.")
    flag, label, id1, id2 = IR_HEADER.unpack_from(record)
    payload = record[IR_HEADER.size :]
    if flag > 0:
        if len(payload) < 4 * flag:
            raise ValueError(f"{source} announces {flag} labels but holds only {len(payload)} bytes after its header.")
        label = np.frombuffer(payload, "<f4", count=flag).copy()
        payload = payload[4 * flag :]
    return RecordHeader(flag, label, id1, id2), payload


_INDEX_LINE = re.compile(rb"(\d+)\t(\d+)\r?")


def read_index(idx_path):
    """`{key: byte offset}` from a `.idx` file, in file order.

    Raises:
        ValueError: naming the file and line, for a line that is not
            `key<TAB>offset` or a key listed twice.
    """
    offsets = {}
    for number, line in enumerate(Path(idx_path).read_bytes().split(b"\n"), 1):
        if not line.strip():
            continue
        match = _INDEX_LINE.fullmatch(line)
        if match is None:
            raise ValueError(f"{idx_path}:{number}: expected 'key<TAB>offset'. Received: {line[:80]!r}")
        key, offset = int(match[1]), int(match[2])
        if key in offsets:
            raise ValueError(f"{idx_path}:{number}: record {key} is listed twice.")
        offsets[key] = offset
    return offsets


class RecordIOReader:
    """Random access to the records of an indexed RecordIO file.

    Opening checks what is cheap to check: that the `.idx` lists records,
    at distinct 4-byte aligned offsets inside the `.rec`, that the record at
    the largest offset is complete (a truncated `.rec` fails here), and, for
    insightface's layout, that the header record agrees with the `.idx` and
    with the records around the end of the images. Reads are thread-safe
    (`os.pread`).

    Args:
        rec_path: the `.rec` file.
        idx_path: its `.idx` file; defaults to `rec_path` with suffix `.idx`.

    Raises:
        FileNotFoundError: when a file is missing.
        ValueError: naming the file and the record, when a check fails.
    """

    def __init__(self, rec_path, idx_path=None):
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path) if idx_path is not None else self.rec_path.with_suffix(".idx")
        for path in (self.rec_path, self.idx_path):
            if not path.is_file():
                raise FileNotFoundError(f"RecordIO file {path} does not exist.")
        self.offsets = read_index(self.idx_path)
        if not self.offsets:
            raise ValueError(f"{self.idx_path} lists no records; the index of {self.rec_path} is empty.")
        self._fd = os.open(self.rec_path, os.O_RDONLY)
        try:
            self.size = os.fstat(self._fd).st_size
            self._check_offsets()
            self.image_keys, self.num_classes = self._image_keys()
        except BaseException:
            self.close()
            raise

    def describe(self, key):
        """`record <key> (byte <offset>) of <file>`, for messages."""
        return f"record {key} (byte {self.offsets.get(key, '?')}) of {self.rec_path}"

    def _check_offsets(self):
        by_offset = {}
        for key, offset in self.offsets.items():
            if offset % 4 or offset + PART_HEADER.size > self.size:
                where = "is not 4-byte aligned" if offset % 4 else f"lies beyond the end ({self.size} bytes)"
                raise ValueError(
                    f"{self.idx_path}: the offset {offset} of record {key} {where} of {self.rec_path}; "
                    "the .rec is truncated or the .idx does not belong to it."
                )
            if offset in by_offset:
                raise ValueError(
                    f"{self.idx_path}: records {by_offset[offset]} and {key} have the same offset {offset}."
                )
            by_offset[offset] = key
        self.read(by_offset[max(by_offset)])  # the last record is whole: the file is not cut short

    def _read_part(self, position, key):
        head = os.pread(self._fd, PART_HEADER.size, position)
        if len(head) < PART_HEADER.size:
            raise ValueError(f"{self.describe(key)}: truncated at byte {position}, expected a part header.")
        magic, word = PART_HEADER.unpack(head)
        if magic != RECORDIO_MAGIC:
            raise ValueError(
                f"{self.describe(key)}: no RecordIO magic at byte {position} (found {magic:#010x}); "
                "the file is corrupt or the .idx does not belong to it."
            )
        flag, length = word >> _LENGTH_BITS, word & ((1 << _LENGTH_BITS) - 1)
        start = position + PART_HEADER.size
        if start + length > self.size:
            raise ValueError(
                f"{self.describe(key)} is truncated: a part of {length} bytes at byte {position} "
                f"runs past the end of the file ({self.size} bytes)."
            )
        return flag, os.pread(self._fd, length, start), start + length + (-length % 4)

    def read(self, key):
        """The bytes of record `key`, its split parts joined again."""
        if key not in self.offsets:
            raise KeyError(f"{self.idx_path} has no record {key}.")
        flag, data, position = self._read_part(self.offsets[key], key)
        if flag not in (_WHOLE, _FIRST):
            raise ValueError(f"{self.describe(key)}: the record starts with a continuation part (flag {flag}).")
        parts = [data]
        while flag in (_FIRST, _MIDDLE):
            flag, data, position = self._read_part(position, key)
            if flag not in (_MIDDLE, _LAST):
                raise ValueError(f"{self.describe(key)}: a split record is not continued (part flag {flag}).")
            parts += [struct.pack("<I", RECORDIO_MAGIC), data]
        return b"".join(parts)

    def header(self, key):
        """`(RecordHeader, payload)` of record `key`."""
        return unpack_record(self.read(key), self.describe(key))

    def _integer_labels(self, key, values, count):
        values = np.atleast_1d(np.asarray(values, "float64"))[:count]
        if len(values) < count or not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ValueError(f"{self.describe(key)}: expected {count} integer labels. Received: {values.tolist()}")
        return [int(v) for v in values]

    def _image_keys(self):
        """Image record keys and the number of identities (None if unknown)."""
        keys = list(self.offsets)
        header, payload = self.header(keys[0])
        if not (header.flag >= 2 and not payload):
            return keys, None
        # insightface: record 0 = (first identity record, end), images 1 .. first - 1, identities first .. end - 1.
        first, end = self._integer_labels(keys[0], header.label, 2)
        missing = [key for key in range(1, first) if key not in self.offsets] if first <= len(keys) else ["..."]
        if not 1 <= first <= end or missing:
            raise ValueError(
                f"{self.describe(keys[0])}: the header record announces images 1 to {first - 1} and identity "
                f"records {first} to {end - 1}, but {self.idx_path} lists {len(keys)} records"
                + (f", without {missing[:5]}." if missing else ".")
            )
        if first > 1 and not self.header(first - 1)[1]:
            raise ValueError(f"{self.describe(first - 1)}: the last image record (by the header) holds no image.")
        if first in self.offsets and self.header(first)[1]:
            raise ValueError(f"{self.describe(first)}: the first identity record (by the header) holds an image.")
        return list(range(1, first)), end - first

    def __len__(self):
        return len(self.image_keys)

    def encoded(self, key):
        """`(encoded image bytes, int label)` of image record `key`.

        Raises:
            ValueError: naming the record and the file, when the record is
                corrupt, holds no image, or its label is not an integer in
                `[0, num_classes)`.
        """
        header, payload = self.header(key)
        (label,) = self._integer_labels(key, header.label, 1)
        if label < 0 or (self.num_classes is not None and label >= self.num_classes):
            raise ValueError(f"{self.describe(key)}: label {label} is outside [0, {self.num_classes}).")
        if not payload:
            raise ValueError(f"{self.describe(key)} holds no image (an empty payload).")
        return payload, label

    def close(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def read_recordio(rec_path, idx_path=None):
    """Yields `(image, label)` for every image record: RGB uint8 `(H, W, 3)`
    and an int label, skipping insightface's header and identity records.

    Raises:
        ValueError: for a corrupt or truncated file, an empty index, or an
            image that does not decode, naming the record and the file.
    """
    with RecordIOReader(rec_path, idx_path) as reader:
        for key in reader.image_keys:
            payload, label = reader.encoded(key)
            yield decode_with_opencv(payload, reader.describe(key)), label


def recordio_dataset(
    rec_path,
    idx_path=None,
    image_size=(112, 112),
    batch_size=128,
    shuffle=True,
    seed=None,
    flip=True,
    normalize=None,
    resize=False,
    initial_epoch=0,
    repeat=False,
):
    """A `tf.data.Dataset` of `(images, labels)` batches from a RecordIO file.

    The record keys are shuffled (not the images), records are read by
    offset in batches, and decoded one by one in tf.data's parallel map;
    flipping and `normalize` act on whole batches. Images are float32 RGB in
    [0, 255] before `normalize`, labels int32.

    No record is dropped: a truncated file, an empty index or an
    inconsistent insightface header raises a `ValueError` here; a record
    found corrupt, mislabelled or undecodable during an epoch stops the
    iteration with a `tf.errors.InvalidArgumentError` whose message names
    the record (key and byte offset) and the file.

    Images are never resized silently: an image of another size than
    `image_size` stops the iteration naming it and both sizes, except faces
    of a related alignment template, which are cropped with one warning
    (insightface's 112x112 ArcFace faces for a 112x96 SphereFace model:
    columns 8:104, see `kerasface.align.templates.crop_box`).

    Args:
        rec_path: insightface's `train.rec`.
        idx_path: its `train.idx`; defaults to `rec_path` with suffix `.idx`.
        image_size: `(height, width)` of the images delivered.
        batch_size: images per batch.
        shuffle: visit the records in a new random order every epoch.
        seed: seed of the order and the flips (epoch `e` uses `(seed, e)`).
        flip: flip each image left-right with probability 1/2.
        normalize: optional callable applied to each float32 batch.
        resize: resize every image to `image_size` (bilinear) instead.
        initial_epoch: the epoch of the first iteration over the dataset
            (the `i`-th iteration is epoch `initial_epoch + i`), so that a
            resumed run sees the orders and flips of an uninterrupted one.
        repeat: every iterator runs through the epochs from
            `initial_epoch` without end (see `image_folder`).

    Returns:
        The dataset, with attributes `num_classes` (from insightface's
        header record, else None) and `num_images`.
    """
    where = "recordio_dataset"
    image_size = image_size_pair(image_size, where)
    batch_size = check_positive_int(batch_size, "batch_size", where)
    reader = RecordIOReader(rec_path, idx_path)
    keys = np.asarray(reader.image_keys, np.int64)
    order = EpochOrder(len(keys), shuffle, seed, initial_epoch, where, repeat)
    log = FailureLog(reader.describe, where, on_error="raise", image_size=image_size)
    order.on_start.append(log.restart)

    def read(indices):
        """Payloads and labels of the records `keys[indices]`; a
        record that cannot be used gets an empty payload (it then fails to
        decode) and its message is kept for `log.report`."""
        payloads, labels = [], []
        for key in keys[indices].tolist():
            try:
                payload, label = reader.encoded(key)
            except ValueError as error:
                log.errors[key] = str(error)
                payload, label = b"", 0
            payloads.append(payload)
            labels.append(label)
        return np.array(payloads, dtype=object), np.array(labels, np.int32)

    def records(epoch, positions, indices):
        payloads, labels = tf.numpy_function(read, [indices], (tf.string, tf.int32), stateful=False)
        payloads.set_shape(indices.shape)
        labels.set_shape(indices.shape)
        epochs = tf.fill(tf.shape(indices), epoch)
        return payloads, labels, tf.gather(keys, indices), positions, epochs

    def batches(chunks, epoch):
        chunks = chunks.map(records, num_parallel_calls=tf.data.AUTOTUNE)
        return image_batches(chunks, epoch, order, log, batch_size, image_size, resize, keys.__getitem__)

    dataset = finish(ordered_items(order, batch_size, batches), flip=flip, normalize=normalize)
    dataset.num_classes = reader.num_classes
    dataset.num_images = len(reader)
    return dataset
