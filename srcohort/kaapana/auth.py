"""The platform's bearer token: an OIDC password grant with the credentials Kaapana injects.

Kaapana's own helper (kaapanapy, ``base-python-cpu/files/kaapana_python/kaapanapy/helper/
__init__.py``: ``_fetch_new_token``, ``_refresh_token``, ``get_project_user_access_token``) logs
in at ``$KEYCLOAK_URL/auth/realms/<realm>/protocol/openid-connect/token`` with
``grant_type=password``, the pod's ``KAAPANA_PROJECT_USER_NAME`` / ``_PASSWORD`` and the client
``kaapana`` with ``KAAPANA_CLIENT_SECRET``; later tokens come from the refresh token. This does
the same, and refreshes ahead of expiry so a long step (an export of hours) never sends a token
that runs out on the way.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests

from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pod import Pod
from srcohort.logs import get_logger

log = get_logger(__name__)

DEFAULT_KEYCLOAK_URL = "http://keycloak-external-service.admin.svc:80"
DEFAULT_CLIENT = "kaapana"
# Refresh this long before expiry (capped at half the lifetime for short-lived tokens).
REFRESH_MARGIN_SECONDS = 60.0
TIMEOUT_SECONDS = 15.0


@dataclass
class TokenSource:
    """Bearer tokens of one Keycloak user, fetched once and refreshed before they expire.

    ``token()`` is what every client calls per request; it is cheap while the cached token is
    fresh and thread-safe (the export's upload threads share one source).
    """

    keycloak_url: str
    username: str
    password: str
    client_secret: str
    client_id: str = DEFAULT_CLIENT
    realm: str = DEFAULT_CLIENT
    verify: bool | str = True
    clock: Callable[[], float] = time.time
    _access: str | None = field(default=None, repr=False)
    _refresh: str | None = field(default=None, repr=False)
    _expires_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_pod(cls, pod: Pod) -> TokenSource:
        """The pod's user, as ``set_env_secrets`` injects it (Secrets ``project-user-credentials``
        or ``system-user-password``, and ``oidc-client-secret``)."""
        password = pod.get("KAAPANA_PROJECT_USER_PASSWORD") or pod.get("SYSTEM_USER_PASSWORD")
        if password is None:
            raise KaapanaError("$KAAPANA_PROJECT_USER_PASSWORD is not set: Kaapana injects it "
                               "from the Secret project-user-credentials (key "
                               "project-user-password) of the project's namespace")
        client_secret = pod.get("KAAPANA_CLIENT_SECRET") or pod.get("OIDC_CLIENT_SECRET")
        if client_secret is None:
            raise KaapanaError("$KAAPANA_CLIENT_SECRET is not set: Kaapana injects it from the "
                               "Secret oidc-client-secret (key oidc-client-secret)")
        return cls(
            keycloak_url=(pod.get("KAAPANA_KEYCLOAK_URL") or pod.get("KEYCLOAK_URL")
                          or DEFAULT_KEYCLOAK_URL).rstrip("/"),
            username=pod.get("KAAPANA_PROJECT_USER_NAME") or "system",
            password=password, client_secret=client_secret,
            client_id=pod.get("KAAPANA_CLIENT_ID") or DEFAULT_CLIENT,
            realm=pod.get("KAAPANA_REALM") or DEFAULT_CLIENT)

    @property
    def token_url(self) -> str:
        return f"{self.keycloak_url}/auth/realms/{self.realm}/protocol/openid-connect/token"

    def token(self) -> str:
        with self._lock:
            if self._access is None or self.clock() >= self._expires_at:
                self._renew()
            assert self._access is not None
            return self._access

    def _renew(self) -> None:
        if self._refresh is not None:
            try:
                self._grant({"grant_type": "refresh_token", "refresh_token": self._refresh})
                return
            except KaapanaError as exc:   # refresh token expired or revoked: log in again
                log.info("token refresh failed; logging in again", extra={"reason": str(exc)})
        self._grant({"grant_type": "password", "username": self.username,
                     "password": self.password})

    def _grant(self, form: dict[str, str]) -> None:
        data = {**form, "client_id": self.client_id, "client_secret": self.client_secret}
        try:
            answer = requests.post(self.token_url, data=data, timeout=TIMEOUT_SECONDS,
                                   verify=self.verify)
        except requests.RequestException as exc:
            raise KaapanaError(f"cannot reach Keycloak at {self.token_url}: "
                               f"{type(exc).__name__}") from None
        body: dict[str, Any] = {}
        try:
            body = answer.json()
        except ValueError:
            pass
        if answer.status_code != 200 or "access_token" not in body:
            reason = body.get("error_description") or body.get("error") or answer.reason
            raise KaapanaError(
                f"Keycloak refused the {form['grant_type']} grant for user {self.username!r} "
                f"({answer.status_code} {reason}): check the Secrets project-user-credentials "
                f"and oidc-client-secret")
        lifetime = float(body.get("expires_in") or 60)
        margin = min(REFRESH_MARGIN_SECONDS, lifetime / 2)
        self._access = str(body["access_token"])
        self._refresh = body.get("refresh_token")
        self._expires_at = self.clock() + lifetime - margin
        log.info("token", extra={"grant": form["grant_type"], "user": self.username,
                                 "expires_in": lifetime})
