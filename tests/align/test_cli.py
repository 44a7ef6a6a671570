"""`kerasface align SRC DST` on a small tree of real and broken images."""

import argparse

import cv2
import numpy as np
import pytest
from skimage import data

from kerasface.align import align, detect, select_face
from kerasface.cli import align as align_cli

pytest.importorskip("mtcnn")


def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="kerasface")
    align_cli.register(parser.add_subparsers())
    args = parser.parse_args(["align", *map(str, argv)])
    return args.func(args)


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "alice").mkdir(parents=True)
    (src / "bob").mkdir()
    cv2.imwrite(str(src / "alice" / "astronaut.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(src / "alice" / "wall.png"), np.full((120, 120, 3), 128, np.uint8))
    (src / "bob" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 50)
    (src / "bob" / "notes.txt").write_text("not an image, not counted")
    return src, tmp_path / "dst"


def test_aligns_keeps_folders_and_reports_failures(tree, capsys):
    src, dst = tree
    assert run_cli(src, dst, "--template", "sphereface_112x96") == 0
    crop = cv2.imread(str(dst / "alice" / "astronaut.png"))
    assert crop.shape == (112, 96, 3)
    image = data.astronaut()
    expected = align(image, detect(image)[0].landmarks, "sphereface_112x96")
    np.testing.assert_array_equal(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), expected)
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.png")) == ["alice/astronaut.png"]
    report = (dst / align_cli.REPORT_NAME).read_text()
    assert report.splitlines()[0] == "aligned 1 images; 1 unreadable, 1 no face"
    assert f"unreadable: {src / 'bob' / 'broken.jpg'}" in report
    assert f"no face: {src / 'alice' / 'wall.png'}" in report
    err = capsys.readouterr().err
    assert "align: 3/3 (100%)" in err and report in err


def test_image_size_and_errors(tree, tmp_path, capsys):
    src, dst = tree
    assert run_cli(src, dst, "--image-size", "56", "48") == 0
    assert cv2.imread(str(dst / "alice" / "astronaut.png")).shape == (56, 48, 3)
    assert run_cli(tmp_path / "nowhere", dst) == 2
    (tmp_path / "empty").mkdir()
    assert run_cli(tmp_path / "empty", dst) == 2
    assert "error: no images" in capsys.readouterr().err


def two_astronauts():
    """A large astronaut in the middle and a smaller, more confidently detected one at the right edge."""
    canvas = np.full((400, 800, 3), 128, np.uint8)
    canvas[:, 200:600] = cv2.resize(data.astronaut(), (400, 400))
    canvas[100:300, 600:800] = cv2.resize(data.astronaut(), (200, 200))
    return canvas


def test_keeps_the_central_largest_face_or_all_faces(tmp_path, capsys):
    image = two_astronauts()
    (tmp_path / "src" / "crew").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "src" / "crew" / "two.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    faces = detect(image)
    assert len(faces) == 2 and faces[0].box[2] < faces[1].box[2]  # the small face is the most confident
    central = select_face(faces, image.shape)
    assert central is faces[1]

    def written(path):
        return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)

    assert run_cli(tmp_path / "src", tmp_path / "one") == 0
    np.testing.assert_array_equal(written(tmp_path / "one" / "crew" / "two.png"), align(image, central.landmarks))
    assert run_cli(tmp_path / "src", tmp_path / "all", "--all-faces") == 0
    assert sorted(p.name for p in (tmp_path / "all" / "crew").glob("*.png")) == ["two_0.png", "two_1.png"]
    np.testing.assert_array_equal(written(tmp_path / "all" / "crew" / "two_0.png"), align(image, faces[1].landmarks))
    np.testing.assert_array_equal(written(tmp_path / "all" / "crew" / "two_1.png"), align(image, faces[0].landmarks))
    report = (tmp_path / "all" / align_cli.REPORT_NAME).read_text()
    assert report.splitlines()[0] == "aligned 1 images (2 faces); 0 unreadable, 0 no face"
