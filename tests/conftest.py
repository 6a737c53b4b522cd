"""Shared fixtures: one OpenSearch per session (plugin), one small synthetic consortium."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.plugin_opensearch", "tests.kaapana_harness"]


@pytest.fixture(scope="session")
def small_consortium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three sites x six patients: every profile quirk and injected fault within seconds."""
    from srcohort.demo.consortium import generate_consortium
    out = tmp_path_factory.mktemp("consortium")
    generate_consortium(out, sites=3, patients_per_site=6, seed=11)
    return out


@pytest.fixture(scope="session")
def converted(small_consortium: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small consortium converted site by site (``<root>/<site>/dicom``)."""
    from srcohort.convert.site import convert_site
    root = tmp_path_factory.mktemp("converted")
    for site_dir in sorted(small_consortium.glob("site-*")):
        convert_site(site_dir, root / site_dir.name, workers=2)
    return root
