"""Assemble srcohort.ndjson, the OpenSearch Dashboards import file, from the Vega specs in vega/.

The specs are edited as files (readable, diffable, pasteable into the Vega editor); the import
file wraps them in saved objects, which nobody should edit by hand. The output is
deterministic, and tests/test_dashboards.py fails while the committed file differs from it:

    .venv/bin/python dashboards/build.py          # rewrite srcohort.ndjson
    .venv/bin/python dashboards/build.py --check  # exit 1 if it is out of date

The file names the default index ``srcohort-patients``; ``srcohort.dashboards.saved_objects``
substitutes the deployment's index at import time (see README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from srcohort.dashboards import DEFAULT_INDEX, compact, ndjson, spec_text

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "srcohort.ndjson"
INDEX_PATTERN_ID = "srcohort-patients"
DASHBOARD_ID = "srcohort-tavi-cohorts"
# Newest migration of each type in OpenSearch Dashboards 2.x: objects that claim it are imported
# as they are, instead of being run through every migration since Kibana 6.
MIGRATION = {"index-pattern": "7.6.0", "visualization": "7.10.0", "dashboard": "7.9.3"}
# Dashboards migrates panels whose version is below 7.3 on load; its own 2.x version number
# would qualify, so panels carry the format version they are written in.
PANEL_VERSION = "7.10.0"
EMPTY_SEARCH = compact({"query": {"query": "", "language": "kuery"}, "filter": []})


@dataclass(frozen=True)
class Panel:
    """One Vega visualization and where it sits on the 48-column dashboard grid."""

    id: str
    title: str
    source: str
    x: int
    y: int
    w: int
    h: int


PANELS = (
    Panel("srcohort-pacemaker-outcome-per-site", "Patients per site by pacemaker outcome",
          "pacemaker-outcome-per-site.hjson", 0, 0, 24, 15),
    Panel("srcohort-prosthesis-family-per-site", "Prosthesis family per site",
          "prosthesis-family-per-site.hjson", 24, 0, 24, 15),
    Panel("srcohort-cohort-funnel-per-site", "Cohort funnel per site (tavi-self-expanding)",
          "cohort-funnel-per-site.hjson", 0, 15, 48, 15),
)


def index_pattern() -> dict:
    """The index pattern Dashboards looks up by the Vega specs' ``url.index``: it gives the
    query bar field suggestions; no fields are stored, so they are read from the live mapping."""
    return {"id": INDEX_PATTERN_ID, "type": "index-pattern", "references": [],
            "migrationVersion": {"index-pattern": MIGRATION["index-pattern"]},
            "attributes": {"title": DEFAULT_INDEX, "fields": "[]"}}


def visualization(panel: Panel) -> dict:
    spec = json.loads((HERE / "vega" / panel.source).read_text("utf-8"))
    state = {"title": panel.title, "type": "vega", "aggs": [],
             "params": {"spec": spec_text(spec)}}
    return {"id": panel.id, "type": "visualization", "references": [],
            "migrationVersion": {"visualization": MIGRATION["visualization"]},
            "attributes": {"title": panel.title, "description": spec.get("description", ""),
                           "visState": compact(state), "uiStateJSON": "{}", "version": 1,
                           "kibanaSavedObjectMeta": {"searchSourceJSON": EMPTY_SEARCH}}}


def dashboard() -> dict:
    panels = [{"version": PANEL_VERSION, "panelIndex": str(i + 1),
               "gridData": {"x": p.x, "y": p.y, "w": p.w, "h": p.h, "i": str(i + 1)},
               "embeddableConfig": {}, "panelRefName": f"panel_{i}"}
              for i, p in enumerate(PANELS)]
    return {"id": DASHBOARD_ID, "type": "dashboard",
            "references": [{"name": f"panel_{i}", "type": "visualization", "id": p.id}
                           for i, p in enumerate(PANELS)],
            "migrationVersion": {"dashboard": MIGRATION["dashboard"]},
            "attributes": {
                "title": "srcohort: TAVI cohorts per site",
                "description": "Nested SR content of the srcohort patient index, per site. "
                               "Narrow it with DQL, nested fields included, e.g. "
                               'annotations:{ codes:{ name:"SCT:73211009" and '
                               'value:"SCT:373066001" } }',
                "hits": 0, "panelsJSON": compact(panels),
                "optionsJSON": compact({"useMargins": True, "hidePanelTitles": False}),
                "version": 1, "timeRestore": False,
                "kibanaSavedObjectMeta": {"searchSourceJSON": EMPTY_SEARCH}}}


def build() -> str:
    """The import file, in the order Dashboards resolves references: index pattern,
    visualizations, dashboard."""
    return ndjson([index_pattern(), *(visualization(p) for p in PANELS), dashboard()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only report whether srcohort.ndjson is up to date")
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        current = OUTPUT.read_text("utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, "utf-8")
    print(OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
