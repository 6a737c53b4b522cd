"""One serialisation for every JSON file srcohort writes for others to compare or verify.

Sorted keys, fixed indentation, UTF-8 text and a final newline: equal content gives equal bytes,
so a rerun rewrites identical files (aggregates, manifests, progress records).
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
