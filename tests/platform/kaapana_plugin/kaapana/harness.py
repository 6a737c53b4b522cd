"""The harness' stand-in cluster: volumes, Secrets, uploads, PACS, as ``$SRCOHORT_HARNESS`` says."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def config() -> dict[str, Any]:
    return json.loads(Path(os.environ["SRCOHORT_HARNESS"]).read_text("utf-8"))


def volume(namespace: str) -> Path:
    """Host folder of the namespace's ``workflow-data-pv-claim``."""
    return Path(config()["volumes"][namespace])
