"""The Kaggle/Kermany folder layout: CLASS/<file>, with the patient id in the file name."""

from __future__ import annotations

import hashlib
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

from pneumoscan.formats import IMAGE_SUFFIXES
from pneumoscan.model_card import CLASS_NAMES

DATA_ENV = "PNEUMOSCAN_DATA"
# The checkout is the package's parent; the shared data sit beside it.
DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

_PATIENT_PATTERNS = (
    re.compile(r"^(person\d+)_"),
    re.compile(r"^(NORMAL2-IM-\d+)-"),
    re.compile(r"^(IM-\d+)-"),
)


def data_root() -> Path:
    """The shared data folder: $PNEUMOSCAN_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT)


def training_folder() -> Path:
    """The Kermany training split in the Kaggle layout (NORMAL/, PNEUMONIA/)."""
    return data_root() / "chest_xray" / "train"


def external_folder() -> Path:
    """Half of the Kermany test split, collected apart from the training folder: where designs,
    calibration and threshold are chosen (never fitted on)."""
    return data_root() / "chest_xray" / "external_dev"


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: int  # 1 = PNEUMONIA, 0 = NORMAL

    @property
    def patient(self) -> str:
        return patient_id(self.path.name)

    @property
    def viral(self) -> int:
        """1 where the file name says virus (`person1_virus_6.jpeg`), else 0 (bacteria, or normal)."""
        return int("_virus" in self.path.name)


def patient_id(file_name: str) -> str:
    """`person123_bacteria_456.jpeg` -> `person123`; `IM-0115-0001.jpeg` -> `IM-0115`;
    `NORMAL2-IM-0587-0001-0002.jpeg` -> `NORMAL2-IM-0587`. Unknown names are their own patient."""
    for pattern in _PATIENT_PATTERNS:
        match = pattern.match(file_name)
        if match:
            return match.group(1)
    return Path(file_name).stem


def list_labelled_images(root: Path) -> list[LabelledImage]:
    """All images under root/NORMAL and root/PNEUMONIA (recursively), in a stable order."""
    items = []
    for label, name in enumerate(CLASS_NAMES):
        folder = Path(root) / name
        if not folder.is_dir():
            raise FileNotFoundError(f"expected a folder {folder} (Kaggle layout: NORMAL/, PNEUMONIA/)")
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                items.append(LabelledImage(path, label))
    return items


def split_by_patient(
    items: list[LabelledImage], val_fraction: float, seed: int
) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """Seeded, class-stratified split that keeps every patient's images on one side."""
    by_patient: dict[str, list[LabelledImage]] = {}
    for item in items:
        by_patient.setdefault(item.patient, []).append(item)
    rng = random.Random(seed)
    val_patients: set[str] = set()
    for label in range(len(CLASS_NAMES)):
        patients = sorted(p for p, imgs in by_patient.items() if max(i.label for i in imgs) == label)
        rng.shuffle(patients)
        val_patients.update(patients[: round(len(patients) * val_fraction)])
    train = [i for i in items if i.patient not in val_patients]
    val = [i for i in items if i.patient in val_patients]
    return train, val


def fingerprint(items: list[LabelledImage]) -> str:
    """sha256 over (class, file name, size) of every image: identifies the data a model saw."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.label}/{item.path.name}/{item.path.stat().st_size}\n".encode())
    return digest.hexdigest()
