"""P x K batches from arrays and folders."""

import numpy as np
import pytest

from kerasface.data import IdentitySampler, identity_balanced
from tests.data.conftest import COLOURS, damaged_jpeg

# Identity i has COUNTS[i] images; image n holds the value n, so a batch
# shows which images it drew.
COUNTS = [5, 4, 6, 2, 4, 3]
LABELS = np.repeat(np.arange(len(COUNTS)), COUNTS)
IMAGES = np.arange(len(LABELS), dtype="uint8")[:, None, None] * np.ones((1, 3, 2), "uint8")


def test_every_batch_is_p_identities_times_k_images():
    P, K = 3, 4
    dataset = identity_balanced((IMAGES, LABELS), P, K, seed=0, steps_per_epoch=20)
    assert dataset.element_spec[0].shape == (12, 3, 2, 1)
    seen = set()
    for images, labels in dataset:
        images, labels = images.numpy(), labels.numpy()
        rows = labels.reshape(P, K)
        assert np.all(rows == rows[:, :1])  # K consecutive images per identity
        assert len(set(rows[:, 0])) == P  # P different identities
        assert set(rows[:, 0]) <= {0, 1, 2, 4}  # only those with >= K images
        index = images[:, 0, 0, 0].astype(int)
        np.testing.assert_array_equal(LABELS[index], labels)  # image matches label
        assert all(len(set(row)) == K for row in index.reshape(P, K))  # K distinct images
        seen |= set(index)
    assert seen == set(np.flatnonzero(np.isin(LABELS, [0, 1, 2, 4])))


def test_default_epoch_covers_the_eligible_images_once():
    dataset = identity_balanced((IMAGES, LABELS), 2, 2, seed=0)
    # 24 images of identities with >= 2 images, 4 per batch.
    assert sum(1 for _ in dataset) == 24 // 4


def test_too_few_identities_with_k_images_says_how_many():
    with pytest.raises(ValueError, match=r"only 4 of the 6 identities have 4 or more images"):
        identity_balanced((IMAGES, LABELS), 5, 4)
    with pytest.raises(ValueError, match=r"only 1 of the 6 identities have 6 or more"):
        IdentitySampler(LABELS, 2, 6)


def test_same_seed_same_batches():
    def labels(seed):
        return [y.numpy().tolist() for _, y in identity_balanced((IMAGES, LABELS), 2, 2, seed=seed)]

    assert labels(7) == labels(7)
    assert labels(7) != labels(8)


def test_folder_source_resizes_when_asked_and_keeps_structure(identity_folder):
    with pytest.raises(Exception, match=r"alice/\d\.png is 8x6 \(height x width\), but the pipeline delivers 4x3"):
        list(identity_balanced(identity_folder, 2, 2, image_size=(4, 3), seed=1, steps_per_epoch=5))
    dataset = identity_balanced(identity_folder, 2, 2, image_size=(4, 3), seed=1, steps_per_epoch=5, resize=True)
    assert dataset.class_names == ["alice", "bob", "carol"]
    for images, labels in dataset:
        assert images.shape == (4, 4, 3, 3)
        rows = labels.numpy().reshape(2, 2)
        assert np.all(rows == rows[:, :1]) and rows[0, 0] != rows[1, 0]
        for image, label in zip(images.numpy(), labels.numpy()):
            colour = COLOURS[dataset.class_names[label]]
            np.testing.assert_allclose(image[:, -1], np.broadcast_to(colour, (4, 3)))


def test_folder_source_needs_an_image_size(identity_folder):
    with pytest.raises(ValueError, match="image_size is required"):
        identity_balanced(identity_folder, 2, 2)


def test_arrays_of_different_lengths_are_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        identity_balanced((IMAGES, LABELS[:-1]), 2, 2)


def test_flip_keeps_labels_and_mirrors_whole_images():
    images = np.zeros((8, 2, 4), "uint8")
    images[:, :, 0] = 255  # left column white
    labels = np.repeat(np.arange(4), 2)
    dataset = identity_balanced((images, labels), 4, 2, seed=0, flip=True, steps_per_epoch=10)
    batches = np.concatenate([x.numpy() for x, _ in dataset])
    left, right = batches[:, :, 0, 0], batches[:, :, -1, 0]
    assert np.all((left == 255) ^ (right == 255))
    assert 0.3 < (right == 255).all(axis=1).mean() < 0.7


def check_pk_batch(images, labels, class_names, p, k):
    rows = labels.reshape(p, k)
    assert np.all(rows == rows[:, :1]) and len(set(rows[:, 0])) == p
    for image, label in zip(images, labels):
        np.testing.assert_allclose(image[:, -1], np.broadcast_to(COLOURS[class_names[label]], image[:, -1].shape))


def test_a_file_that_does_not_decode_is_replaced_not_its_batch(identity_folder):
    bad = damaged_jpeg(identity_folder / "carol" / "bad.jpg")
    dataset = identity_balanced(identity_folder, 2, 2, image_size=(8, 6), seed=0, steps_per_epoch=20)
    assert dataset.skipped_files == []  # no file is opened up front
    with pytest.warns(UserWarning, match=r"skipped images that do not decode: .*carol/bad\.jpg \(1 file\)"):
        batches = [(x.numpy(), y.numpy()) for x, y in dataset]
    assert len(batches) == 20 and dataset.skipped_files == [str(bad)]
    for images, labels in batches:
        assert images.shape == (4, 8, 6, 3)
        check_pk_batch(images, labels, dataset.class_names, 2, 2)


def test_an_identity_left_without_k_good_images_is_replaced(identity_folder):
    # alice has 3 files, one undecodable: with K = 3 she must give way to another identity.
    damaged_jpeg(identity_folder / "alice" / "bad.jpg")
    dataset = identity_balanced(identity_folder, 2, 3, image_size=(8, 6), seed=1, steps_per_epoch=12)
    with pytest.warns(UserWarning, match=r"alice/bad\.jpg"):
        batches = [(x.numpy(), y.numpy()) for x, y in dataset]
    assert len(batches) == 12
    for images, labels in batches:
        check_pk_batch(images, labels, dataset.class_names, 2, 3)
    assert {tuple(sorted(set(labels))) for _, labels in batches} == {(1, 2)}  # bob and carol only


def epochs_of(dataset, count):
    """`count` iterations over `dataset`: (images of each, labels of each)."""
    epochs = [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(count)]
    return [np.concatenate([x for x, _ in e]) for e in epochs], [np.concatenate([y for _, y in e]) for e in epochs]


@pytest.mark.parametrize("source", ["arrays", "folder"])
def test_a_dataset_started_at_epoch_2_repeats_epochs_2_and_3(identity_folder, source):
    data = (IMAGES, LABELS) if source == "arrays" else identity_folder
    size = None if source == "arrays" else (8, 6)

    def dataset(initial_epoch):
        return identity_balanced(data, 2, 2, size, seed=5, flip=True, steps_per_epoch=3, initial_epoch=initial_epoch)

    images, labels = epochs_of(dataset(0), 4)
    resumed_images, resumed_labels = epochs_of(dataset(2), 2)
    np.testing.assert_array_equal(np.concatenate(resumed_images), np.concatenate(images[2:]))
    np.testing.assert_array_equal(np.concatenate(resumed_labels), np.concatenate(labels[2:]))
    assert not np.array_equal(labels[2], labels[3]) or not np.array_equal(images[2], images[3])  # epochs differ
    with pytest.raises(ValueError, match="initial_epoch must be a non-negative int"):
        dataset(-1)
    repeated = identity_balanced(data, 2, 2, size, seed=5, flip=True, steps_per_epoch=3, repeat=True, initial_epoch=2)
    iterator = iter(repeated)
    got = [next(iterator) for _ in range(6)]  # epochs 2 and 3, without end
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in got]), np.concatenate(images[2:]))


def test_arrays_of_another_size_are_refused_or_cropped_from_arcface_to_sphereface():
    images = np.arange(2 * 112 * 112 * 3).reshape(2, 112, 112, 3).astype("uint8")
    labels = np.array([0, 0])
    with pytest.raises(ValueError, match=r"the images are 112x112 .* image_size is 100x100.*resize=True"):
        identity_balanced((images, labels), 1, 2, image_size=(100, 100))
    with pytest.warns(UserWarning, match=r"112x112 faces are cropped to rows 0:112, columns 8:104"):
        dataset = identity_balanced((images, labels), 1, 2, image_size=(112, 96), seed=0, steps_per_epoch=1)
    (batch, _), = list(dataset)
    order = np.argsort(batch[:, 0, 0, 0])
    np.testing.assert_array_equal(batch.numpy()[order], images[:, :, 8:104].astype("float32"))
    resized = identity_balanced((images, labels), 1, 2, image_size=(100, 100), resize=True, steps_per_epoch=1)
    assert next(iter(resized))[0].shape == (2, 100, 100, 3)
