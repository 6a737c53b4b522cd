"""srcohort: site exports -> DICOM/SR -> nested OpenSearch index -> cohorts -> export.

One subcommand per stage of the data flow. Results go to stdout (tables, or JSON with
--json); structured JSON logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from srcohort import __version__, logs
from srcohort.index.mapping import DEFAULT_PREFIX


def _client(args: argparse.Namespace):
    from srcohort.index.connection import connect
    return connect(args.url, ca_certs=args.ca_certs, username=args.username,
                   password=os.environ.get("SRCOHORT_OPENSEARCH_PASSWORD"),
                   token=os.environ.get("SRCOHORT_OPENSEARCH_TOKEN"),
                   client_cert=args.client_cert, client_key=args.client_key)


def _print(data: object, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=1, sort_keys=True, default=str))
    elif isinstance(data, dict):
        width = max((len(str(k)) for k in data), default=0)
        for key, value in data.items():
            print(f"{str(key):<{width}}  {value}")
    else:
        print(data)


def cmd_demo_data(args: argparse.Namespace) -> int:
    from srcohort.demo.consortium import generate_consortium
    truth = generate_consortium(args.out, sites=args.sites, patients_per_site=args.patients_per_site,
                                seed=args.seed)
    print(f"consortium written to {args.out} (ground truth: {truth})")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from srcohort.convert.site import convert_site
    report = convert_site(args.site_dir, args.out, workers=args.workers)
    _print({"site": report.site, **report.counts()}, args.json)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from srcohort.index.indexer import index_directory
    stats = index_directory(_client(args), args.dicom_dir, site=args.site, prefix=args.prefix)
    _print({"series": stats.series, "patients": stats.patients, "errors": len(stats.errors)},
           args.json)
    return 0


def cmd_cohort(args: argparse.Namespace) -> int:
    from srcohort.cohort.library import resolve_cohort
    from srcohort.cohort.query import compile_expr
    from srcohort.cohort.run import count_patients, list_patients
    cohort = resolve_cohort(args.cohort)
    if args.action == "explain":
        _print({"query": compile_expr(cohort.patients)}, True)
    elif args.action == "count":
        _print(count_patients(_client(args), cohort, prefix=args.prefix), args.json)
    else:
        for patient in list_patients(_client(args), cohort, prefix=args.prefix):
            print(f"{patient['site']}\t{patient['patient_id']}\t{','.join(patient['modalities'])}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from srcohort.cohort.library import resolve_cohort
    from srcohort.export.exporter import export_cohort
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        print(f"error: set the pseudonymisation secret in ${args.secret_env}", file=sys.stderr)
        return 2
    result = export_cohort(_client(args), resolve_cohort(args.cohort), args.out,
                           prefix=args.prefix, secret=secret.encode("utf-8"))
    _print(result.to_dict(), args.json)
    return 0


def cmd_opensearch(args: argparse.Namespace) -> int:
    from srcohort.server import default_server
    server = default_server()
    if args.action == "start":
        print(server.start())
    elif args.action == "stop":
        server.stop()
        print("stopped")
    else:
        _print(server.status(), True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from srcohort.demo.pipeline import run_demo
    return run_demo(args.out, sites=args.sites, patients_per_site=args.patients_per_site,
                    seed=args.seed, keep_server=args.keep_server)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None,
                        help="OpenSearch URL (default: $OPENSEARCH_URL or http://127.0.0.1:9200); "
                             "host:port without a scheme means https")
    parser.add_argument("--ca-certs", default=None, help="CA bundle for https")
    parser.add_argument("--client-cert", default=None, help="client certificate (PEM) for https")
    parser.add_argument("--client-key", default=None,
                        help="the client certificate's key, unless it is in --client-cert")
    parser.add_argument("--username", default=None,
                        help="basic auth user (password from $SRCOHORT_OPENSEARCH_PASSWORD); "
                             "a bearer token is read from $SRCOHORT_OPENSEARCH_TOKEN")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX,
                        help=f"index name prefix, one per deployment ({DEFAULT_PREFIX})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srcohort", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"srcohort {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str
            ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--json", action="store_true", help="print results as JSON")
        return p

    def consortium_options(p: argparse.ArgumentParser, sites: int = 8, patients: int = 20) -> None:
        p.add_argument("--sites", type=int, default=sites, help=f"number of sites ({sites})")
        p.add_argument("--patients-per-site", type=int, default=patients,
                       help=f"patients per site ({patients})")
        p.add_argument("--seed", type=int, default=0, help="random seed (0)")

    p = add("demo", cmd_demo, "run the whole pipeline on a synthetic consortium and a local "
                              "OpenSearch; print per-site cohort counts against the ground truth")
    consortium_options(p)
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder (demo-out)")
    p.add_argument("--keep-server", action="store_true", help="leave OpenSearch running")

    p = add("demo-data", cmd_demo_data, "write a synthetic multi-site TAVI consortium export")
    consortium_options(p)
    p.add_argument("--out", type=Path, required=True, help="output folder")

    p = add("convert", cmd_convert, "convert one site export (mapping.yaml) to DICOM and SR")
    p.add_argument("site_dir", type=Path, help="site export folder with mapping.yaml")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")

    p = add("index", cmd_index, "index a folder of DICOM files into OpenSearch")
    p.add_argument("dicom_dir", type=Path, help="folder with DICOM files (searched recursively)")
    p.add_argument("--site", required=True, help="site id stored with every document")
    _connection_options(p)

    p = add("cohort", cmd_cohort, "count, list or explain a cohort definition")
    p.add_argument("action", choices=["count", "list", "explain"])
    p.add_argument("cohort", help="cohort definition file or saved cohort name")
    _connection_options(p)

    p = add("export", cmd_export, "export a cohort, de-identified, with manifests")
    p.add_argument("cohort", help="cohort definition file or saved cohort name")
    p.add_argument("--out", type=Path, required=True, help="export folder")
    p.add_argument("--secret-env", default="SRCOHORT_SECRET",
                   help="environment variable holding the pseudonymisation secret")
    _connection_options(p)

    p = add("opensearch", cmd_opensearch, "fetch, start, stop or query the local OpenSearch")
    p.add_argument("action", choices=["start", "stop", "status"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    from opensearchpy.exceptions import (AuthenticationException, AuthorizationException,
                                         ConnectionError as OpenSearchUnreachable)

    from srcohort.cohort.definition import CohortError
    from srcohort.index.connection import ConnectionSettingsError
    from srcohort.sources.mapping import MappingError
    try:
        return args.func(args)
    except (CohortError, MappingError, ConnectionSettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AuthenticationException:
        print("error: OpenSearch refused the credentials (401): check --username and "
              "$SRCOHORT_OPENSEARCH_PASSWORD, or $SRCOHORT_OPENSEARCH_TOKEN", file=sys.stderr)
        return 2
    except AuthorizationException as exc:
        print(f"error: OpenSearch denied the request: {exc}", file=sys.stderr)
        return 2
    except OpenSearchUnreachable as exc:
        print(f"error: cannot talk to OpenSearch: {exc.error}", file=sys.stderr)
        return 2
