"""RecordIO round trip with a writer that follows MXNet's format
(dmlc-core `RecordIOWriter::WriteRecord`, `mxnet.recordio.pack`)."""

import struct

import cv2
import numpy as np
import pytest

from kerasface.data import RecordIOReader, read_recordio, recordio_dataset, unpack_record

MAGIC = struct.pack("<I", 0xCED7230A)


def part(flag, data):
    return MAGIC + struct.pack("<I", (flag << 29) | len(data)) + data


def encode_record(data):
    """dmlc-core: split at every 4-byte aligned magic (dropped), flag parts
    1 (first), 2 (middle), 3 (last) or 0 (whole), pad the end to 4 bytes."""
    splits = [i for i in range(0, len(data) - len(data) % 4, 4) if data[i : i + 4] == MAGIC]
    starts, ends = [0] + [i + 4 for i in splits], splits + [len(data)]
    flags = [0] if not splits else [1] + [2] * (len(splits) - 1) + [3]
    out = b"".join(part(f, data[s:e]) for f, s, e in zip(flags, starts, ends))
    return out + b"\x00" * (-len(data) % 4)


def pack(label, payload, id1=0):
    """mxnet.recordio.pack: IRHeader 'IfQQ'; an array label sets flag = its size."""
    label = np.atleast_1d(np.asarray(label, "float32"))
    if label.size == 1:
        return struct.pack("<IfQQ", 0, float(label[0]), id1, 0) + payload
    return struct.pack("<IfQQ", label.size, 0.0, id1, 0) + label.tobytes() + payload


def write_recordio(rec_path, records):
    offsets, blob = [], b""
    for record in records:
        offsets.append(len(blob))
        blob += encode_record(record)
    rec_path.write_bytes(blob)
    rec_path.with_suffix(".idx").write_text("".join(f"{k}\t{o}\n" for k, o in enumerate(offsets)))


def test_writer_matches_the_published_byte_layout():
    # magic, (flag 0 << 29) | length 5, the bytes, three zero pad bytes
    assert encode_record(b"\x01\x02\x03\x04\x05") == bytes.fromhex("0a23d7ce 05000000 0102030405 000000")


def faces(n=5, size=(12, 10)):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def png(rgb):
    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


@pytest.fixture
def insightface_rec(tmp_path):
    """insightface layout: header record 0 with label (first identity record,
    end), 5 image records (keys 1-5), then 2 identity records."""
    images, labels = faces(), [0, 0, 1, 1, 1]
    records = [pack([6, 8], b"")]
    records += [
        pack(label if i % 2 else [label, 99.0], png(img), i + 1) for i, (img, label) in enumerate(zip(images, labels))
    ]
    records += [pack([1, 3], b""), pack([3, 6], b"")]
    write_recordio(tmp_path / "train.rec", records)
    return tmp_path / "train.rec", images, labels


def test_read_recordio_round_trip(insightface_rec):
    rec, images, labels = insightface_rec
    read = list(read_recordio(rec, rec.with_suffix(".idx")))
    assert [label for _, label in read] == labels
    for (image, _), expected in zip(read, images):
        np.testing.assert_array_equal(image, expected)
    with RecordIOReader(rec) as reader:
        assert reader.image_keys == [1, 2, 3, 4, 5] and reader.num_classes == 2
        header, payload = unpack_record(reader.read(7))
        np.testing.assert_array_equal(header.label, [3, 6])
        assert payload == b""


def test_records_split_at_the_magic_are_joined(tmp_path):
    payloads = [b"abcd" + MAGIC + b"efgh" + MAGIC + MAGIC + b"ij", MAGIC + b"klm", b"x" * 7 + MAGIC]
    records = [pack(k, p) for k, p in enumerate(payloads)]
    assert encode_record(records[0]).count(MAGIC) == 4  # really split in 4 parts
    write_recordio(tmp_path / "split.rec", records)
    with RecordIOReader(tmp_path / "split.rec") as reader:
        assert reader.image_keys == [0, 1, 2] and reader.num_classes is None
        assert [reader.encoded(k) for k in reader.image_keys] == list(zip(payloads, range(3)))


def test_recordio_dataset_batches_all_images(insightface_rec):
    rec, images, labels = insightface_rec
    dataset = recordio_dataset(rec, image_size=(12, 10), batch_size=2, seed=0, flip=False)
    assert dataset.num_classes == 2 and dataset.num_images == 5
    batches = list(dataset)
    assert [len(y) for _, y in batches] == [2, 2, 1]
    got = np.concatenate([x.numpy() for x, _ in batches])
    got_labels = np.concatenate([y.numpy() for _, y in batches])
    order = [next(i for i, img in enumerate(images) if np.array_equal(img, g)) for g in got]
    assert sorted(order) == [0, 1, 2, 3, 4] and order != [0, 1, 2, 3, 4]  # shuffled
    np.testing.assert_array_equal(got_labels, np.asarray(labels)[order])


def test_corrupt_recordio_is_reported(tmp_path, insightface_rec):
    rec, _, _ = insightface_rec
    data = rec.read_bytes()
    last_image = int(rec.with_suffix(".idx").read_text().splitlines()[5].split("\t")[1])
    (tmp_path / "cut.rec").write_bytes(data[: last_image + 100])
    (tmp_path / "cut.idx").write_text(rec.with_suffix(".idx").read_text())
    with RecordIOReader(tmp_path / "cut.rec") as reader, pytest.raises(ValueError, match="truncated"):
        reader.read(5)
    (tmp_path / "shifted.rec").write_bytes(b"\x00" * 4 + data)
    (tmp_path / "shifted.idx").write_text(rec.with_suffix(".idx").read_text())
    with pytest.raises(ValueError, match="no RecordIO magic"):
        RecordIOReader(tmp_path / "shifted.rec")
    with pytest.raises(FileNotFoundError, match="missing.rec does not exist"):
        RecordIOReader(tmp_path / "missing.rec")
