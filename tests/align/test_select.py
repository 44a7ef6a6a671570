"""Which face an image keeps: facenet's and insightface's largest face nearest the centre, on synthetic boxes."""

import numpy as np
import pytest

from kerasface.align import Face, by_centrality, central_face_values, select_face

# An image 200 high and 300 wide: its centre is (x, y) = (150, 100).
SHAPE = (200, 300, 3)


def face(box, score=0.9):
    return Face(box=box, landmarks=None, score=score)


def test_values_hand_computed():
    boxes = [
        (10, 20, 60, 60),  # area 3600, centre (40, 50), offset (-110, -50): 3600 - 2 * 14600 = -25600
        (130, 85, 40, 30),  # area 1200, centred exactly: 1200
        (0, 0, 160, 160),  # area 25600, centre (80, 80), offset (-70, -20): 25600 - 2 * 5300 = 15000
        (145, 95, 10, 10),  # area 100, centred: 100
    ]
    np.testing.assert_array_equal(central_face_values(boxes, SHAPE), [-25600, 1200, 15000, 100])


def test_a_centred_face_beats_a_larger_off_centre_one():
    larger_off_centre = face((10, 20, 60, 60), score=0.999)  # 3600 px, but 2 * 14600 off centre
    smaller_centred = face((130, 85, 40, 30), score=0.95)
    assert select_face([larger_off_centre, smaller_centred], SHAPE) is smaller_centred


def test_a_much_larger_face_beats_a_centred_small_one():
    centred = face((130, 85, 40, 30), score=0.999)
    large = face((0, 0, 160, 160), score=0.9)
    assert select_face([centred, large], SHAPE) is large
    assert by_centrality([centred, large], SHAPE) == [large, centred]


def test_the_offset_counts_twice_the_area():
    # Two 20x20 faces 10 px either side of the centre along x, and one 30x30 face 20 px off along y:
    # 400 - 2 * 100 = 200 each for the first two, 900 - 2 * 400 = 100 for the third.
    left, right, below = face((130, 90, 20, 20)), face((150, 90, 20, 20)), face((135, 105, 30, 30))
    np.testing.assert_array_equal(central_face_values([f.box for f in (left, right, below)], SHAPE), [200, 200, 100])
    # Ties keep the detector's order (np.argmax keeps the first).
    assert select_face([left, right, below], SHAPE) is left
    assert select_face([right, left, below], SHAPE) is right


def test_the_centre_is_width_and_height_over_two():
    # A 3x3 box at (3, 1) has its centre at (4.5, 2.5): the centre of a 5 high, 9 wide image.
    assert central_face_values([(3, 1, 3, 3)], (5, 9)) == pytest.approx([9.0])
    # In a 9 high, 5 wide image the centre is (2.5, 4.5): offset (2, -2).
    assert central_face_values([(3, 1, 3, 3)], (9, 5)) == pytest.approx([9.0 - 2 * (2**2 + 2**2)])


def test_no_face():
    assert select_face([], SHAPE) is None
    assert by_centrality([], SHAPE) == []
