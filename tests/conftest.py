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


@pytest.fixture(scope="session")
def builder_consortium(tmp_path_factory: pytest.TempPathFactory, opensearch_client):
    """Three sites x 15 patients, each site converted and indexed under its own prefix, as the
    demo keeps them: what the cohort builder's tests count (``(truth dir, site -> prefix)``).
    Large enough that "one SEG with both ventricles and an LBBB ECG before the TAVI" is met."""
    import uuid

    from srcohort.convert.site import convert_site
    from srcohort.demo.consortium import generate_consortium
    from srcohort.index.indexer import index_directory
    root = tmp_path_factory.mktemp("builder")
    generate_consortium(root / "consortium", sites=3, patients_per_site=15, seed=3)
    template = f"b-{uuid.uuid4().hex[:8]}-{{site}}-"
    prefixes = {}
    for site_dir in sorted((root / "consortium").glob("site-*")):
        report = convert_site(site_dir, root / "converted" / site_dir.name, workers=2)
        prefixes[report.site] = template.format(site=report.site)
        index_directory(opensearch_client, root / "converted" / site_dir.name / "dicom",
                        site=report.site, prefix=prefixes[report.site])
    yield root, prefixes
    opensearch_client.indices.delete(index=template.format(site="*") + "*",
                                     ignore_unavailable=True)


@pytest.fixture
def builder_server(builder_consortium, opensearch_client, tmp_path: Path):
    """``srcohort serve``'s app and server over ``builder_consortium``, in this process, with
    an export secret, on a free port; its cohorts and outputs in ``tmp_path``."""
    from srcohort.builder.actions import standalone_actions
    from srcohort.builder.app import BuilderApp
    from srcohort.builder.deployment import Sites, standalone
    from srcohort.builder.server import BuilderServer
    _, prefixes = builder_consortium
    deployment = standalone(opensearch_client, Sites(prefixes),
                            actions=standalone_actions(b"builder-test-secret"),
                            cohorts_dir=tmp_path / "cohorts", out_dir=tmp_path / "out")
    server = BuilderServer(BuilderApp(deployment), "127.0.0.1", 0)
    server.serve_in_thread()
    yield server
    server.shutdown()
    server.server_close()
