"""Identity folders: labels, decoding, flips, corrupt files, class names."""

import time
import warnings
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasface.data import image_folder, list_image_folder, load_class_names, save_class_names
from tests.data.conftest import COLOURS, coloured, damaged_jpeg, write_image


def everything(dataset):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


def test_labels_follow_sorted_folder_names(identity_folder):
    dataset = image_folder(identity_folder, (8, 6), batch_size=4, shuffle=False, flip=False)
    assert dataset.class_names == ["alice", "bob", "carol"]
    images, labels = everything(dataset)
    assert images.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 1, 2, 2, 2, 2])
    for image, label in zip(images, labels):
        np.testing.assert_array_equal(image, coloured(COLOURS[dataset.class_names[label]]))


def test_resizes_only_when_asked_and_batches(identity_folder):
    dataset = image_folder(identity_folder, (4, 3), batch_size=4, seed=0)
    skipped = dataset.skipped_files
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"image_folder: .*/faces/\w+/\d\.\w+ is 8x6 \(height x width\), but the pipeline delivers 4x3 images"
        r".*never resized silently.*resize=True",
    ):
        list(dataset)
    time.sleep(0.5)
    assert skipped == []  # the batches prepared after the error do not count its images as undecodable
    dataset = image_folder(identity_folder, (4, 3), batch_size=4, seed=0, resize=True)
    shapes = [tuple(x.shape) for x, _ in dataset]
    assert shapes == [(4, 4, 3, 3), (4, 4, 3, 3), (1, 4, 3, 3)]


def test_grayscale_and_normalize(identity_folder):
    rescale = keras.layers.Rescaling(1 / 127.5, offset=-1)
    dataset = image_folder(
        identity_folder, (8, 6), batch_size=9, channels=1, shuffle=False, flip=False, normalize=rescale
    )
    images, _ = everything(dataset)
    assert images.shape == (9, 8, 6, 1)
    assert images.min() == -1.0  # the black column
    # alice is RGB (200, 30, 30); luma with ITU-R BT.601 weights, unrounded.
    luma = 0.2989 * 200 + 0.5870 * 30 + 0.1140 * 30
    np.testing.assert_allclose(images[0, 0, -1, 0], luma / 127.5 - 1, atol=1e-5)


def test_flips_about_half_and_reproducibly(identity_folder):
    def six_epochs():
        dataset = image_folder(identity_folder, (8, 6), batch_size=9, seed=3)
        return np.concatenate([everything(dataset)[0] for _ in range(6)])

    first = six_epochs()
    np.testing.assert_array_equal(first, six_epochs())
    flipped = first[:, :, -1].max(axis=(1, 2)) == 0  # black column moved right
    assert np.all(flipped | (first[:, :, 0].max(axis=(1, 2)) == 0))
    assert 0.3 < flipped.mean() < 0.7


def test_shuffle_changes_order_each_epoch_with_a_seed(identity_folder):
    dataset = image_folder(identity_folder, (8, 6), batch_size=9, seed=1, flip=False)
    orders = [tuple(everything(dataset)[1]) for _ in range(4)]
    assert len(set(orders)) > 1
    assert all(sorted(order) == [0, 0, 1, 1, 1, 2, 2, 2, 2] for order in orders)


def test_corrupt_files_are_named_when_met_and_cost_only_themselves(identity_folder):
    good_jpeg = write_image(identity_folder / "alice" / "good.jpg", coloured(COLOURS["alice"]))
    data = good_jpeg.read_bytes()
    (identity_folder / "alice" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (identity_folder / "bob" / "empty.png").write_bytes(b"")
    (identity_folder / "bob" / "text.bmp").write_bytes(b"not an image at all")
    png = bytearray((identity_folder / "bob" / "0.png").read_bytes())
    png[40] ^= 0xFF  # flips a byte inside the IDAT data: the chunk CRC fails
    (identity_folder / "carol" / "bad-crc.png").write_bytes(bytes(png))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no file is opened up front
        dataset = image_folder(identity_folder, (8, 6), batch_size=4, flip=False, seed=0)
    assert dataset.num_images == 14 and dataset.skipped_files == []
    with pytest.warns(UserWarning) as record:
        images, labels = everything(dataset)
    bad = ["truncated.jpg", "empty.png", "text.bmp", "bad-crc.png"]
    message = " ".join(str(warning.message) for warning in record)
    assert all(name in message for name in bad), message
    assert sorted(p.rsplit("/", 1)[1] for p in dataset.skipped_files) == sorted(bad)
    assert len(labels) == 10  # the 9 images and good.jpg, no zero images
    assert np.all(images.max(axis=(1, 2, 3)) > 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # named once, not every epoch
        assert len(everything(dataset)[1]) == 10


def test_on_error_raise_names_the_file(identity_folder):
    (identity_folder / "bob" / "empty.png").write_bytes(b"")
    dataset = image_folder(identity_folder, (8, 6), batch_size=2, on_error="raise")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_folder: .*empty\.png"):
        everything(dataset)


def test_intact_files_raise_no_warning(identity_folder):
    write_image(identity_folder / "alice" / "photo.jpg", coloured(COLOURS["alice"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(everything(image_folder(identity_folder, (8, 6), batch_size=2))[1]) == 10


def test_class_names_round_trip_and_fix_labels(identity_folder, tmp_path):
    save_class_names(["carol", "alice", "bob"], tmp_path / "names.json")
    names = load_class_names(tmp_path / "names.json")
    assert names == ["carol", "alice", "bob"]
    _, labels, _ = list_image_folder(identity_folder, class_names=names)
    np.testing.assert_array_equal(labels, [0] * 4 + [1] * 2 + [2] * 3)


def test_folder_errors(identity_folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_folder(tmp_path / "nowhere", 8, batch_size=2)
    (tmp_path / "empty" / "someone").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        image_folder(tmp_path / "empty", 8, batch_size=2)
    with pytest.raises(ValueError, match="not in class_names"):
        list_image_folder(identity_folder, class_names=["alice", "bob"])
    with pytest.raises(ValueError, match="on_error"):
        image_folder(identity_folder, 8, batch_size=2, on_error="ignore")
    with pytest.raises(ValueError, match="image_size"):
        image_folder(identity_folder, (8, 0), batch_size=2)


def test_damaged_jpeg_met_during_the_epoch_is_named_once_and_costs_only_itself(identity_folder):
    bad = damaged_jpeg(identity_folder / "bob" / "bad.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no file is opened up front
        dataset = image_folder(identity_folder, (8, 6), batch_size=4, seed=0, flip=False)
    assert dataset.num_images == 10 and dataset.skipped_files == []
    with pytest.warns(UserWarning, match=r"skipped images that do not decode: .*bad\.jpg \(1 file\)"):
        sizes = [len(y) for _, y in dataset]
    assert sizes == [4, 4, 1]  # every other image delivered: the last batch is one image short
    assert dataset.skipped_files == [str(bad)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # named once, not every epoch
        images, labels = everything(dataset)
    assert len(labels) == 9 and dataset.skipped_files == [str(bad)]
    for image, label in zip(images, labels):
        np.testing.assert_array_equal(image, coloured(COLOURS[dataset.class_names[label]]))


def test_damaged_jpeg_with_on_error_raise_names_the_file(identity_folder):
    damaged_jpeg(identity_folder / "bob" / "bad.jpg")
    dataset = image_folder(identity_folder, (8, 6), batch_size=4, on_error="raise")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_folder: cannot decode .*bob/bad\.jpg"):
        everything(dataset)


def test_webp_and_tiff_are_read(identity_folder):
    # OpenCV writes both losslessly here (WebP quality above 100).
    for name, ext in (("alice", "webp"), ("bob", "tif"), ("carol", "tiff")):
        path = identity_folder / name / f"extra.{ext}"
        params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == "webp" else []
        assert cv2.imwrite(str(path), cv2.cvtColor(coloured(COLOURS[name]), cv2.COLOR_RGB2BGR), params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = image_folder(identity_folder, (8, 6), batch_size=5, shuffle=False, flip=False)
    images, labels = everything(dataset)
    assert dataset.num_images == 12 and dataset.skipped_files == []
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    for image, label in zip(images, labels):
        np.testing.assert_array_equal(image, coloured(COLOURS[dataset.class_names[label]]))


def test_broken_tiff_is_named_when_met(identity_folder):
    path = identity_folder / "alice" / "broken.tif"
    path.write_bytes(b"II*\x00" + bytes(60))
    dataset = image_folder(identity_folder, (8, 6), batch_size=20, flip=False)
    with pytest.warns(UserWarning, match=r"broken\.tif \(1 file\)"):
        _, labels = everything(dataset)
    assert len(labels) == 9 and dataset.skipped_files == [str(path)]


def test_files_that_are_not_identity_images_are_named(identity_folder):
    write_image(identity_folder / "stray.png", coloured(COLOURS["alice"]))
    (identity_folder / "bob" / "notes.txt").write_text("taken in 2004")
    (identity_folder / "carol" / ".DS_Store").write_bytes(b"\x00")  # hidden: ignored silently
    with pytest.warns(UserWarning) as record:
        dataset = image_folder(identity_folder, (8, 6), batch_size=9, flip=False)
    assert len(record) == 1
    message = str(record[0].message)
    assert "stray.png (not in an identity folder)" in message
    assert "notes.txt (.txt is not an image format read here)" in message and "(2 files)" in message
    assert sorted(Path(p).name for p in dataset.skipped_files) == ["notes.txt", "stray.png"]
    assert len(everything(dataset)[1]) == 9


def test_empty_identity_and_class_name_without_folder_are_errors(identity_folder):
    with pytest.raises(ValueError, match=r"1 of the class_names have no folder .*\['zoe'\]"):
        image_folder(identity_folder, 8, batch_size=2, class_names=["alice", "bob", "carol", "zoe"])
    (identity_folder / "dave").mkdir()
    (identity_folder / "dave" / "readme.txt").write_text("no photos yet")
    with pytest.raises(ValueError, match=r"1 identity folders .* hold no images .*\['dave'\]"):
        image_folder(identity_folder, 8, batch_size=2)


def test_a_dataset_started_at_epoch_2_repeats_epochs_2_and_3(identity_folder):
    def dataset(initial_epoch):
        return image_folder(identity_folder, (8, 6), batch_size=4, seed=11, initial_epoch=initial_epoch)

    def epochs(data, count):
        return [[(x.numpy(), y.numpy()) for x, y in data] for _ in range(count)]

    run, resumed = epochs(dataset(0), 4), epochs(dataset(2), 2)
    for (x, y), (x_resumed, y_resumed) in zip(sum(run[2:], []), sum(resumed, [])):
        np.testing.assert_array_equal(x_resumed, x)
        np.testing.assert_array_equal(y_resumed, y)
    assert len(sum(resumed, [])) == 6
    orders = {tuple(np.concatenate([y for _, y in epoch])) for epoch in run}
    assert len(orders) > 1  # the epochs are shuffled differently
    repeated = dataset(2).repeat(2)  # each repetition is the next epoch, as in train()'s dataset.repeat()
    labels = np.concatenate([y.numpy() for _, y in repeated])
    np.testing.assert_array_equal(labels, np.concatenate([y for _, y in sum(run[2:], [])]))


def test_arcface_faces_are_cropped_for_sphereface_with_one_warning(tmp_path):
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    for n, face in enumerate(faces):
        write_image(tmp_path / "faces" / f"id{n % 2}" / f"{n}.png", face)
    dataset = image_folder(tmp_path / "faces", (112, 96), batch_size=3, shuffle=False, flip=False)
    with pytest.warns(UserWarning) as record:
        images, _ = everything(dataset)
    messages = [str(warning.message) for warning in record]
    assert len(messages) == 1 and "112x112 faces" in messages[0] and "columns 8:104" in messages[0], messages
    np.testing.assert_array_equal(images, faces[[0, 2, 1]][:, :, 8:104].astype("float32"))  # id0: 0, 2; id1: 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per dataset
        everything(dataset)
    write_image(tmp_path / "faces" / "id1" / "wrong.png", faces[0][:100, :90])
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"image_folder: .*id1/wrong\.png is 100x90 \(height x width\), but the pipeline delivers 112x96 "
        r"images.*112x112 faces are cropped to rows 0:112, columns 8:104",
    ):
        everything(image_folder(tmp_path / "faces", (112, 96), batch_size=4, flip=False))


def test_repeat_numbers_epochs_by_their_place_in_each_iterator(identity_folder):
    def batches(initial_epoch, count, peek=False):
        dataset = image_folder(
            identity_folder, (8, 6), batch_size=4, seed=11, initial_epoch=initial_epoch, repeat=True
        )
        if peek:  # as Keras' JAX trainer does: one batch from an iterator it then drops
            iterator = iter(dataset)
            for _ in range(5):
                next(iterator)
            del iterator
        iterator = iter(dataset)
        return [next(iterator) for _ in range(count)]

    run = batches(0, 12)  # 3 batches per epoch: 4 + 4 + 1 images
    assert [len(y) for _, y in run] == [4, 4, 1] * 4
    for (x, y), (x_resumed, y_resumed) in zip(run[6:], batches(2, 6, peek=True)):
        np.testing.assert_array_equal(x_resumed.numpy(), x.numpy())
        np.testing.assert_array_equal(y_resumed.numpy(), y.numpy())
    # The same epochs as the dataset without repeat gives them one iteration at a time.
    single = image_folder(identity_folder, (8, 6), batch_size=4, seed=11, initial_epoch=2)
    np.testing.assert_array_equal(everything(single)[0], np.concatenate([x.numpy() for x, _ in run[6:9]]))
