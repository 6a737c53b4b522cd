"""Every hostile input of the catalogue (tests/hostile/cases.py) is refused with a clear reason
or read correctly: no crash, no hang, no silent acceptance, no valid data lost, no leak."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.cases import CASES
from tests.hostile.judge import Case, base_site, judge


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set]:
    return base_site(tmp_path_factory.mktemp("hostile-base"))


def test_the_base_site_converts_every_kind_of_input(base: tuple[Path, set]) -> None:
    _, baseline = base
    assert {Path(rel).parts[0] for rel, _ in baseline} >= {"images", "ecg", "tables",
                                                            "labelmaps"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, base: tuple[Path, set], tmp_path: Path) -> None:
    site, baseline = base
    result = judge(case, site, tmp_path, baseline)
    assert result.verdict == "clean", f"{result.verdict}: {result.detail}"
