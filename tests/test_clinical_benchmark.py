"""benchmarks/clinical.py at its --quick size, against the session's OpenSearch.

The full run (512 x 512 x 300 and x 600 CTs, ~120 patients) takes minutes and is not part of
the test run; here 3 patients of 64 x 64 x 24 go through the same code: every step in its own
process, the same baselines, and the checks the full run prints. Times are printed there,
never asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dicom_validators import require_tool
from tests.scripts import benchmark

pytestmark = pytest.mark.opensearch


def test_quick_clinical_run_agrees_with_its_baselines(opensearch_url: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("dcm2niix")
    require_tool("dciodvfy")
    clinical = benchmark("clinical")
    [report] = clinical.measure(opensearch_url, tmp_path, [(clinical.Size(64, 24), 3)],
                                baseline_patients=2)
    assert report.steps["convert"].result["converted"] > 0
    assert report.steps["index"].result == {"series": 18, "patients": 3, "errors": 0}
    export = report.steps["export"].result
    assert export["patients"] == 3 and export["problems"] == 0
    # dcm2niix + SimpleITK on the export's own grid: the same HU up to int16 rounding
    assert report.checks["max_hu_difference"] <= 0.51
    assert report.checks["seg"]["dciodvfy_errors"] == []
    assert report.checks["seg"]["segments"] >= 3
    for step, declared in clinical.bounds(report).items():
        assert declared >= report.steps[step].peak_mb, step
    clinical.print_report([report])
    printed = capsys.readouterr().out
    assert "unified export / baseline per patient" in printed and "dcmqi" in printed
