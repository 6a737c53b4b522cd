"""Run a processing container as Kaapana's Kubernetes runner would, without Kubernetes (test-only).

What a pod gets is rebuilt here from the operator's description: its environment, each Secret
reference resolved from the harness' Secrets of the pod's namespace (a missing Secret fails
the pod as ``CreateContainerConfigError`` would, unless the reference is optional), its volumes
(the namespace's workflow-data folder, Secret volumes as files) mounted where the pod expects
them. Two runners:

* ``process``: the container's entrypoint from the test virtualenv, as a child process. Mount
  paths cannot be made without a container, so environment values that name a path below a
  mount point are rewritten to the folder standing in for the mount (the only difference).
* ``image``: the image built by ``make kaapana-images`` (buildah), its entrypoint run inside it
  by ``buildah run --isolation chroot`` with the folders bind-mounted at the real paths.

``cluster`` in the harness config stands in for cluster DNS: service addresses a pod would
compute (the DICOM receiver) are given as environment overrides. Every pod is recorded in
``pods.jsonl`` (namespace, image, environment names, labels, resources, exit status).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from kaapana.harness import config, volume

CONTAINER_ERROR = 125     # what `docker run` answers when a container cannot be created


def run_pod(*, task: str, image: str, namespace: str, env: dict[str, str], secrets: list,
            volumes: list, mounts: list, labels: dict[str, str],
            resources: dict[str, Any]) -> int:
    cfg = config()
    record: dict[str, Any] = {"task": task, "image": image, "namespace": namespace,
                              "labels": labels, "resources": resources}
    pod_env = dict(env)
    missing = []
    namespace_secrets = cfg["secrets"].get(namespace, {})
    for var in secrets:
        if var.value is not None:
            pod_env[var.name] = var.value
            continue
        ref = var.value_from.secret_key_ref
        value = namespace_secrets.get(ref.name, {}).get(ref.key)
        if value is None:
            if not ref.optional:
                missing.append(f"{ref.name}/{ref.key}")
            continue
        pod_env[var.name] = value
    if missing:
        record.update(exit=CONTAINER_ERROR, error=f"CreateContainerConfigError: {missing}")
        _record(cfg, record)
        return CONTAINER_ERROR
    pod_env.update(cfg.get("cluster", {}))
    with tempfile.TemporaryDirectory(prefix="srcohort-pod-") as pod_root:
        binds = _mounts(namespace, volumes, mounts, Path(pod_root), namespace_secrets)
        runner = cfg.get("runner", {"mode": "process"})
        if runner["mode"] == "image":
            done = _run_in_image(runner, image, pod_env, binds)
        else:
            done = _run_process(runner, pod_env, binds)
    record.update(exit=done.returncode, env=sorted(pod_env), stderr_tail=done.stderr[-3000:])
    _record(cfg, record)
    print(done.stdout[-4000:])
    print(done.stderr[-4000:])
    return done.returncode


def _mounts(namespace: str, volumes: list, mounts: list, pod_root: Path,
            namespace_secrets: dict[str, dict[str, str]]) -> dict[str, Path]:
    """mount path -> host folder for each of the pod's volume mounts."""
    by_name = {v.name: v for v in volumes}
    binds = {}
    for mount in mounts:
        source = by_name[mount.name]
        if source.persistent_volume_claim is not None:
            host = volume(namespace)
        elif source.secret is not None:
            host = pod_root / mount.name
            host.mkdir()
            for key, value in namespace_secrets.get(source.secret.secret_name, {}).items():
                (host / key).write_text(value, "utf-8")
        else:
            continue
        host.mkdir(parents=True, exist_ok=True)
        binds[mount.mount_path] = host
    return binds


def _run_process(runner: dict[str, Any], env: dict[str, str], binds: dict[str, Path]
                 ) -> subprocess.CompletedProcess:
    rewritten = {}
    for key, value in env.items():
        for mount_path, host in sorted(binds.items(), key=lambda b: -len(b[0])):
            if value == mount_path or value.startswith(mount_path + "/"):
                value = str(host) + value[len(mount_path):]
                break
        rewritten[key] = value
    rewritten.update({"PATH": runner["path"], "HOME": tempfile.gettempdir(), "LANG": "C.UTF-8"})
    return subprocess.run(runner["command"], env=rewritten, capture_output=True, text=True,
                          timeout=1800)


def _run_in_image(runner: dict[str, Any], image: str, env: dict[str, str],
                  binds: dict[str, Path]) -> subprocess.CompletedProcess:
    storage = ["--storage-driver", "vfs", "--root", runner["root"], "--runroot", runner["runroot"]]
    buildah = shutil.which("buildah") or "buildah"
    local_image = runner["images"].get(image, image)
    container = subprocess.run([buildah, *storage, "from", "--pull-never", local_image],
                               capture_output=True, text=True, check=True).stdout.strip()
    try:
        entry = json.loads(subprocess.run(
            [buildah, *storage, "inspect", "--type", "container", container],
            capture_output=True, text=True, check=True).stdout)["OCIv1"]["config"]["Entrypoint"]
        command = [buildah, *storage, "run", "--isolation", "chroot", "--network", "host"]
        for mount_path, host in binds.items():
            command += ["-v", f"{host}:{mount_path}"]
        for key, value in env.items():
            command += ["--env", f"{key}={value}"]
        return subprocess.run([*command, container, "--", *entry], capture_output=True,
                              text=True, timeout=3600)
    finally:
        subprocess.run([buildah, *storage, "rm", container], capture_output=True)


def _record(cfg: dict[str, Any], record: dict[str, Any]) -> None:
    with open(cfg["pods"], "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
