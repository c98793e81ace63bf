"""The typed model card: read, changed and written back without losing what it does not type."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pneumoscan.model_card import CARD_FILE, Calibration, ModelCard
from pneumoscan.preprocess import Preprocessing


def test_committed_card_round_trips(model_dir, tmp_path):
    original = json.loads((model_dir / CARD_FILE).read_text())
    card = ModelCard.load(model_dir)
    card.write(tmp_path)
    written = json.loads((tmp_path / CARD_FILE).read_text())

    assert ModelCard.load(tmp_path) == card
    assert list(written)[: len(original)] == list(original)
    assert {key: written[key] for key in original} == original
    assert written["preprocessing_parameters"] == original["preprocessing_parameters"]
    assert written["calibration"] == original["calibration"]


def test_a_complete_card_is_written_back_byte_for_byte(model_dir, tmp_path):
    changed = replace(
        ModelCard.load(model_dir),
        preprocessing=Preprocessing(input_size=299, clahe_clip=0.0, corner_mask=0.14),
        calibration=Calibration("platt", 0.8, -0.2),
    )
    changed.write(tmp_path)
    first = (tmp_path / CARD_FILE).read_bytes()
    loaded = ModelCard.load(tmp_path)
    loaded.write(tmp_path)

    assert (tmp_path / CARD_FILE).read_bytes() == first
    assert loaded.preprocessing == Preprocessing(input_size=299, clahe_clip=0.0, corner_mask=0.14)
    assert loaded.calibration == Calibration("platt", 0.8, -0.2)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"class_names": ["PNEUMONIA", "NORMAL"]}, "classes"),
        ({"positive_class": "NORMAL"}, "classes"),
        ({"threshold": 1.5}, "threshold"),
        ({"model_file": None}, "lacks"),
    ],
)
def test_cards_serving_cannot_use_are_refused(model_dir, change, words):
    data = {**json.loads((model_dir / CARD_FILE).read_text()), **change}
    data = {key: value for key, value in data.items() if value is not None}
    with pytest.raises(ValueError, match=words):
        ModelCard.from_json(data)
