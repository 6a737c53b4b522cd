"""The project's bucket in Kaapana's MinIO, with the pod's Keycloak token.

Kaapana 0.6 gives every project a bucket ``project-<name>`` (``project_form.s3_bucket``) and a
MinIO policy ``admin_project_<project id>`` for its members (AII ``projects/minio.py``); a
token's ``policy`` claim names the policies. kaapanapy's ``get_minio_client`` exchanges the
token for temporary keys with STS ``AssumeRoleWithWebIdentity`` at ``$MINIO_URL``; so does this,
again whenever the keys or the token run out.

srcohort keeps its files below ``srcohort/`` in the bucket, where project members see them in
Kaapana's MinIO browser (the Store view).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

from minio import Minio
from minio.credentials import WebIdentityProvider
from minio.error import MinioException, S3Error

from srcohort.kaapana.auth import TokenSource
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pod import Pod
from srcohort.logs import get_logger

log = get_logger(__name__)

FOLDER = "srcohort"


class ProjectBucket:
    """Uploads into and downloads from one project bucket."""

    def __init__(self, client: Minio, bucket: str, url: str) -> None:
        self.client = client
        self.bucket = bucket
        self.url = url

    @classmethod
    def from_pod(cls, pod: Pod, tokens: TokenSource, bucket: str) -> ProjectBucket:
        url = pod.get("MINIO_URL") or f"http://minio-service.{pod.services_namespace}.svc:9000"
        parts = urlsplit(url if "://" in url else f"http://{url}")
        provider = WebIdentityProvider(
            lambda: {"access_token": tokens.token(), "expires_in": "900"},
            f"{parts.scheme}://{parts.netloc}")
        client = Minio(parts.netloc, credentials=provider, secure=parts.scheme == "https")
        return cls(client, bucket, f"{parts.scheme}://{parts.netloc}")

    def put_file(self, path: Path, key: str) -> str:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._call(lambda: self.client.fput_object(self.bucket, key, str(path),
                                                   content_type=content_type), key)
        return key

    def put_tree(self, folder: Path, prefix: str) -> list[str]:
        """Every file below ``folder`` at ``<prefix>/<relative path>``."""
        return [self.put_file(path, f"{prefix}/{path.relative_to(folder).as_posix()}")
                for path in sorted(folder.rglob("*")) if path.is_file()]

    def get_file(self, key: str, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        self._call(lambda: self.client.fget_object(self.bucket, key, str(target)), key)
        return target

    def keys(self, prefix: str) -> Iterable[str]:
        objects = self._call(lambda: list(self.client.list_objects(self.bucket, prefix=prefix,
                                                                   recursive=True)), prefix)
        return [obj.object_name for obj in objects]

    def _call(self, action, key: str):  # type: ignore[no-untyped-def]
        try:
            return action()
        except S3Error as exc:
            raise KaapanaError(f"MinIO at {self.url} refused {exc.code} for "
                               f"{self.bucket}/{key}: {exc.message}") from None
        except (MinioException, ValueError) as exc:
            # STS refusals arrive as ValueError or MinioException from the credentials provider
            raise KaapanaError(f"MinIO at {self.url}: {self.bucket}/{key}: "
                               f"{' '.join(str(exc).split())[:300]}") from None
        except OSError as exc:
            raise KaapanaError(f"cannot reach MinIO at {self.url}: {type(exc).__name__}") from None
