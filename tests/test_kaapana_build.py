"""The chart, the images and the operators against Kaapana 0.6.0's build rules.

Each check restates a rule of Kaapana's build scripts or installer (file and function named in
the test); Kaapana's code is not copied, the rule is written out and applied to srcohort's files.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CHART_FILE = REPO / "extension" / "srcohort-workflow" / "Chart.yaml"
DAG_FILES = REPO / "extension" / "docker" / "files"
PLATFORM_VERSION = "0.6.0"


def _dockerfiles() -> list[Path]:
    """What container_helper.collect_containers would collect from this repository placed in
    Kaapana's tree (``rglob("Dockerfile*")``), minus what is not srcohort's."""
    skip = (".venv", ".tools", ".git", "node_modules")
    return sorted(p for p in REPO.rglob("Dockerfile*")
                  if not any(part in skip for part in p.relative_to(REPO).parts))


def _labels(dockerfile: Path) -> dict[str, str]:
    """container.py Container.from_dockerfile: ``LABEL IMAGE=``/``VERSION=`` lines."""
    labels = {}
    for line in dockerfile.read_text("utf-8").splitlines():
        line = line.strip()
        for key in ("REGISTRY", "IMAGE", "VERSION", "BUILD_IGNORE"):
            if line.startswith(f"LABEL {key}="):
                labels[key] = line.split("=", 1)[1].strip().strip('"').strip("'")
    return labels


def test_chart_version_resolves_like_its_dependency() -> None:
    """helm_chart.py ``_resolve_repo_version`` keeps a version other than 0.0.0 and takes the
    platform (git) version for 0.0.0; ``_collect_chart_dependencies`` expects every dependency
    of version 0.0.0 at that same version, and dag-installer-chart (0.0.0) resolves to the
    platform version. So only 0.0.0 avoids "Version mismatch"."""
    chart = yaml.safe_load(CHART_FILE.read_text("utf-8"))
    resolved = PLATFORM_VERSION if chart["version"] == "0.0.0" else chart["version"]
    requirements = yaml.safe_load((CHART_FILE.parent / "requirements.yaml").read_text("utf-8"))
    expected = {(d["name"], resolved if d.get("version", "0.0.0") == "0.0.0" else d["version"])
                for d in requirements["dependencies"]}
    available = {("dag-installer-chart", PLATFORM_VERSION)}
    assert expected <= available
    # is_dag: the first dependency is the DAG installer, which makes it a kaapanaworkflow
    assert requirements["dependencies"][0]["name"] == "dag-installer-chart"


def test_every_dockerfile_builds_in_its_own_folder() -> None:
    """container.py ``Container.build`` runs the build with ``cwd=dockerfile.parent`` and
    context ``.``: every COPY source lies in that folder and survives its .dockerignore; each
    Dockerfile names its image (an unnamed one is an ERROR issue)."""
    found = _dockerfiles()
    assert [p.relative_to(REPO).as_posix() for p in found] == [
        "Dockerfile", "extension/docker/Dockerfile"]
    for dockerfile in found:
        assert _labels(dockerfile).get("IMAGE"), dockerfile
        context = dockerfile.parent
        ignore = (context / ".dockerignore").read_text("utf-8").splitlines() \
            if (context / ".dockerignore").exists() else []
        for sources in re.findall(r"^COPY (.+) \S+$", dockerfile.read_text("utf-8"), re.M):
            for source in sources.split():
                candidates = [context] if source in (".", "./") else context.glob(source)
                matches = [p for p in candidates if _kept(p, context, ignore)]
                assert matches, f"{dockerfile}: COPY {source} finds nothing in {context}"


def _kept(path: Path, context: Path, ignore: list[str]) -> bool:
    """Whether .dockerignore (last matching pattern wins, ``!`` re-includes) keeps ``path``."""
    rel = path.relative_to(context).as_posix() if path != context else "."
    if rel == ".":
        return True
    kept = True
    for pattern in (p.strip() for p in ignore if p.strip() and not p.startswith("#")):
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(rel, pattern) or rel.startswith(pattern + "/"):
            kept = negate
    return kept


def test_processing_image_is_found_by_the_operator_scan() -> None:
    """helm_chart.py ``collect_operator_containers``: files below the chart's grandparent
    folder whose name contains "operator", lines matching ``IMAGE_PATTERN``; the image must be
    one the repository builds."""
    pattern = re.compile(r'^\s*-?\s*image\s*[:=]\s*f?["\']\{DEFAULT_REGISTRY\}/'
                         r'(?P<image_name>[^:]+):(?P<version>[^"\']+)["\']')
    found = {}
    for path in CHART_FILE.parent.parent.glob("**/*.py"):
        if "operator" in path.name.lower():
            for line in path.read_text("utf-8").splitlines():
                if (match := pattern.search(line)):
                    found[match["image_name"]] = match["version"]
    assert found == {"srcohort": "{KAAPANA_BUILD_VERSION}"}
    built = {_labels(p)["IMAGE"] for p in _dockerfiles()}
    assert set(found) <= built


def test_processing_image_is_prepulled_by_the_base_installer() -> None:
    """services/utils/base-installer/files/run.py ``get_images``: every ``*.py`` below
    /kaapana/tmp (what the DAG image copies there) is searched with ``REGEX``."""
    regex = (r"image=(\"|\'|f\"|f\')([\w\-\\{\}.]+)(\/[\w\-\.]+|)\/([\w\-\.]+):"
             r"([\w\-\\{\}\.]+)(\"|\'|f\"|f\')")
    images = {match[3] for path in DAG_FILES.rglob("*.py")
              for match in re.findall(regex, path.read_text("utf-8"))}
    assert images == {"srcohort"}


def test_chart_templates_name_images_kaapana_can_resolve() -> None:
    """helm_chart.py ``extract_images_from_templates``: ``image:`` lines of the templates, with
    ``.Values.global.registry_url`` / ``kaapana_build_version`` replaced; lines naming
    ``.Values.global.image`` fall back to values.yaml (the DAG image)."""
    images = set()
    for template in (CHART_FILE.parent / "templates").glob("*.yaml"):
        for line in template.read_text("utf-8").splitlines():
            match = re.match(r"^\s*-?\s*image:\s*(.+)$", line)
            if not match:
                continue
            value = match.group(1).strip().translate(str.maketrans("", "", "\"'`$ "))
            if ".Values.global.image" in value:
                continue
            tag = value.replace("{", "").replace("}", "").replace(
                ".Values.global.registry_url", "registry").replace(
                ".Values.global.kaapana_build_version", PLATFORM_VERSION)
            images.add(tag)
    assert images == {f"registry/srcohort:{PLATFORM_VERSION}"}


def test_dag_image_copies_what_base_installer_accepts() -> None:
    """base-installer run.py ``handle_files`` copies /kaapana/tmp/<dir>/... only for the
    folders plugins, dags, mounted_scripts, extensions; DAG files and the trigger rule land in
    dags/ (LocalAutoTriggerOperator's glob is one folder deep)."""
    dockerfile = (REPO / "extension" / "docker" / "Dockerfile").read_text("utf-8")
    targets = re.findall(r"^COPY .+ (\S+)$", dockerfile, re.M)
    assert targets and all(t.startswith("/kaapana/tmp/dags/") for t in targets)
    copied = re.findall(r"^COPY (.+) /kaapana/tmp/dags/$", dockerfile, re.M)[0].split()
    assert "files/srcohort_trigger_rule.json" in copied
    assert {p.name for p in DAG_FILES.glob("dag_*.py")} == {
        p.name for source in copied for p in DAG_FILES.parent.glob(source)
        if p.name.startswith("dag_")}
