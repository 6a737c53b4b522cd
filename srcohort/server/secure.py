"""A local OpenSearch secured the way Kaapana's is, for tests and development.

Kaapana runs OpenSearch with the security plugin: TLS on http and transport, signed by
Kaapana's own CA, and OpenID bearer tokens from Keycloak whose ``roles`` claim decides what a
caller may do. ``SecureOpenSearch`` is ``LocalOpenSearch`` in that shape, entirely offline:

* the security plugin (from Maven Central, like the distribution) goes into a copy of the
  cached distribution beside it; the shared plain distribution is never changed;
* a CA made on the spot signs the node's certificate and a client certificate;
* basic auth against one internal user whose bcrypt hash is computed here;
* a JWT auth domain with an HMAC key standing in for Keycloak's realm key, so tests mint
  bearer tokens with Keycloak's claims (``preferred_username``, ``roles``); the roles become
  backend roles, mapped to ``all_access`` or to roles confined to srcohort's indices;
* the security index is built from these files at first start
  (``allow_default_init_securityindex``): no securityadmin.sh run, so no admin certificate.

Not for production: the CA key is dropped after signing, but the password and the HMAC key
are kept in ``data_dir/security`` in plain text.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Iterable

import bcrypt
import jwt
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from opensearchpy.exceptions import TransportError

from srcohort.index.connection import connect
from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.logs import get_logger
from srcohort.server.distribution import (DEFAULT_VERSION, FetchError, default_cache_dir,
                                          ensure_distribution)
from srcohort.server.process import LocalOpenSearch, _java_home

log = get_logger(__name__)

PLUGIN_ARTIFACT = "org.opensearch.plugin:opensearch-security:{version}.0:zip"
SECURED_CACHE = "with-security"
# The installer copies the plugin's demo configuration (well-known passwords, demo role
# mappings) into config/opensearch-security; the secured copy drops it, each node writes its own.
DEMO_FILES = ("config.yml", "internal_users.yml", "roles.yml", "roles_mapping.yml")

USER = "srcohort"
WRITER, READER = "srcohort-writer", "srcohort-reader"
# Kaapana's Keycloak realm; tokens must name it as issuer, as a realm's tokens do.
ISSUER = "https://keycloak.invalid/auth/realms/kaapana"
NODE_CN, ORGANISATION = "srcohort-node", "srcohort test CA"
CERT_DAYS = 30
# Credentials' files, in field order: the CA, then "<stem>.pem" and "<stem>-key.pem" each.
CREDENTIAL_FILES = ("root-ca.pem", "node.pem", "node-key.pem", "client.pem", "client-key.pem")
# Backend roles (Keycloak realm roles, the internal user's and the client certificate's) -> roles.
ROLE_MAPPING = {"all_access": "admin", "srcohort_writer": WRITER, "srcohort_reader": READER}
# The least srcohort needs: scans clear their scroll, a cluster-level action no ``*_ops_ro``
# action group grants.
CLEAR_SCROLL = "indices:data/read/scroll/clear"
# Whoever may count or list must also leave an entry in the audit log (<prefix>audit): readers
# may create that index and add documents to it, and write nothing else. (A single document
# goes through the bulk action, which the cluster must allow; the index patterns still decide
# where.)
WRITE_BULK = "indices:data/write/bulk"
AUDIT_APPEND = {"index_patterns": [f"{DEFAULT_PREFIX}*audit"],
                "allowed_actions": ["indices:admin/create", "indices:data/write/index",
                                    f"{WRITE_BULK}*"]}
ROLES = {
    "srcohort_writer": {
        "cluster_permissions": ["cluster_composite_ops", "cluster_monitor", CLEAR_SCROLL],
        "index_permissions": [{"index_patterns": [f"{DEFAULT_PREFIX}*"],
                               "allowed_actions": ["indices_all"]}]},
    "srcohort_reader": {
        "cluster_permissions": ["cluster_composite_ops_ro", CLEAR_SCROLL, WRITE_BULK],
        "index_permissions": [{"index_patterns": [f"{DEFAULT_PREFIX}*"],
                               "allowed_actions": ["read"]}, AUDIT_APPEND]},
}


def fetch_security_plugin(version: str, directory: Path) -> Path:
    """The security plugin zip for OpenSearch ``version`` (the plugin adds a fourth digit),
    copied by Maven so ``~/.m2`` and its mirrors serve it like the distribution."""
    artifact = PLUGIN_ARTIFACT.format(version=version)
    try:
        with tempfile.TemporaryDirectory() as cwd:  # no stray pom.xml for Maven to pick up
            done = subprocess.run(["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact}",
                                   f"-DoutputDirectory={directory}"],
                                  cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise FetchError("mvn not found; run tools/install-system.sh") from exc
    found = sorted(directory.glob("opensearch-security-*.zip"))
    if done.returncode != 0 or not found:
        raise FetchError(f"maven could not fetch {artifact}:\n{done.stdout}{done.stderr}".strip())
    return found[0]


def secured_distribution(home: Path, root: Path) -> Path:
    """``root/<home.name>``: a copy of the distribution ``home`` with the security plugin.

    Made once per cache, in a staging directory renamed into place, so a half-made copy is
    never mistaken for a finished one and concurrent sessions cannot collide.
    """
    target = root / home.name
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=root))
    try:
        copy = staging / home.name
        shutil.copytree(home, copy, symlinks=True)
        plugin = fetch_security_plugin(home.name.removeprefix("opensearch-"), staging)
        done = subprocess.run([str(copy / "bin" / "opensearch-plugin"), "install", "--batch",
                               plugin.as_uri()], capture_output=True, text=True, check=False,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                   "JAVA_HOME": str(_java_home())})
        if done.returncode != 0:
            raise RuntimeError(f"installing {plugin.name} failed:\n{done.stdout}{done.stderr}")
        config = copy / "config" / "opensearch-security"
        for name in DEMO_FILES:
            (config / name).unlink()
        # The installer makes this folder private to its owner; the node's service account and
        # other users of a shared cache copy it, and it holds no secrets.
        for path in (config, *config.iterdir()):
            path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
        try:
            copy.rename(target)
        except OSError:
            if not target.is_dir():  # anything but a concurrent session that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("security plugin installed", extra={"home": str(target), "plugin": plugin.name})
    return target


@dataclass(frozen=True)
class Credentials:
    """What clients of one secured node need, and the node's own TLS files.

    Kept in one directory and reused: the security index, built at the first start, keeps
    the first password hash and HMAC key, so a restarted node must get the same ones.
    ``client_cert`` is ``USER``'s, with the writer role as its OU (client certificate auth).
    """

    password: str
    signing_key: bytes
    ca_file: Path
    node_cert: Path
    node_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def load_or_create(cls, directory: Path) -> Credentials:
        secrets_file = directory / "secrets.json"
        if not secrets_file.is_file():
            _create_credentials(directory, secrets_file)
        stored = json.loads(secrets_file.read_text("utf-8"))
        return cls(stored["password"], base64.b64decode(stored["signing_key"]),
                   *(directory / name for name in CREDENTIAL_FILES))


def _create_credentials(directory: Path, secrets_file: Path) -> None:
    """A CA, node and client certificates, a password and an HMAC key; the secrets file comes
    last, so its presence means the rest is complete. The CA key is never written."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("srcohort test root CA")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
    (directory / CREDENTIAL_FILES[0]).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    node_san = [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))]
    for stem, name, san in (("node", _name(NODE_CN), node_san),
                            ("client", _name(USER, unit=WRITER), None)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(name, key, ca_name, ca_key, san=san)
        (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        # PKCS#8: the only unencrypted key form the security plugin reads.
        _write_private(directory / f"{stem}-key.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    _write_private(secrets_file, json.dumps({
        "password": secrets.token_urlsafe(24),
        # HS256 with jjwt (the plugin's JWT library) needs a key of at least 256 bits.
        "signing_key": base64.b64encode(secrets.token_bytes(32)).decode("ascii"),
    }).encode("utf-8"))


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION)]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                 issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False,
                 san: list[x509.GeneralName] | None = None) -> x509.Certificate:
    """A CA or leaf certificate with the extensions strict verifiers (OpenSSL 3, Java) want.

    Leaves serve both ends of TLS (the node's certificate also opens transport connections),
    and only the node's carries names (``san``) a client checks the host against.
    """
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5))
               .not_valid_after(now + timedelta(days=CERT_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=not ca, key_cert_sign=ca,
                   crl_sign=ca, encipher_only=False, decipher_only=False), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                   ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def security_config(credentials: Credentials) -> dict[str, dict[str, Any]]:
    """The plugin's config files (``config/opensearch-security/<name>``) as data."""
    def meta(kind: str) -> dict[str, Any]:
        return {"_meta": {"type": kind, "config_version": 2}}

    def domain(order: int, authenticator: dict[str, Any], backend: str) -> dict[str, Any]:
        return {"http_enabled": True, "transport_enabled": False, "order": order,
                "http_authenticator": {"challenge": False, **authenticator},
                "authentication_backend": {"type": backend}}

    jwt_config = {"signing_key": base64.b64encode(credentials.signing_key).decode("ascii"),
                  "subject_key": "preferred_username", "roles_key": "roles",
                  "required_issuer": ISSUER}
    password_hash = bcrypt.hashpw(credentials.password.encode("utf-8"), bcrypt.gensalt())
    return {
        "config.yml": {**meta("config"), "config": {"dynamic": {
            "http": {"anonymous_auth_enabled": False},
            "authc": {
                "basic_internal_auth_domain": domain(0, {"type": "basic"}, "internal"),
                "jwt_auth_domain": domain(1, {"type": "jwt", "config": jwt_config}, "noop"),
                "clientcert_auth_domain": domain(2, {"type": "clientcert", "config": {
                    "username_attribute": "cn", "roles_attribute": "ou"}}, "noop"),
            }}}},
        "internal_users.yml": {**meta("internalusers"), USER: {
            "hash": password_hash.decode("ascii"), "backend_roles": [WRITER]}},
        "roles.yml": {**meta("roles"), **ROLES},
        "roles_mapping.yml": {**meta("rolesmapping"), **{
            role: {"backend_roles": [backend]} for role, backend in ROLE_MAPPING.items()}},
    }


class SecureOpenSearch(LocalOpenSearch):
    """``LocalOpenSearch`` behind the security plugin; ``credentials`` says how to get in.

    ``cache_dir`` is the plain distributions' cache; the secured copies live in its
    ``with-security`` folder, which is what the base class launches from.
    """

    def __init__(self, data_dir: Path, port: int = 9200, version: str = DEFAULT_VERSION,
                 cache_dir: Path | None = None, heap_mb: int = 512) -> None:
        plain_cache = Path(cache_dir) if cache_dir else default_cache_dir()
        super().__init__(data_dir, port, version, plain_cache / SECURED_CACHE, heap_mb)
        self.plain_cache_dir = plain_cache

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @cached_property
    def credentials(self) -> Credentials:
        return Credentials.load_or_create(self.data_dir / "security")

    def mint_token(self, roles: Iterable[str], *, username: str = "kaapana-project-user",
                   signing_key: bytes | None = None, issuer: str = ISSUER,
                   lifetime_seconds: int = 300) -> str:
        """A bearer token shaped like a Keycloak access token for Kaapana: realm roles in
        ``roles``, the user in ``preferred_username``. ``signing_key``, ``issuer`` and a
        negative lifetime make the tokens the node must refuse."""
        now = int(time.time())
        claims = {"iss": issuer, "sub": str(uuid.uuid4()), "typ": "Bearer",
                  "preferred_username": username, "roles": list(roles),
                  "iat": now, "exp": now + lifetime_seconds}
        return jwt.encode(claims, signing_key or self.credentials.signing_key, algorithm="HS256")

    def _launch(self) -> None:
        """Make the secured copy first: the base class would fetch a plain distribution into
        an empty ``cache_dir``."""
        secured_distribution(ensure_distribution(self.version, self.plain_cache_dir),
                             self.cache_dir)
        super()._launch()

    def _prepare(self, home: Path, account: tuple[int, int] | None) -> None:
        """Put the TLS files and the security config into the node's config directory before
        the base class copies the distribution's config around them (no name is shared, since
        the secured copy has no demo files) and hands it all to the service account."""
        credentials = self.credentials
        security = self.config_dir / "opensearch-security"
        security.mkdir(parents=True, exist_ok=True)
        for source in (credentials.ca_file, credentials.node_cert, credentials.node_key):
            shutil.copy(source, self.config_dir / source.name)
        for name, content in security_config(credentials).items():
            (security / name).write_text(yaml.safe_dump(content, sort_keys=False), "utf-8")
        super()._prepare(home, account)

    def _opensearch_yml(self) -> str:
        credentials = self.credentials
        settings: dict[str, Any] = {}
        for layer in ("transport", "http"):
            prefix = f"plugins.security.ssl.{layer}"
            settings[f"{prefix}.pemcert_filepath"] = credentials.node_cert.name
            settings[f"{prefix}.pemkey_filepath"] = credentials.node_key.name
            settings[f"{prefix}.pemtrustedcas_filepath"] = credentials.ca_file.name
        settings.update({
            "plugins.security.ssl.http.enabled": True,
            "plugins.security.ssl.http.clientauth_mode": "OPTIONAL",
            "plugins.security.nodes_dn": [_name(NODE_CN).rfc4514_string()],
            "plugins.security.allow_default_init_securityindex": True,
            # audit.yml enables auditing, but a single test node has nowhere to send it.
            "plugins.security.audit.type": "noop",
        })
        return super()._opensearch_yml() + yaml.safe_dump(settings, sort_keys=False)

    def _wait_until_healthy(self, deadline: float) -> None:
        """Wait for a yellow cluster as the internal user, over TLS with the node's CA.

        The base class probes with plain urllib, which trusts no private CA and sends no
        credentials; and until the plugin has written its security index, even a correct
        request is refused (503), so only an authenticated answer means ready.
        """
        credentials = self.credentials
        client = connect(self.url, ca_certs=str(credentials.ca_file), username=USER,
                         password=credentials.password)
        started = time.monotonic()
        while time.monotonic() < deadline and not self._exited():
            try:
                health = client.cluster.health(wait_for_status="yellow")
            except TransportError:  # incl. refused connections, 503 and 408 (not yellow yet)
                time.sleep(0.5)
                continue
            log.info("secured opensearch ready", extra={
                "url": self.url, "status": health["status"],
                "seconds": round(time.monotonic() - started, 1)})
            return
        tail = self._log_tail()
        self.stop()
        raise RuntimeError(f"secured OpenSearch at {self.url} did not come up; log tail:\n{tail}")
