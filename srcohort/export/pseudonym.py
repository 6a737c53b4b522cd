"""Stable pseudonyms from a per-site secret.

HMAC-SHA256 over site and patient id: the same patient gets the same pseudonym in every
re-export, nobody without the secret can recompute or reverse it, and different sites'
secrets keep their pseudonyms unlinkable.
"""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(secret: bytes, site: str, patient_id: str) -> str:
    if not secret:
        raise ValueError("a non-empty pseudonymisation secret is required")
    digest = hmac.new(secret, f"{site}\x1f{patient_id}".encode("utf-8"), hashlib.sha256)
    return "P" + digest.hexdigest()[:20]
