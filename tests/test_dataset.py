"""Patient ids from file names and the patient-level split."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pneumoscan.dataset import LabelledImage, fingerprint, list_labelled_images, patient_id, split_by_patient

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("name", "patient"),
    [
        ("person123_bacteria_456.jpeg", "person123"),
        ("person447_virus_921_1.jpeg", "person447"),
        ("IM-0115-0001.jpeg", "IM-0115"),
        ("IM-0429-0001-0002.jpeg", "IM-0429"),
        ("NORMAL2-IM-0587-0001-0002.jpeg", "NORMAL2-IM-0587"),
        ("scan.png", "scan"),
    ],
)
def test_patient_id_comes_from_the_file_name(name, patient):
    assert patient_id(name) == patient


def fake_items(tmp_path: Path) -> list[LabelledImage]:
    """40 normal and 120 pneumonia patients with one to three images each."""
    for label, folder in enumerate(("NORMAL", "PNEUMONIA")):
        (tmp_path / folder).mkdir(parents=True)
        for patient in range(40 * (1 + 2 * label)):
            for image in range(1 + patient % 3):
                name = (
                    f"person{patient}_virus_{image}.jpeg" if label else f"IM-{patient:04d}-{image:04d}.jpeg"
                )
                (tmp_path / folder / name).write_bytes(b"x" * (patient + image + 1))
    return list_labelled_images(tmp_path)


def test_split_keeps_each_patient_on_one_side_and_is_stratified(tmp_path):
    items = fake_items(tmp_path)
    train, val = split_by_patient(items, 0.15, seed=7)
    assert not {i.patient for i in train} & {i.patient for i in val}
    assert len(train) + len(val) == len(items)
    for label, patients in ((0, 40), (1, 120)):
        val_patients = {i.patient for i in val if i.label == label}
        assert len(val_patients) == round(patients * 0.15)


def test_split_depends_only_on_its_seed_not_on_the_interpreter(tmp_path):
    """Another process with another hash seed (set and dict order) must make the same split."""
    items = fake_items(tmp_path)
    code = (
        "import sys; from pneumoscan.dataset import list_labelled_images, split_by_patient\n"
        "print(sorted(i.path.name for i in split_by_patient(list_labelled_images(sys.argv[1]), 0.15, 1)[1]))"
    )
    names = {
        hash_seed: subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert names["1"] == names["2"] == f"{sorted(i.path.name for i in split_by_patient(items, 0.15, 1)[1])}\n"
    assert split_by_patient(items, 0.15, 1)[1] != split_by_patient(items, 0.15, 2)[1]


def test_fingerprint_follows_the_images_not_where_they_are(tmp_path):
    items = fake_items(tmp_path / "here")
    grown, relabelled = (
        shutil.copytree(tmp_path / "here", tmp_path / name) for name in ("grown", "relabelled")
    )
    assert fingerprint(list_labelled_images(grown)) == fingerprint(items)
    image = grown / "NORMAL" / "IM-0000-0000.jpeg"
    image.write_bytes(image.read_bytes() + b"x")
    (relabelled / "NORMAL" / image.name).rename(relabelled / "PNEUMONIA" / image.name)
    assert fingerprint(list_labelled_images(grown)) != fingerprint(items)
    assert fingerprint(list_labelled_images(relabelled)) != fingerprint(items)


def test_missing_class_folder_is_a_clear_error(tmp_path):
    (tmp_path / "NORMAL").mkdir()
    with pytest.raises(FileNotFoundError, match="PNEUMONIA"):
        list_labelled_images(tmp_path)


def test_real_training_folder_splits_by_patient(xray_dir):
    train, val = split_by_patient(list_labelled_images(xray_dir), 0.15, 42)
    assert len(train) + len(val) == 5216
    assert not {i.patient for i in train} & {i.patient for i in val}
    assert 0.13 < len(val) / 5216 < 0.17
