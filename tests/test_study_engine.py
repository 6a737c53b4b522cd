"""A study is data: the engine holds no word of any study, studies ship inside the package, and
a broken declaration is refused with its file and line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import srcohort
from srcohort.study.load import StudyError, load_study, packaged_studies, study_folder

ENGINE = ("sources", "convert", "sr", "index", "cohort", "federated", "export", "seg",
          "waveform", "study", "audit", "kaapana")
# Words of the studies srcohort ships (their procedures, devices, labels, landmarks): none may
# appear in the engine's code. Anatomy (valve, lung) is the engine's generic vocabulary.
STUDY_WORDS = re.compile(r"tavi|tavr|pacemaker|prosthes|sapien|evolut|acurate|portico|myval|"
                         r"\blcc\b|\brcc\b|\bncc\b|annulus|hinge|agatston|transcatheter|"
                         r"lung.?nodule|lung.?cancer|years.?smoked|screen_date", re.IGNORECASE)


def _study_words(paths: list[Path], root: Path) -> list[str]:
    return [f"{path.relative_to(root)}:{n}: {line.strip()}" for path in paths
            for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
            if STUDY_WORDS.search(line)]


def test_the_engine_holds_no_word_of_any_study() -> None:
    root = Path(srcohort.__file__).parent
    engine = [path for package in ENGINE for path in sorted((root / package).rglob("*.py"))]
    assert engine and _study_words(engine, root) == []


def test_the_kaapana_workflows_hold_no_word_of_any_study() -> None:
    """The DAGs and operators offer the installed study's cohorts (settings.json), not a
    study's names of their own."""
    files = Path(__file__).resolve().parents[1] / "extension" / "docker" / "files"
    dags = sorted(files.rglob("*.py"))
    assert dags and _study_words(dags, files) == []


def test_studies_are_package_data_and_hold_no_code() -> None:
    studies = packaged_studies()
    assert {"tavi", "lung-nodules"} <= studies.keys()
    for name, folder in studies.items():
        files = [p for p in Path(str(folder)).rglob("*") if p.is_file()]
        assert files and all(p.suffix == ".yaml" for p in files), name
        assert load_study(name).templates


def test_a_missing_study_is_an_error_not_an_empty_list(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="neither a shipped study"):
        load_study(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("change, message", [
    (("vocabulary: valve_model", "vocabulary: valve_modle"), "unknown vocabulary 'valve_modle'"),
    (("from: registry.diabetes", "from: registry.diabetis"), "unknown source 'registry.diabetis'"),
    (("value_type: NUM, filter: quantitative, field: prosthesis_size",
      "value_type: CODE, filter: quantitative, field: prosthesis_size"),
     "cannot be written from registry.prosthesis_size"),
])
def test_a_broken_template_is_refused_naming_file_and_node(tmp_path: Path,
                                                           change: tuple[str, str],
                                                           message: str) -> None:
    folder = Path(shutil.copytree(str(study_folder("tavi")), tmp_path / "study"))
    history = folder / "templates" / "history.yaml"
    text = history.read_text("utf-8")
    assert change[0] in text
    history.write_text(text.replace(change[0], change[1], 1), "utf-8")
    with pytest.raises(StudyError, match=re.escape(message)) as raised:
        load_study(str(folder))
    assert "history.yaml" in str(raised.value)


def test_a_label_on_an_undeclared_field_is_refused(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(str(study_folder("tavi")), tmp_path / "study"))
    study = folder / "study.yaml"
    study.write_text(study.read_text("utf-8").replace("field: pacemaker,", "field: pacemakr,"),
                     "utf-8")
    with pytest.raises(StudyError, match=r"study.yaml:\d+: label: .*no field 'pacemakr'"):
        load_study(str(folder))


def test_codes_are_checked_against_their_scheme(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(str(study_folder("tavi")), tmp_path / "study"))
    outcome = folder / "templates" / "procedure-outcome.yaml"
    outcome.write_text(outcome.read_text("utf-8").replace('"DCM:121058"', '"DCM:999999"', 1),
                       "utf-8")
    with pytest.raises(StudyError, match=r"procedure-outcome.yaml:\d+: .*DCM:999999 is not a "
                                         r"DICOM code"):
        load_study(str(folder))
