"""Deterministic DICOM UIDs.

Converting the same input twice must yield the same SOP Instance UIDs, otherwise a rerun would
add duplicate objects to PACS and index. A UUID-derived UID (``2.25.<uuid>``, PS3.5 B.2) of a
name-based UUIDv5 over the inputs that define the object gives exactly that, with no UID root
to register.
"""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("a1d7a6c4-6f0e-5b8e-9d0c-3f5c2b7e4a10")


def derived_uid(*parts: str) -> str:
    """UID that depends only on ``parts`` (e.g. site, patient id, object kind)."""
    return f"2.25.{uuid.uuid5(_NAMESPACE, chr(31).join(parts)).int}"
