"""RecordIO round trip with a writer that follows MXNet's format
(dmlc-core `RecordIOWriter::WriteRecord`, `mxnet.recordio.pack`)."""

import struct

import cv2
import numpy as np
import pytest
import tensorflow as tf

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
    with pytest.raises(ValueError, match=r"cut\.idx: the offset \d+ of record 6 lies beyond the end .* truncated"):
        RecordIOReader(tmp_path / "cut.rec")
    (tmp_path / "shifted.rec").write_bytes(b"\x00" * 4 + data)
    (tmp_path / "shifted.idx").write_text(rec.with_suffix(".idx").read_text())
    with pytest.raises(ValueError, match="no RecordIO magic"):
        RecordIOReader(tmp_path / "shifted.rec")
    with pytest.raises(FileNotFoundError, match="missing.rec does not exist"):
        RecordIOReader(tmp_path / "missing.rec")


def write_insightface(path, payloads, labels):
    """insightface layout around the given image payloads (one identity per label)."""
    n, classes = len(payloads), max(labels) + 1
    ranges = [(1 + labels.index(c), 1 + n - labels[::-1].index(c)) for c in range(classes)]
    records = [pack([n + 1, n + 1 + classes], b"")]
    records += [pack(label, payload, i + 1) for i, (payload, label) in enumerate(zip(payloads, labels))]
    records += [pack(list(r), b"") for r in ranges]
    write_recordio(path, records)
    return path


@pytest.fixture
def twenty(tmp_path):
    images = faces(20, size=(6, 4))
    labels = [i // 5 for i in range(20)]
    return write_insightface(tmp_path / "train.rec", [png(image) for image in images], labels), images, labels


def cut_copy(rec, size, name="cut"):
    """A copy of `rec` (and its .idx) whose .rec keeps only its first `size` bytes."""
    cut = rec.with_name(f"{name}.rec")
    cut.write_bytes(rec.read_bytes()[:size])
    cut.with_suffix(".idx").write_text(rec.with_suffix(".idx").read_text())
    return cut


def offsets(rec):
    return [int(line.split("\t")[1]) for line in rec.with_suffix(".idx").read_text().splitlines()]


def test_truncated_rec_is_refused_naming_the_record_and_file(twenty):
    rec, _, _ = twenty
    middle = offsets(rec)[10] + 20  # inside image record 10: records 11 ... lie beyond the end
    with pytest.raises(ValueError, match=r"offset \d+ of record 11 lies beyond the end .*cut\.rec"):
        recordio_dataset(cut_copy(rec, middle), image_size=(6, 4), batch_size=4)
    last = offsets(rec)[-1]  # the last identity record loses its final bytes
    with pytest.raises(ValueError, match=rf"record 24 \(byte {last}\) of .*cut\.rec is truncated"):
        recordio_dataset(cut_copy(rec, rec.stat().st_size - 4), image_size=(6, 4), batch_size=4)
    with pytest.raises(ValueError, match="truncated"):
        list(read_recordio(cut_copy(rec, middle)))


def test_empty_idx_is_refused(twenty):
    rec, _, _ = twenty
    rec.with_suffix(".idx").write_text("")
    with pytest.raises(ValueError, match=r"train\.idx lists no records"):
        recordio_dataset(rec, image_size=(6, 4))


def test_every_epoch_has_every_image(twenty):
    rec, images, labels = twenty
    dataset = recordio_dataset(rec, image_size=(6, 4), batch_size=8, seed=3, flip=False)
    assert dataset.num_images == 20 and dataset.num_classes == 4
    for _ in range(3):
        got = np.concatenate([y.numpy() for _, y in dataset])
        assert sorted(got.tolist()) == sorted(labels)


def test_record_without_payload_raises_naming_it(tmp_path):
    images = faces(4, size=(6, 4))
    payloads = [png(image) for image in images]
    payloads[2] = b""
    rec = write_insightface(tmp_path / "train.rec", payloads, [0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"record 3 \(byte \d+\) of .*train\.rec holds no image"):
        list(read_recordio(rec))
    dataset = recordio_dataset(rec, image_size=(6, 4), batch_size=2, shuffle=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"record 3 \(byte \d+\) of .*train\.rec holds no image"):
        list(dataset)


def test_undecodable_record_stops_the_epoch_naming_it(tmp_path):
    images = faces(6, size=(16, 16))
    payloads = [cv2.imencode(".jpg", image)[1].tobytes() for image in images]
    damaged = bytearray(payloads[4])
    damaged[4:44] = bytes(40)  # quantisation tables gone, start and end markers kept
    payloads[4] = bytes(damaged)
    rec = write_insightface(tmp_path / "train.rec", payloads, [0, 0, 0, 1, 1, 1])
    dataset = recordio_dataset(rec, image_size=(16, 16), batch_size=4, seed=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"cannot decode record 5 \(byte \d+\) of .*train\.rec"):
        list(dataset)
    with pytest.raises(ValueError, match=r"record 5 \(byte \d+\) of .*train\.rec cannot be decoded"):
        list(read_recordio(rec))


def test_labels_must_be_classes_of_the_header(tmp_path):
    rec = write_insightface(tmp_path / "train.rec", [png(image) for image in faces(2)], [0, 1])
    blob = bytearray(rec.read_bytes())
    label_at = offsets(rec)[2] + 8 + 4  # record 2: part header, then IRHeader flag, then the float label
    blob[label_at : label_at + 4] = struct.pack("<f", 2.0)  # only classes 0 and 1 exist
    rec.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"record 2 \(byte \d+\) of .*train\.rec: label 2 is outside \[0, 2\)"):
        list(read_recordio(rec))
