"""An int8 export's parity is measured on images held out of its calibration, and the report names them."""

import json

import cv2
import numpy as np
import pytest

from kerasface import export as kexport
from kerasface.export import exporter
from tests.export.models import INPUT_SHAPE, tiny_embedder

SPEC = kexport.ImageSpec(*INPUT_SHAPE)


def rows_of(images):
    return {image.tobytes() for image in images}


def test_calibrated_formats_hold_out_a_quarter_spread_over_the_data():
    representative = kexport.synthetic_images(SPEC, count=48, seed=1)
    images = kexport.parity_images(SPEC, calibrated=True, representative_data=representative)
    assert images.source == "held_out" and len(images.check) == 12 and len(images.calibration) == 36
    # Spread evenly: indices round(linspace(0, 47, 12)) = 0, 4, 9, 13, ..., 47.
    expected = np.round(np.linspace(0, 47, 12)).astype(int)
    assert images.check_names == tuple(f"array[{i}]" for i in expected)
    assert set(images.check_names).isdisjoint(images.calibration_names)
    assert len(set(images.check_names) | set(images.calibration_names)) == 48
    assert rows_of(images.check).isdisjoint(rows_of(images.calibration))
    np.testing.assert_array_equal(images.check, representative[expected])
    assert images.describe() == "12 held-out representative images, disjoint from the 36 that calibrate"


def test_at_most_64_held_out_and_single_images_fall_back_to_synthetic():
    many = kexport.synthetic_images(SPEC, count=300, seed=2)
    images = kexport.parity_images(SPEC, calibrated=True, representative_data=many)
    assert (len(images.check), len(images.calibration)) == (64, 236)
    single = kexport.parity_images(SPEC, calibrated=True, representative_data=many[:1])
    assert single.source == "synthetic" and len(single.calibration) == 1 and len(single.check) == 8
    assert rows_of(single.check).isdisjoint(rows_of(single.calibration))
    # Formats without calibration are checked on the first 64 representative images.
    plain = kexport.parity_images(SPEC, calibrated=False, representative_data=many)
    assert plain.calibration is None and plain.source == "representative_data"
    np.testing.assert_array_equal(plain.check, many[:64])


def test_folder_names_and_check_inputs_that_repeat_calibration_images(tmp_path):
    for i, image in enumerate(kexport.synthetic_images(SPEC, count=8, seed=3)):
        cv2.imwrite(str(tmp_path / f"face_{i}.png"), image.astype(np.uint8))
    images = kexport.parity_images(SPEC, calibrated=True, representative_data=tmp_path)
    assert images.check_names == ("face_0.png", "face_7.png")
    assert images.calibration_names == tuple(f"face_{i}.png" for i in range(1, 7))
    calibration = kexport.load_images(tmp_path, SPEC)
    with pytest.raises(ValueError, match="Received: 1 of 3 check images repeat calibration images"):
        kexport.parity_images(
            SPEC,
            calibrated=True,
            representative_data=tmp_path,
            check_inputs=np.concatenate([kexport.synthetic_images(SPEC, count=2, seed=9), calibration[4:5]]),
        )


def test_int8_export_is_checked_on_images_it_was_not_calibrated_on(tmp_path, monkeypatch):
    written = {}
    real_write = exporter.write

    def recording_write(embedder, path, fmt, calibration=None, int8_io=False):
        written["calibration"] = calibration
        return real_write(embedder, path, fmt, calibration=calibration, int8_io=int8_io)

    checked = {}
    real_agreement = exporter.agreement

    def recording_agreement(reference, candidate):
        checked["count"] = len(reference)
        return real_agreement(reference, candidate)

    monkeypatch.setattr(exporter, "write", recording_write)
    monkeypatch.setattr(exporter, "agreement", recording_agreement)
    representative = kexport.synthetic_images(SPEC, count=20, seed=4)
    report = kexport.export(
        tiny_embedder(), tmp_path / "m.tflite", format="tflite_int8", representative_data=representative
    )
    held_out = np.round(np.linspace(0, 19, 5)).astype(int)
    assert len(written["calibration"]) == 15 and checked["count"] == 5
    assert rows_of(written["calibration"]).isdisjoint(rows_of(representative[held_out]))
    assert report.check_names == tuple(f"array[{i}]" for i in held_out)
    assert report.parity_images == "5 held-out representative images, disjoint from the 15 that calibrate"
    parity = json.loads((tmp_path / "m.tflite.json").read_text())["parity"]
    assert parity == {
        "max_abs_error": report.max_abs_error,
        "mean_cosine": report.mean_cosine,
        "images": report.parity_images,
        "source": "held_out",
        "check_images": [f"array[{i}]" for i in held_out],
        "calibration_images": 15,
    }
    assert report.mean_cosine >= 0.99
