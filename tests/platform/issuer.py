"""A small OpenID Connect issuer in Keycloak's place (test-only).

Keycloak's server distribution is not on Maven Central (``org.keycloak:keycloak-quarkus-dist``
was not found), so this speaks the part of Keycloak that Kaapana 0.6 relies on:

* ``/auth/realms/<realm>/.well-known/openid-configuration`` and the realm's JWKS, which
  OpenSearch's ``openid`` auth domain (opensearch-chart/templates/configmap.yaml) and MinIO's
  OpenID provider fetch to validate tokens;
* ``/auth/realms/<realm>/protocol/openid-connect/token`` with ``grant_type=password`` and
  ``refresh_token``, as kaapanapy's helper calls it (client ``kaapana`` + client secret);
* RS256 access tokens with Keycloak's claims (``iss``, ``sub``, ``azp``, ``preferred_username``)
  and Kaapana's mapper claims: ``opensearch`` (``admin`` for admins,
  ``<claim>_<project id>`` per AII right: keycloak/docker/{admin-mapper,rights-token-mapper})
  and ``policy`` (MinIO policies: ``consoleAdmin`` or ``admin_project_<project id>``).
"""

from __future__ import annotations

import base64
import secrets
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.platform.service import JsonHandler, ThreadedHttp

REALM = "kaapana"
CLIENT_ID = "kaapana"


@dataclass
class User:
    password: str
    opensearch: list[str]
    policy: list[str]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Issuer(ThreadedHttp):
    """The realm ``kaapana`` on ``127.0.0.1:<port>``; ``users`` and ``lifetime`` may change
    while it runs (a test issues already expired tokens by a negative lifetime)."""

    def __init__(self, client_secret: str) -> None:
        self.client_secret = client_secret
        self.users: dict[str, User] = {}
        self.lifetime = 300
        self.grants: list[tuple[str, str]] = []       # (grant type, user), in order
        self._refresh: dict[str, str] = {}
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)
        super().__init__(self._handler())

    @property
    def realm_url(self) -> str:
        return f"{self.base_url}/auth/realms/{REALM}"

    @property
    def config_url(self) -> str:
        return f"{self.realm_url}/.well-known/openid-configuration"

    def add_user(self, name: str, *, opensearch: list[str], policy: list[str]) -> str:
        password = secrets.token_urlsafe(12)
        self.users[name] = User(password, opensearch, policy)
        return password

    def token_for(self, name: str) -> str:
        """An access token of ``name`` without the HTTP round trip (test set-up)."""
        return self._access_token(name)

    def _access_token(self, name: str) -> str:
        user = self.users[name]
        now = int(time.time())
        claims = {"iss": self.realm_url, "sub": user.id, "aud": "account", "azp": CLIENT_ID,
                  "typ": "Bearer", "jti": str(uuid.uuid4()), "iat": now,
                  "exp": now + self.lifetime, "preferred_username": name,
                  "scope": "openid profile email", "opensearch": list(user.opensearch),
                  "policy": list(user.policy)}
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})

    def _jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "kid": self._kid, "use": "sig", "alg": "RS256",
                          "n": _b64(numbers.n), "e": _b64(numbers.e)}]}

    def _configuration(self) -> dict[str, Any]:
        return {"issuer": self.realm_url,
                "token_endpoint": f"{self.realm_url}/protocol/openid-connect/token",
                "jwks_uri": f"{self.realm_url}/protocol/openid-connect/certs",
                "authorization_endpoint": f"{self.realm_url}/protocol/openid-connect/auth",
                "userinfo_endpoint": f"{self.realm_url}/protocol/openid-connect/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "grant_types_supported": ["password", "refresh_token"]}

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != self.client_secret:
            return 401, {"error": "unauthorized_client",
                         "error_description": "Invalid client or Invalid client credentials"}
        grant = form.get("grant_type")
        if grant == "password":
            name = form.get("username", "")
            user = self.users.get(name)
            if user is None or form.get("password") != user.password:
                return 401, {"error": "invalid_grant",
                             "error_description": "Invalid user credentials"}
        elif grant == "refresh_token":
            name = self._refresh.pop(form.get("refresh_token", ""), "")
            if not name:
                return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
        else:
            return 400, {"error": "unsupported_grant_type"}
        self.grants.append((grant, name))
        refresh = secrets.token_urlsafe(24)
        self._refresh[refresh] = name
        return 200, {"access_token": self._access_token(name), "expires_in": self.lifetime,
                     "refresh_expires_in": 1800, "refresh_token": refresh,
                     "token_type": "Bearer", "scope": "openid profile email"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(JsonHandler):

            def do_GET(self) -> None:  # noqa: N802
                path = urllib.parse.urlsplit(self.path).path
                if path == f"/auth/realms/{REALM}/.well-known/openid-configuration":
                    self.send_json(200, issuer._configuration())
                elif path == f"/auth/realms/{REALM}/protocol/openid-connect/certs":
                    self.send_json(200, issuer._jwks())
                else:
                    self.send_json(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                path = urllib.parse.urlsplit(self.path).path
                if path != f"/auth/realms/{REALM}/protocol/openid-connect/token":
                    self.send_json(404, {"error": "not found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode("utf-8")))
                self.send_json(*issuer._token(form))

        return Handler

