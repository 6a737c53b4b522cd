"""The convert's memory does not grow with the site: no process keeps a site's CT headers.

A site has 100,000 files and more; the scan keeps of each only its path, digest and UIDs, and
each patient's CT headers are read when the patient is built (``convert.patients.with_ct``).
Measured here with tracemalloc in one process (every allocation of the conversion, the
report included), on two sites of the benchmark's synthetic CTs that differ only in their
number of patients.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tracemalloc
from pathlib import Path

import pytest

from srcohort.convert.patients import with_ct
from srcohort.convert.site import collect_patients, convert_site
from srcohort.convert.report import ConversionReport, Quarantine
from srcohort.sources.images import scan_series
from srcohort.sources.mapping import load_mapping
from tests.scripts import benchmark

clinical_site = benchmark("clinical_site")
SIZE = clinical_site.Size(64, 24)
KB_PER_FILE = 10       # measured: 4.1 now (path, digest, UIDs, report line), 38 with headers


def _peak_kb(site: Path, out: Path) -> float:
    """Peak traced memory (kB) of converting ``site`` in this process."""
    tracemalloc.start()
    try:
        convert_site(site, out, workers=1)
        return tracemalloc.get_traced_memory()[1] / 1024
    finally:
        tracemalloc.stop()
        shutil.rmtree(out)


def test_peak_memory_does_not_grow_with_the_number_of_files(tmp_path: Path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    clinical_site.write_site(small, "site-small", SIZE, 2)
    clinical_site.write_site(large, "site-large", SIZE, 10)
    files = [sum(1 for _ in (site / "images").rglob("*.dcm")) for site in (small, large)]
    convert_site(small, tmp_path / "warm-up", workers=1)   # lazy imports, highdicom's tables
    peaks = [_peak_kb(site, tmp_path / "out") for site in (small, large)]
    per_file = (peaks[1] - peaks[0]) / (files[1] - files[0])
    assert per_file < KB_PER_FILE, (peaks, files)


def test_a_ct_file_changed_after_the_scan_is_named(tmp_path: Path) -> None:
    site = tmp_path / "site"
    clinical_site.write_site(site, "site-1", SIZE, 1)
    mapping = load_mapping(site)
    series, _, _ = scan_series(mapping.images, site, workers=1)
    patients, _ = collect_patients(mapping, series, Quarantine(
        None, site, ConversionReport(mapping.site)), dt.date.today())
    [inputs] = patients.values()
    assert inputs.ct is not None and not inputs.ct_headers
    assert len(with_ct(inputs).ct_headers) == SIZE.slices
    first, second = inputs.ct.files[:2]
    shutil.copyfile(second, first)            # another instance now under the first's path
    with pytest.raises(ValueError, match=f"{first}: now holds SOP Instance UID"):
        with_ct(inputs)
