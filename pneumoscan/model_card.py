"""The model card (`model_card.json`): what serving needs from it, typed, and the rest kept as is.

Training writes the card, serving reads it, and `python -m pneumoscan threshold` rewrites the
threshold in it. The fields here are the contract between them; every other key (validation
reports, the gate's report, the split, training settings) is carried untouched in `extra`, so
`ModelCard.load(d).write(d)` keeps the file's content. Change a card with `dataclasses.replace`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pneumoscan.preprocess import Preprocessing

CARD_FILE = "model_card.json"
CLASS_NAMES = ("NORMAL", "PNEUMONIA")
POSITIVE_CLASS = "PNEUMONIA"
PREPROCESSING_KEY = "preprocessing_parameters"
CALIBRATION_KEY = "calibration"
SUBTYPE_KEY = "subtype"
SUBTYPE_NAMES = ("BACTERIAL", "VIRAL")

# JSON keys read as they are; the other typed fields have a key of their own, above.
_PLAIN_FIELDS = (
    "model_version",
    "model_file",
    "model_sha256",
    "head_file",
    "positive_class",
    "threshold",
    "threshold_policy",
)
_TYPED_KEYS = {*_PLAIN_FIELDS, "class_names", PREPROCESSING_KEY, CALIBRATION_KEY, SUBTYPE_KEY}


@dataclass(frozen=True)
class Calibration:
    """Served probability = sigmoid(scale * logit + bias); the default changes nothing."""

    method: str = "none"
    scale: float = 1.0
    bias: float = 0.0


@dataclass(frozen=True)
class SubtypeHead:
    """The second logit: viral rather than bacterial, for images labelled PNEUMONIA. Calibrated
    and thresholded like the main estimate, on the external set's pneumonia images."""

    calibration: Calibration
    threshold: float
    threshold_policy: str

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"subtype threshold {self.threshold} is not a probability between 0 and 1")

    @classmethod
    def from_json(cls, data: dict) -> SubtypeHead:
        return cls(Calibration(**data["calibration"]), data["threshold"], data["threshold_policy"])

    def label(self, viral_probability: float) -> str:
        return SUBTYPE_NAMES[1] if viral_probability >= self.threshold else SUBTYPE_NAMES[0]


@dataclass(frozen=True)
class ModelCard:
    model_version: str
    model_file: str
    model_sha256: str
    head_file: str
    class_names: tuple[str, ...]
    positive_class: str
    threshold: float
    threshold_policy: str
    preprocessing: Preprocessing = Preprocessing()
    calibration: Calibration = Calibration()
    subtype: SubtypeHead | None = None  # models before the subtype head have none
    extra: dict = field(default_factory=dict)
    key_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if tuple(self.class_names) != CLASS_NAMES or self.positive_class != POSITIVE_CLASS:
            raise ValueError(
                f"the model's classes {list(self.class_names)} (positive {self.positive_class!r}) are not "
                f"PneumoScan's {list(CLASS_NAMES)} (positive {POSITIVE_CLASS!r})"
            )
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold {self.threshold} is not a probability between 0 and 1")

    @classmethod
    def from_json(cls, data: dict) -> ModelCard:
        missing = [key for key in (*_PLAIN_FIELDS, "class_names") if key not in data]
        if missing:
            raise ValueError(f"the model card lacks {missing}")
        return cls(
            **{key: data[key] for key in _PLAIN_FIELDS},
            class_names=tuple(data["class_names"]),
            preprocessing=Preprocessing(**data.get(PREPROCESSING_KEY, {})),
            calibration=Calibration(**data.get(CALIBRATION_KEY, {})),
            subtype=SubtypeHead.from_json(data[SUBTYPE_KEY]) if SUBTYPE_KEY in data else None,
            extra={key: value for key, value in data.items() if key not in _TYPED_KEYS},
            key_order=tuple(data),
        )

    @classmethod
    def load(cls, model_dir: Path) -> ModelCard:
        return cls.from_json(json.loads((Path(model_dir) / CARD_FILE).read_text(encoding="utf-8")))

    def to_json(self) -> dict:
        """The card as written: the file's own key order, new keys after it."""
        data = {
            **{key: getattr(self, key) for key in _PLAIN_FIELDS},
            "class_names": list(self.class_names),
            PREPROCESSING_KEY: self.preprocessing.as_dict(),
            CALIBRATION_KEY: asdict(self.calibration),
            **({SUBTYPE_KEY: asdict(self.subtype)} if self.subtype else {}),
            **self.extra,
        }
        ordered = [key for key in self.key_order if key in data]
        return {key: data[key] for key in [*ordered, *(key for key in data if key not in ordered)]}

    def write(self, model_dir: Path) -> None:
        (Path(model_dir) / CARD_FILE).write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")

    def label(self, probability: float, threshold: float | None = None) -> str:
        """The class named for a served probability: the positive class at or above the threshold
        (the card's unless a site threshold is given)."""
        negative = next(name for name in self.class_names if name != self.positive_class)
        limit = self.threshold if threshold is None else threshold
        return self.positive_class if probability >= limit else negative
