"""Read a unified training export: one ``(ct, ecg, features, label)`` per patient.

Written PyTorch-style (``__len__``/``__getitem__``) so a ``DataLoader`` takes it as it is; it
subclasses ``torch.utils.data.Dataset`` only when torch is installed, and never imports torch
otherwise, so a site can check its export without a deep-learning stack.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq

from srcohort.export.state import COMPLETE, is_complete
from srcohort.files import file_sha256
from srcohort.export.training import PATIENTS_TABLE

if importlib.util.find_spec("torch") is not None:      # pragma: no cover - torch is optional
    from torch.utils.data import Dataset as _Base
else:
    _Base = object


class IncompleteExport(RuntimeError):
    """The export was interrupted or failed verification: it has no COMPLETE marker."""


@dataclass(frozen=True)
class PatientSample:
    pseudonym: str
    ct: np.ndarray | None          # HU, RAS+ (i, j, k)
    ecg: np.ndarray | None         # (12, n) mV
    features: dict[str, Any]
    label: int | None              # 1 yes, 0 no, None unknown
    masks: dict[str, np.ndarray]   # segment type -> uint8 mask (when ``masks=True``)

    def __iter__(self):            # (ct, ecg, features, label), as a training loop unpacks it
        return iter((self.ct, self.ecg, self.features, self.label))


class TrainingDataset(_Base):  # type: ignore[misc, valid-type]
    """The patients of one export (optionally one split), in pseudonym order."""

    def __init__(self, root: Path | str, *, split: str | None = None, masks: bool = False,
                 verify: bool = True,
                 transform: Callable[[PatientSample], Any] | None = None) -> None:
        self.root = Path(root)
        if not is_complete(self.root):
            raise IncompleteExport(f"{self.root}: no {COMPLETE} marker; the export was "
                                   "interrupted or failed verification, run it again")
        self.manifest = json.loads((self.root / "manifest.json").read_text("utf-8"))
        self._checksums = {f["path"]: f["sha256"] for f in self.manifest["files"]}
        table = pq.read_table(self.root / PATIENTS_TABLE).to_pylist()
        self.rows = [r for r in table if split is None or r["split"] == split]
        self.feature_names = [c["name"] for c in self.manifest["columns"]]
        self.masks, self.verify, self.transform = masks, verify, transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Any:
        row = self.rows[index]
        masks: dict[str, np.ndarray] = {}
        if self.masks and row["segments"]:
            for key in row["segments"].split("|"):
                masks[key] = self._nifti(f"seg/{row['pseudonym']}/{key.replace(':', '_')}.nii.gz")
        sample = PatientSample(
            pseudonym=row["pseudonym"],
            ct=self._nifti(row["ct"]) if row["ct"] else None,
            ecg=np.load(self._checked(row["ecg"])) if row["ecg"] else None,
            features={name: row[name] for name in self.feature_names},
            label=row["label"], masks=masks)
        return self.transform(sample) if self.transform else sample

    def _checked(self, rel: str) -> Path:
        path = self.root / rel
        if self.verify and file_sha256(path) != self._checksums.get(rel):
            raise IOError(f"{path}: checksum differs from manifest.json (file changed or "
                          "missing from the manifest)")
        return path

    def _nifti(self, rel: str) -> np.ndarray:
        return np.asanyarray(nib.load(self._checked(rel)).dataobj)

