"""The package works installed as users install it: a wheel, not an editable checkout.

Studies, standard templates and the de-identification table are package data read with
``importlib.resources``; a wheel that lost them would convert every SR as "SR other". The wheel
is built from this checkout, installed into a fresh virtual environment (not editable), and
converts and validates a site of each shipped study from there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(python of a fresh venv with the wheel installed, environment to run it in)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(work / "dist"), str(REPO)], check=True, capture_output=True)
    (wheel,) = (work / "dist").glob("srcohort-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "srcohort/studies/tavi/study.yaml" in names
    assert "srcohort/studies/lung-nodules/templates/nodules.yaml" in names
    for static in ("index.html", "builder.js", "builder.css"):       # the builder's page
        assert f"srcohort/builder/static/{static}" in names
    assert "srcohort/templates/tid3700-ecg-report.yaml" in names
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(work / "venv")],
                   check=True)
    python = work / "venv" / "bin" / "python"
    target = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                  "get_paths()['purelib'])"], check=True, capture_output=True,
                                 text=True).stdout.strip())
    with zipfile.ZipFile(wheel) as archive:          # what pip does for a pure wheel
        archive.extractall(target)
    # The dependencies come from this environment's site-packages on PYTHONPATH: entries there
    # are not site directories, so its editable finder (.pth) is not loaded.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    env.pop("SRCOHORT_STUDY", None)
    return python, env


def _run(python: Path, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Run the fresh venv's python away from the checkout (the working directory is on
    ``sys.path``, and the checkout must not be what is imported)."""
    return subprocess.run([str(python), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_the_wheel_is_what_runs(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    python, env = installed
    where = _run(python, "-c", "import srcohort; print(srcohort.__file__)", env=env,
                 cwd=tmp_path).stdout
    assert str(REPO) not in where and str(python.parents[1]) in where


@pytest.mark.parametrize("study", ["tavi", "lung-nodules"])
def test_the_installed_wheel_converts_a_site(installed: tuple[Path, dict[str, str]],
                                             tmp_path: Path, study: str) -> None:
    python, env = installed

    def srcohort(*args: str) -> subprocess.CompletedProcess:
        return _run(python, "-m", "srcohort", "--study", study, *args, env=env, cwd=tmp_path)
    made = srcohort("demo-data", "--sites", "1", "--patients-per-site", "4", "--out",
                    str(tmp_path / "sites"))
    assert made.returncode == 0, made.stderr
    converted = srcohort("convert", str(tmp_path / "sites" / "site-01"), "--out",
                         str(tmp_path / "out"), "--json")
    assert converted.returncode == 0, converted.stderr
    report = json.loads(converted.stdout)
    profiles = {o["outputs"][0] for o in report["outcomes"] if o["outcome"] == "converted"}
    assert profiles
    checked = _run(python, "-c", "import json, sys, pydicom; from srcohort.index.content import "
                   "sr_annotation; print(json.dumps(sorted({sr_annotation(d).get('profile') or "
                   "'' for d in map(pydicom.dcmread, sys.argv[1:]) if d.Modality == 'SR'})))",
                   *map(str, (tmp_path / "out" / "dicom").rglob("*.dcm")),
                   env={**env, "SRCOHORT_STUDY": study}, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    recognised = json.loads(checked.stdout)
    assert recognised and "" not in recognised, recognised
