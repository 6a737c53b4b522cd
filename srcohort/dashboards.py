"""OpenSearch Dashboards saved objects for the patient index, and the queries their panels send.

The panels in ``dashboards/srcohort.ndjson`` are Vega visualizations because Dashboards'
standard visualizations cannot aggregate nested fields. The objects name the patient index in the
index pattern's title and in every Vega spec's ``url.index``, and that index depends on the
deployment's prefix (``<prefix>patients``, by default ``srcohort-patients``), so the name is substituted here when the
objects are imported instead of being baked into the file.

``vega_queries`` returns the request bodies exactly as the panels send them on a dashboard with
an empty query bar, so tests and scripts can compare a chart's numbers with the cohort engine
without a browser.

    python -m srcohort.dashboards --prefix srcohort-demo- > srcohort-demo.ndjson   # then import
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.index.opensearch import index_names

DASHBOARDS_DIR = Path(os.environ.get("SRCOHORT_DASHBOARDS",
                                     Path(__file__).resolve().parents[1] / "dashboards"))
NDJSON = DASHBOARDS_DIR / "srcohort.ndjson"
DEFAULT_INDEX = index_names(DEFAULT_PREFIX)[1]
SPEC_WIDTH = 100

# Vega's placeholders for the dashboard's query and filters, and the bool clause each stands
# for (OpenSearch Dashboards, vis_type_vega opensearch_query_parser.ts). The query bar (DQL)
# and positive filter pills end up in ``filter``, negated pills in ``must_not``, Lucene
# queries in ``must``; a panel must name all three to honour everything a user can set.
CONTEXT_CLAUSES = {
    "%dashboard_context-must_clause%": "must",
    "%dashboard_context-filter_clause%": "filter",
    "%dashboard_context-must_not_clause%": "must_not",
}
# What Dashboards injects with an empty query bar and no filters: an empty DQL query compiles
# to match_all in ``filter``; the other clauses are empty, so their placeholders disappear.
EMPTY_CONTEXT: Mapping[str, list] = {"must": [], "filter": [{"match_all": {}}], "must_not": []}
_MAGIC = re.compile(r"%[a-z_-]+%")
_NOT_IN_INDEX_NAMES = re.compile(r'[\\/?"<>| ,#A-Z]')

SavedObject = dict[str, Any]


def compact(value: Any) -> str:
    """JSON inside a saved object's attributes (visState, panelsJSON): one line, key order kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def spec_text(spec: Mapping[str, Any]) -> str:
    """A Vega spec as stored in visState and in dashboards/vega/: strict JSON (valid HJSON, and
    ``json`` reads it), indented, with every container that fits kept on one line, so the
    nested aggregations stay readable in the files and in Dashboards' Vega editor."""
    return _pretty(spec, 0, SPEC_WIDTH) + "\n"


def _pretty(value: Any, indent: int, room: int) -> str:
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if len(flat) <= room or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + 2
    if isinstance(value, dict):
        keys = [json.dumps(k, ensure_ascii=False) + ": " for k in value]
        lines = [key + _pretty(v, inner, SPEC_WIDTH - inner - len(key) - 1)
                 for key, v in zip(keys, value.values())]
        brackets = "{}"
    else:
        lines = [_pretty(v, inner, SPEC_WIDTH - inner - 1) for v in value]
        brackets = "[]"
    body = ",\n".join(" " * inner + line for line in lines)
    return f"{brackets[0]}\n{body}\n{' ' * indent}{brackets[1]}"


def ndjson(objects: Iterable[SavedObject]) -> str:
    """The import file: one object a line, keys sorted, so equal objects give equal bytes."""
    return "".join(json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                   + "\n" for obj in objects)


def load_objects(path: Path = NDJSON) -> list[SavedObject]:
    """The saved objects of ``path`` in file (= import) order."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def vega_spec(obj: SavedObject) -> dict[str, Any] | None:
    """The parsed Vega spec of a visualization object, ``None`` for anything else."""
    if obj.get("type") != "visualization":
        return None
    state = json.loads(obj["attributes"]["visState"])
    if state.get("type") != "vega":
        return None
    return json.loads(state["params"]["spec"])


def saved_objects(index: str = DEFAULT_INDEX, path: Path = NDJSON) -> str:
    """The import file with the patient index named ``index`` (e.g. ``srcohort-demo-patients``).

    ``index`` may be a pattern such as ``*srcohort-patients`` to chart several prefixes at once.
    """
    return ndjson(_objects(index, path))


def vega_queries(index: str = DEFAULT_INDEX, *, context: Mapping[str, list] | None = None,
                 path: Path = NDJSON) -> dict[str, dict[str, Any]]:
    """Visualization id -> the search body its Vega panel sends, ready for ``client.search``.

    ``context`` plays the dashboard's query and filters as a bool clause map (``must``,
    ``filter``, ``must_not``); by default an empty query bar. One OpenSearch request per panel.
    """
    queries: dict[str, dict[str, Any]] = {}
    for obj in _objects(index, path):
        spec = vega_spec(obj)
        if spec is None:
            continue
        urls = [d["url"] for d in _data(spec) if isinstance(d.get("url"), dict)]
        if len(urls) != 1:
            raise ValueError(f"{obj['id']}: expected one OpenSearch data source, got {len(urls)}")
        body = copy.deepcopy(urls[0]["body"])
        if "query" in body:
            body["query"] = _inject(body["query"], EMPTY_CONTEXT if context is None else context)
        leftover = _MAGIC.findall(json.dumps(body))
        if leftover:
            raise ValueError(f"{obj['id']}: unsupported Vega placeholders {sorted(set(leftover))}")
        queries[obj["id"]] = body
    return queries


def _objects(index: str, path: Path) -> list[SavedObject]:
    if not index or _NOT_IN_INDEX_NAMES.search(index) or index[0] in "-_+":
        raise ValueError(f"{index!r} is not an OpenSearch index name or pattern")
    return [_with_index(obj, index) for obj in load_objects(path)]


def _data(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    data = spec.get("data", [])
    return [data] if isinstance(data, dict) else list(data)


def _with_index(obj: SavedObject, index: str) -> SavedObject:
    obj = copy.deepcopy(obj)
    if obj["type"] == "index-pattern":
        obj["attributes"]["title"] = index
    spec = vega_spec(obj)
    if spec is not None:
        for data in _data(spec):
            if isinstance(data.get("url"), dict):
                data["url"]["index"] = index
        state = json.loads(obj["attributes"]["visState"])
        state["params"]["spec"] = spec_text(spec)
        obj["attributes"]["visState"] = compact(state)
    return obj


def _inject(node: Any, context: Mapping[str, list]) -> Any:
    """Replace the placeholders as Dashboards does: each array element naming a clause becomes
    that clause's queries (none: the element is dropped)."""
    if isinstance(node, dict):
        return {key: _inject(value, context) for key, value in node.items()}
    if isinstance(node, list):
        out: list[Any] = []
        for item in node:
            if isinstance(item, str) and item in CONTEXT_CLAUSES:
                out.extend(copy.deepcopy(context.get(CONTEXT_CLAUSES[item], [])))
            else:
                out.append(_inject(item, context))
        return out
    return node


def main(argv: Sequence[str] | None = None) -> int:
    """Print the import file for one deployment's patient index."""
    parser = argparse.ArgumentParser(prog="python -m srcohort.dashboards",
                                     description=main.__doc__)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--prefix", default=DEFAULT_PREFIX, help="index name prefix the indexing "
                       f"used (the index is <prefix>patients; default {DEFAULT_PREFIX})")
    which.add_argument("--index", default=None, help="the index name or pattern itself")
    args = parser.parse_args(argv)
    try:
        text = saved_objects(args.index or index_names(args.prefix)[1])
    except ValueError as exc:
        parser.error(str(exc))
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
