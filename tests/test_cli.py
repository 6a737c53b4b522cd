"""The command line: every subcommand has --help; errors are one clear line and exit code 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from srcohort.cli import build_parser, main

SUBCOMMANDS = ["demo", "demo-data", "convert", "validate", "index", "cohort", "federated",
               "export", "audit", "serve", "opensearch"]


def _srcohort(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "srcohort", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("command", [[]] + [[c] for c in SUBCOMMANDS])
def test_help(command: list[str]) -> None:
    result = _srcohort(*command, "--help")
    assert result.returncode == 0 and "usage: srcohort" in result.stdout


def test_parser_knows_every_subcommand() -> None:
    actions = [a for a in build_parser()._actions if a.dest == "command"]
    assert sorted(actions[0].choices) == sorted(SUBCOMMANDS)


def test_explain_prints_the_query(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cohort", "explain", "tavi-self-expanding"]) == 0
    query = json.loads(capsys.readouterr().out)["query"]
    assert len(query["bool"]["filter"]) == 3


def test_invalid_cohort_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npatients: {annotation: {code: []}}\n")
    result = _srcohort("cohort", "explain", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: patients.annotation: unknown key(s) code (known: at_least, codes, dates, fields, "
        "kind, numbers, segments, template, texts, title, within)"]


def test_convert_with_a_broken_mapping_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "mapping.yaml").write_text("tables: {}\n")
    result = _srcohort("convert", str(tmp_path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "mapping.yaml" in result.stderr


def test_demo_data_writes_a_consortium(tmp_path: Path) -> None:
    result = _srcohort("demo-data", "--sites", "2", "--patients-per-site", "2", "--out",
                       str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("site-*")) == ["site-01", "site-02"]


def test_convert_exits_1_when_nothing_converts_and_3_when_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "images").mkdir(parents=True)
    (site / "images" / "a.dcm").write_bytes(b"not dicom")
    (site / "mapping.yaml").write_text("site: s\n")
    result = _srcohort("convert", str(site), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "refused images/a.dcm: not readable as DICOM" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "error: no input could be converted"
    assert all(line.startswith("{") for line in result.stderr.strip().splitlines()[:-1])


def test_validate_writes_nothing_and_reports_like_convert(small_consortium: Path,
                                                          tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(small_consortium / "site-01", site)
    before = sorted(p for p in tmp_path.rglob("*"))
    result = _srcohort("validate", str(site), "--strict", "--show", "100")
    assert result.returncode == 3, result.stderr           # the demo site has faults
    assert sorted(p for p in tmp_path.rglob("*")) == before
    converted = _srcohort("convert", str(site), "--out", str(tmp_path / "out"), "--show", "100")
    assert converted.returncode == 0
    assert result.stdout.splitlines()[1:] == converted.stdout.splitlines()[1:]


def test_a_mistyped_prefix_is_one_line(tmp_path: Path) -> None:
    result = _srcohort("cohort", "count", "tavi-self-expanding", "--prefix", "Srcohort_X")
    assert result.returncode == 2
    assert "index prefix 'Srcohort_X'" in result.stderr and "Traceback" not in result.stderr


def test_serve_serves_the_page_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """``srcohort serve`` as a person starts it: the page answers on the printed address, and
    Ctrl-C (SIGINT) ends it with exit code 0 and its port closed."""
    import signal
    import urllib.request
    process = subprocess.Popen(
        [sys.executable, "-m", "srcohort", "serve", "--port", "0", "--url", "http://127.0.0.1:9",
         "--cohorts", str(tmp_path / "c"), "--out", str(tmp_path / "o")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("cohort builder on http://127.0.0.1:"), line
        url = line.split()[3]
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
