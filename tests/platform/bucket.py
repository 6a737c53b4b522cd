"""MinIO's server as Kaapana runs it, with the project buckets AII makes (test-only).

The server is built from source through the Go module proxy (tools/install-minio.sh) into the
cache beside the OpenSearch distribution. Configured as ``services/store/minio/minio-chart/
templates/deployment.yaml`` configures it: OpenID provider = the realm's well-known URL, client
``kaapana`` with its secret, scopes ``openid,profile,email,roles``, claim ``policy``. Projects
get what AII's ``projects/minio.py`` gives them: bucket ``project-<name>`` and, per right with
claim key ``policy``, a policy ``<claim>_<project id>`` (``get_policy_for_role_and_bucket``).
"""

from __future__ import annotations

import io
import json
import os
import urllib.request
from pathlib import Path

from minio import Minio, MinioAdmin
from minio.credentials import StaticProvider

from srcohort.server.distribution import default_cache_dir
from tests.platform.service import ServerProcess

ROOT_USER = "srcohort-minio-root"
# AII get_policy_for_role_and_bucket
POLICY_ACTIONS = {
    "read_project": ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"],
    "admin_project": ["s3:ListBucket", "s3:PutObject", "s3:DeleteObject",
                      "s3:GetBucketLocation", "s3:GetObject"],
}


def minio_binary() -> Path:
    return default_cache_dir() / "bin" / "minio"


class ObjectStore(ServerProcess):
    def __init__(self, root: Path, port: int, console_port: int, *, openid_config_url: str,
                 client_secret: str) -> None:
        super().__init__(root, "minio")
        self.port = port
        self.console_port = console_port
        self.openid_config_url = openid_config_url
        self.client_secret = client_secret
        self.root_password = os.urandom(12).hex()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ObjectStore:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root),
               "MINIO_ROOT_USER": ROOT_USER, "MINIO_ROOT_PASSWORD": self.root_password,
               "MINIO_IDENTITY_OPENID_CONFIG_URL": self.openid_config_url,
               "MINIO_IDENTITY_OPENID_SCOPES": "openid,profile,email,roles",
               "MINIO_IDENTITY_OPENID_CLIENT_ID": "kaapana",
               "MINIO_IDENTITY_OPENID_CLIENT_SECRET": self.client_secret,
               "MINIO_IDENTITY_OPENID_CLAIM_NAME": "policy",
               "MINIO_BROWSER": "off", "MINIO_UPDATE": "off"}

        def live() -> bool:
            with urllib.request.urlopen(f"{self.url}/minio/health/live", timeout=2):
                return True

        self.spawn([str(minio_binary()), "server", str(self.root / "data"), "--address",
                    f"127.0.0.1:{self.port}", "--console-address",
                    f"127.0.0.1:{self.console_port}"], env, live, timeout)
        return self

    def root_client(self) -> Minio:
        return Minio(f"127.0.0.1:{self.port}", access_key=ROOT_USER,
                     secret_key=self.root_password, secure=False)

    def add_project(self, bucket: str, project_id: str) -> None:
        """AII's setup_new_project for MinIO: the bucket and its policies."""
        client = self.root_client()
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        admin = MinioAdmin(f"127.0.0.1:{self.port}",
                           credentials=StaticProvider(ROOT_USER, self.root_password),
                           secure=False)
        for claim, actions in POLICY_ACTIONS.items():
            policy = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": actions,
                "Resource": [f"arn:aws:s3:::{bucket}/*"]}]}
            path = self.root / f"{claim}_{project_id}.json"
            path.write_text(json.dumps(policy), "utf-8")
            admin.policy_add(f"{claim}_{project_id}", str(path))

    def read(self, bucket: str, key: str) -> bytes:
        answer = self.root_client().get_object(bucket, key)
        try:
            return answer.read()
        finally:
            answer.close()
            answer.release_conn()

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(o.object_name for o in self.root_client().list_objects(
            bucket, prefix=prefix, recursive=True))

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.root_client().put_object(bucket, key, io.BytesIO(data), len(data))
