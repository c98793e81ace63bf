"""`python -m pneumoscan predict` and `evaluate` with the committed model on real X-rays."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pneumoscan.dataset import list_labelled_images
from pneumoscan.decode import decode_image
from pneumoscan.inference import Predictor, calibrated_probability
from pneumoscan.metrics import bootstrap_thresholds
from pneumoscan.model_card import ModelCard

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pneumoscan", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def small_kaggle_folder(tmp_path, xray_dir):
    """A NORMAL/ PNEUMONIA/ folder of a few real X-rays (copied to a temporary folder)."""
    for name in ("NORMAL", "PNEUMONIA"):
        target = tmp_path / "xrays" / name / "nested"
        target.mkdir(parents=True)
        for path in sorted((xray_dir / name).glob("*.jpeg"))[-4:]:
            shutil.copy(path, target / path.name)
    return tmp_path / "xrays"


def test_predict_scores_folders_recursively_and_keeps_going_after_a_bad_file(
    model_dir, small_kaggle_folder, tmp_path
):
    bad = small_kaggle_folder / "NORMAL" / "notes.jpg"
    bad.write_text("not an image")
    out = tmp_path / "scores.csv"
    result = run_cli("predict", small_kaggle_folder, "--csv", out)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    card = ModelCard.load(model_dir)
    assert len(rows) == 9
    assert list(rows[0]) == [
        "path",
        "probability",
        "logit",
        "label",
        "threshold",
        "model_version",
        "viral_probability",
        "subtype",
        "error",
    ]
    errors = [r for r in rows if r["label"] == "ERROR"]
    assert [Path(r["path"]).name for r in errors] == ["notes.jpg"] and errors[0]["error"]
    for row in rows:
        if row["label"] != "ERROR":
            probability, logit = float(row["probability"]), float(row["logit"])
            assert row["label"] == ("PNEUMONIA" if probability >= float(row["threshold"]) else "NORMAL")
            assert probability == calibrated_probability(logit, card.calibration), "written at full precision"
    assert "9/9 images" in result.stderr


def test_predict_gives_the_subtype_on_pneumonia_rows_and_the_viral_probability_on_every_row(
    model_dir, small_kaggle_folder, tmp_path
):
    card = ModelCard.load(model_dir)
    if card.subtype is None:
        pytest.skip("the model in model_weights/ has no subtype head")
    out = tmp_path / "scores.csv"
    assert run_cli("predict", small_kaggle_folder, "--csv", out, "--no-gate").returncode == 0
    for row in csv.DictReader(out.read_text().splitlines()):
        viral = float(row["viral_probability"])
        assert 0 <= viral <= 1
        if row["label"] == "PNEUMONIA":
            assert row["subtype"] == ("VIRAL" if viral >= card.subtype.threshold else "BACTERIAL")
        else:
            assert row["subtype"] == ""


def test_predict_writes_each_map_at_the_models_grid(model_dir, small_kaggle_folder, tmp_path):
    maps = tmp_path / "maps"
    result = run_cli("predict", small_kaggle_folder, "--csv", tmp_path / "s.csv", "--maps", maps, "--no-gate")
    assert result.returncode == 0, result.stderr
    predictor = Predictor.load(model_dir, threads=1)
    images = sorted(small_kaggle_folder.rglob("*.jpeg"))
    assert sorted(p.name for p in maps.iterdir()) == sorted(f"{p.stem}.npy" for p in images)
    for path in images[:3]:
        written = np.load(maps / f"{path.stem}.npy")
        served = predictor.predict(decode_image(path.read_bytes()), check_xray=False).cam
        assert written.ndim == 2 and written.dtype == np.float32
        assert written.min() >= 0 and written.max() <= 1
        assert np.allclose(written, served, atol=1e-6)


def test_predict_refuses_maps_for_two_files_with_one_stem(small_kaggle_folder, tmp_path):
    first = next(small_kaggle_folder.rglob("*.jpeg"))
    twin = tmp_path / "other" / first.name
    twin.parent.mkdir()
    shutil.copy(first, twin)
    result = run_cli("predict", first, twin, "--maps", tmp_path / "maps")
    assert result.returncode != 0 and "share the file stem" in result.stderr
    assert not (tmp_path / "maps").exists() or not any((tmp_path / "maps").iterdir())


def test_predict_writes_csv_to_stdout_and_fails_when_nothing_could_be_scored(model_dir, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"%PDF-1.4 not really")
    result = run_cli("predict", junk)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith("path,probability,logit,label,threshold")


def test_evaluate_reports_metrics_at_the_stored_threshold(model_dir, small_kaggle_folder, tmp_path):
    out = tmp_path / "metrics.json"
    result = run_cli("evaluate", small_kaggle_folder, "--json", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["n"] == 8 and report["counts"] == {"NORMAL": 4, "PNEUMONIA": 4}
    assert sum(report["confusion_matrix"].values()) == 8
    assert 0 <= report["auc"] <= 1 and report["threshold"] > 0


def test_threshold_is_repicked_on_a_folder_and_stored_in_the_card(model_copy, small_kaggle_folder):
    before = ModelCard.load(model_copy)
    items = list_labelled_images(small_kaggle_folder)
    predictor = Predictor.load(model_copy, threads=1)
    scores = np.array(
        [predictor.predict(decode_image(i.path.read_bytes()), check_xray=False).probability for i in items]
    )
    labels, groups = np.array([i.label for i in items]), np.array([i.patient for i in items])
    picks = bootstrap_thresholds(labels, scores, groups, "youden", 0.95, rounds=200, seed=42)
    expected = float(np.quantile(picks, 0.25))

    result = run_cli(
        "--model-dir",
        model_copy,
        "threshold",
        "--policy",
        "youden",
        "--on",
        small_kaggle_folder,
        "--quantile",
        "0.25",
    )

    assert result.returncode == 0, result.stderr
    after = ModelCard.load(model_copy)
    assert after.threshold == expected != before.threshold
    assert "Youden" in after.threshold_policy and str(small_kaggle_folder) in after.threshold_policy
    assert after.extra["threshold_report"]["n"] == 8 and "quantile 0.25" in after.threshold_policy
    assert after.extra["threshold_report"]["interval_90"][0] <= expected
    assert {k: v for k, v in after.extra.items() if k != "threshold_report"} == before.extra
    assert f"old threshold {before.threshold:.6f}" in result.stdout
    assert f"new threshold {expected:.6f}" in result.stdout
    assert Predictor.load(model_copy, threads=1).threshold == expected


def test_threshold_writes_the_card_of_the_model_dir_variable(model_copy, small_kaggle_folder, model_dir):
    """`MODEL_DIR` names the model for `threshold` as for `predict`: the copy's card changes, the
    committed one does not."""
    committed = (model_dir / "model_card.json").read_bytes()
    before = ModelCard.load(model_copy).threshold
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pneumoscan",
            "threshold",
            "--policy",
            "youden",
            "--on",
            str(small_kaggle_folder),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MODEL_DIR": str(model_copy)},
    )
    assert result.returncode == 0, result.stderr
    assert ModelCard.load(model_copy).threshold != before
    assert (model_dir / "model_card.json").read_bytes() == committed
    assert f"stored in {model_copy / 'model_card.json'}" in result.stdout
