"""The install-time parameters, as the extension's install Job left them for the DAGs.

Kaapana passes the chosen ``extension_params`` to the chart as ``global.<name>``; only the
chart sees them. Its post-install Job (``srcohort-kaapana install``) writes them to
``settings.json`` beside this module in Airflow's DAG folder, and every srcohort step gets them
as environment variables; a workflow form can narrow them (a larger k) but not bypass them,
and may name another study than the installed one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SETTINGS_FILE = Path(__file__).with_name("settings.json")
# Keys of settings.json -> the variables the srcohort image reads.
ENVIRONMENT = {"opensearch_index_prefix": "SRCOHORT_INDEX_PREFIX",
               "k_anonymity_threshold": "SRCOHORT_K", "study": "SRCOHORT_STUDY"}


def installed(path: Path = SETTINGS_FILE) -> dict[str, Any]:
    """settings.json as the install Job wrote it (empty before it ran): the parameters, and
    the installed study's saved cohorts, which the forms offer."""
    try:
        values = json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def pod_settings(path: Path = SETTINGS_FILE) -> dict[str, str]:
    """The installed parameters as pod environment (empty before the install Job ran)."""
    return {ENVIRONMENT[key]: str(value) for key, value in installed(path).items()
            if key in ENVIRONMENT and value not in (None, "")}
