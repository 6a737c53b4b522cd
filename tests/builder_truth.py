"""Ground truth for the cohort builder's tests, from the demo generator's truth records alone
(the pipeline never reads them): "one SEG with both the left and the right ventricle AND an ECG
with LBBB within 90 days before the TAVI"."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path


def ventricles_and_lbbb_ecg(record: dict) -> bool:
    """One label map (one SEG) holds both ventricles, and the patient's ECG shows LBBB 0-90 days
    before the TAVI; the TAVI dates the patient only when its procedure code was exported
    (pacemaker outcome known: the outcome SR, whose date is the event, was written)."""
    ecg = record.get("ecg")
    if not ecg or not ecg["lbbb"] or record["pacemaker"] == "unknown":
        return False
    days = (dt.date.fromisoformat(ecg["date"]) - dt.date.fromisoformat(record["tavi_date"])).days
    both = any({"LEFT_VENTRICLE", "RIGHT_VENTRICLE"} <= set(seg)
               for seg in record["segmentations"])
    return both and -90 <= days <= 0


def truth_per_site(consortium: Path, rule=ventricles_and_lbbb_ecg) -> dict[str, int]:
    truth = json.loads((consortium / "ground_truth.json").read_text("utf-8"))
    return {site: sum(map(rule, data["patients"].values()))
            for site, data in truth["sites"].items()}


def saved_truth(consortium: Path, name: str) -> dict[str, int]:
    """The generator's own per-site truth of a saved cohort of the study."""
    truth = json.loads((consortium / "ground_truth.json").read_text("utf-8"))
    return truth["cohorts"][name]["per_site"]
