"""OpenSearch 2.19.4 secured the way Kaapana 0.6 secures it (test-only).

Read from Kaapana 0.6.0:

* TLS (``services/meta/opensearch/docker/init-certificates/files/generate-certificates.sh``):
  the platform certificate (Secret ``certificate``) is the CA; the node certificate is RSA 2048,
  subject ``/C=CA/ST=ONTARIO/L=TORONTO/O=ORG/OU=UNIT/CN=node1.dns.a-record``, with
  ``subjectAltName=DNS:node1.dns.a-record`` and nothing else.
* ``opensearch.yml``, ``config.yml`` and ``internal_users.yml``
  (``services/meta/opensearch/opensearch-chart/templates/configmap.yaml``): nodes_dn and
  admin_dn as there, http TLS, the security REST API for ``admin``/``all_access``, an empty
  internal user database, ``do_not_fail_on_forbidden: true``, a basic domain (order 0) and an
  ``openid`` domain (order 1) with ``subject_key: preferred_username``, ``roles_key:
  opensearch`` and the realm's ``openid_connect_url``.
* ``roles.yml`` and ``roles_mapping.yml`` are the security plugin's own (the chart does not
  replace them), so the backend role ``admin`` maps to ``all_access``.

Differences, both for want of a cluster: the security index is built from these files at first
start (``allow_default_init_securityindex``) instead of by ``securityadmin.sh`` with the admin
certificate, and the node listens on 127.0.0.1 (clients name ``node1.dns.a-record`` for TLS).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from opensearchpy.exceptions import TransportError

from srcohort.index.connection import connect
from srcohort.server.process import LocalOpenSearch
from srcohort.server.secure import SecureOpenSearch, fetch_security_plugin

NODE_NAME = "node1.dns.a-record"
KAAPANA_DN = {"C": "CA", "ST": "ONTARIO", "L": "TORONTO", "O": "ORG", "OU": "UNIT"}
_OIDS = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
         "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
         "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME}


def _name(**parts: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(_OIDS[key], value) for key, value in parts.items()])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def platform_certificate(hostname: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A self-signed platform certificate, as a Kaapana deployment without its own CA has."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(timezone.utc)
    name = _name(CN=hostname)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def node_certificate(ca: x509.Certificate, ca_key: rsa.RSAPrivateKey
                     ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """``openssl x509 -req ... -extfile node1.ext`` of generate-certificates.sh: only a SAN."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(**KAAPANA_DN, CN=NODE_NAME))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NODE_NAME)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def kaapana_security_config(openid_connect_url: str, plugin_defaults: dict[str, Any]
                            ) -> dict[str, Any]:
    """config.yml and internal_users.yml as Kaapana's chart writes them; roles and role
    mappings as the security plugin ships them."""
    return {
        "config.yml": {"_meta": {"type": "config", "config_version": 2}, "config": {"dynamic": {
            "do_not_fail_on_forbidden": True,
            "authc": {
                "openid_auth_domain": {
                    "http_enabled": True, "transport_enabled": True, "order": 1,
                    "http_authenticator": {"type": "openid", "challenge": False, "config": {
                        "subject_key": "preferred_username", "roles_key": "opensearch",
                        "openid_connect_url": openid_connect_url}},
                    "authentication_backend": {"type": "noop"}},
                "basic_internal_auth_domain": {
                    "description": "Authenticate via HTTP Basic against internal users database",
                    "http_enabled": True, "transport_enabled": True, "order": 0,
                    "http_authenticator": {"type": "basic", "challenge": False},
                    "authentication_backend": {"type": "intern"}},
            }}}},
        "internal_users.yml": {"_meta": {"type": "internalusers", "config_version": 2}},
        "roles.yml": plugin_defaults["roles.yml"],
        "roles_mapping.yml": plugin_defaults["roles_mapping.yml"],
    }


def plugin_default_files(version: str) -> dict[str, Any]:
    """roles.yml and roles_mapping.yml as the security plugin zip ships them."""
    with tempfile.TemporaryDirectory() as tmp:
        plugin = fetch_security_plugin(version, Path(tmp))
        with zipfile.ZipFile(plugin) as archive:
            return {name: yaml.safe_load(archive.read(f"config/{name}"))
                    for name in ("roles.yml", "roles_mapping.yml")}


class KaapanaOpenSearch(SecureOpenSearch):
    """A node with Kaapana's TLS and security configuration; ``admin_token`` is called for a
    token with the ``admin`` backend role while waiting for the node to come up."""

    def __init__(self, data_dir: Path, port: int, *, openid_connect_url: str,
                 admin_token: Callable[[], str], platform_hostname: str = "kaapana.test"
                 ) -> None:
        super().__init__(data_dir, port=port)
        self.openid_connect_url = openid_connect_url
        self.admin_token = admin_token
        ca, ca_key = platform_certificate(platform_hostname)
        node, node_key = node_certificate(ca, ca_key)
        self.tls_dir = self.data_dir / "certs"
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        (self.tls_dir / "root-ca.pem").write_bytes(_pem(ca))
        (self.tls_dir / "node1.pem").write_bytes(_pem(node))
        (self.tls_dir / "node1-key.pem").write_bytes(_key_pem(node_key))
        self.node_dn = node.subject.rfc4514_string()

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "root-ca.pem"

    def _prepare(self, home: Path, account: tuple[int, int] | None) -> None:
        security = self.config_dir / "opensearch-security"
        security.mkdir(parents=True, exist_ok=True)
        for name in ("root-ca.pem", "node1.pem", "node1-key.pem"):
            shutil.copy(self.tls_dir / name, self.config_dir / name)
        files = kaapana_security_config(self.openid_connect_url,
                                        plugin_default_files(self.version))
        for name, content in files.items():
            (security / name).write_text(yaml.safe_dump(content, sort_keys=False), "utf-8")
        LocalOpenSearch._prepare(self, home, account)

    def _opensearch_yml(self) -> str:
        settings = {
            "plugins.security.disabled": False,
            "plugins.security.authcz.admin_dn": ["CN=A,OU=UNIT,O=ORG,L=TORONTO,ST=ONTARIO,C=CA"],
            "plugins.security.nodes_dn": [self.node_dn],
            "plugins.security.ssl.transport.pemcert_filepath": "node1.pem",
            "plugins.security.ssl.transport.pemkey_filepath": "node1-key.pem",
            "plugins.security.ssl.transport.pemtrustedcas_filepath": "root-ca.pem",
            "plugins.security.ssl.transport.enforce_hostname_verification": False,
            "plugins.security.ssl.http.enabled": True,
            "plugins.security.ssl.http.pemcert_filepath": "node1.pem",
            "plugins.security.ssl.http.pemkey_filepath": "node1-key.pem",
            "plugins.security.ssl.http.pemtrustedcas_filepath": "root-ca.pem",
            "plugins.security.restapi.roles_enabled": ["admin", "all_access"],
            "plugins.security.restapi.admin.enabled": True,
            # Stand-ins for the cluster: securityadmin.sh, and nowhere to send audit events.
            "plugins.security.allow_default_init_securityindex": True,
            "plugins.security.audit.type": "noop",
        }
        return LocalOpenSearch._opensearch_yml(self) + yaml.safe_dump(settings, sort_keys=False)

    def _wait_until_healthy(self, deadline: float) -> None:
        client = connect(self.url, ca_certs=str(self.ca_file), tls_server_name=NODE_NAME,
                         token_source=self.admin_token)
        while time.monotonic() < deadline and not self._exited():
            try:
                client.cluster.health(wait_for_status="yellow")
                return
            except TransportError:
                time.sleep(0.5)
        tail = self._log_tail()
        self.stop()
        raise RuntimeError(f"Kaapana-like OpenSearch at {self.url} did not come up:\n{tail}")
