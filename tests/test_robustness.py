"""The robustness report on real X-rays with the committed model: every family scored through
the served path, and no corrupted X-ray refused by the gate that it accepts as stored."""

import numpy as np

from pneumoscan.inference import Predictor
from pneumoscan.training.robustness import REPORT, robustness_report


def test_robustness_report_scores_every_family_and_the_gate_keeps_corrupted_xrays(
    xray_dir, model_dir, tmp_path
):
    for name in ("NORMAL", "PNEUMONIA"):
        (tmp_path / name).mkdir()
        for path in sorted((xray_dir / name).glob("*.jpeg"))[:6]:
            (tmp_path / name / path.name).symlink_to(path)
    predictor = Predictor.load(model_dir, threads=1)
    report = robustness_report(predictor, tmp_path)
    assert report["images"] == 12 and list(report["families"]) == list(REPORT)
    for name, figures in report["families"].items():
        assert 0.0 <= figures["auc"] <= 1.0 and not np.isnan(figures["specificity"]), name
        assert figures["newly_refused"] == [], name
    as_stored = report["families"]["as stored"]
    assert as_stored["gate_refused"] == 0
