"""srcohort: site exports -> DICOM/SR -> nested OpenSearch index -> cohorts -> export.

One subcommand per stage of the data flow. Results go to stdout (tables, or JSON with
--json); structured JSON logs go to stderr.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from srcohort import __version__, logs
from srcohort.audit.actor import ACTIONS
from srcohort.index.mapping import DEFAULT_PREFIX


def _client(args: argparse.Namespace):
    from srcohort.index.connection import connect
    return connect(args.url, ca_certs=args.ca_certs, username=args.username,
                   password=os.environ.get("SRCOHORT_OPENSEARCH_PASSWORD"),
                   token=os.environ.get("SRCOHORT_OPENSEARCH_TOKEN"),
                   client_cert=args.client_cert, client_key=args.client_key)


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


def _print(data: object, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=1, sort_keys=True, default=str))
    else:
        print("\n".join(_lines(data)))


def _lines(data: object, indent: str = "") -> list[str]:
    """``data`` as aligned ``key  value`` lines, nested mappings indented below their key."""
    if not isinstance(data, dict):
        return [f"{indent}{data}"]
    width = max((len(str(k)) for k in data), default=0)
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}")
            lines += _lines(value, indent + "  ")
        elif isinstance(value, (list, tuple)):
            lines.append(f"{indent}{str(key):<{width}}  {', '.join(map(str, value))}")
        else:
            lines.append(f"{indent}{str(key):<{width}}  {value}")
    return lines


def _conversion_summary(report, args: argparse.Namespace, report_path: Path | None) -> int:
    """Print a conversion's (or validation's) counts and refusals; the exit code says whether
    anything usable came out: 1 when inputs existed and none converted, 3 (``--strict``) when
    any input was refused."""
    counts = report.counts()
    if args.json:
        _print(report.to_dict(), True)
    else:
        print(f"{report.site}: " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
              + (f"; report {report_path}" if report_path else ""))
        for outcome in report.quarantined[:args.show]:
            where = f"{outcome.input}:{outcome.line}" if outcome.line else outcome.input
            print(f"  refused {where}: {outcome.reason}")
        if len(report.quarantined) > args.show:
            print(f"  ... {len(report.quarantined) - args.show} more in the report")
    if report.outcomes and not counts.get("converted"):
        print("error: no input could be converted", file=sys.stderr)
        return EXIT_FAILED
    if args.strict and report.quarantined:
        return EXIT_PARTIAL
    return EXIT_OK


def cmd_demo_data(args: argparse.Namespace) -> int:
    from srcohort.demo.consortium import generate_consortium
    from srcohort.demo.generic import generate_study_consortium
    from srcohort.study.load import load_study
    study = load_study()
    generate = generate_consortium if study.name == "tavi" else functools.partial(
        generate_study_consortium, study=study)
    truth = generate(args.out, sites=args.sites, patients_per_site=args.patients_per_site,
                     seed=args.seed)
    print(f"consortium written to {args.out} (ground truth: {truth})")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from srcohort.convert.report import REPORT
    from srcohort.convert.site import convert_site
    report = convert_site(args.site_dir, args.out, workers=args.workers)
    return _conversion_summary(report, args, args.out / REPORT)


def cmd_validate(args: argparse.Namespace) -> int:
    from srcohort.convert.site import validate_site
    return _conversion_summary(validate_site(args.site_dir, workers=args.workers), args, None)


def _actor():
    """Who runs this command, for the audit log and the release ledger."""
    from srcohort.audit.actor import Actor
    return Actor.current()


def cmd_index(args: argparse.Namespace) -> int:
    from srcohort.audit.audited import index_directory
    if not args.dicom_dir.is_dir():
        print(f"error: {args.dicom_dir} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    stats = index_directory(_client(args), args.dicom_dir, site=args.site, prefix=args.prefix,
                            actor=_actor())
    _print({"series": stats.series, "patients": stats.patients, "errors": len(stats.errors)},
           args.json)
    if stats.errors and not stats.series:
        print("error: no file could be indexed", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_cohort(args: argparse.Namespace) -> int:
    from srcohort.audit.audited import count_patients, list_patients
    from srcohort.cohort.library import resolve_cohort
    from srcohort.cohort.query import compile_expr
    cohort = resolve_cohort(args.cohort)
    if args.action == "explain":
        _print({"query": compile_expr(cohort.patients)}, True)
    elif args.action == "count":
        _print(count_patients(_client(args), cohort, prefix=args.prefix, actor=_actor()),
               args.json)
    else:
        for patient in list_patients(_client(args), cohort, prefix=args.prefix, actor=_actor()):
            print(f"{patient['site']}\t{patient['patient_id']}\t{','.join(patient['modalities'])}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from srcohort.cohort.library import resolve_cohort
    from srcohort.export.run import export_formats
    from srcohort.export.split import SplitFractions
    from srcohort.export.training import TrainingSettings
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        print(f"error: set the pseudonymisation secret in ${args.secret_env}", file=sys.stderr)
        return 2
    try:
        settings = TrainingSettings(spacing=_spacing(args.spacing), ecg_rate=args.ecg_rate,
                                    ecg_seconds=args.ecg_seconds,
                                    split=SplitFractions.parse(args.split))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = export_formats(_client(args), resolve_cohort(args.cohort), args.out,
                             output_format=args.format, prefix=args.prefix,
                             secret=secret.encode("utf-8"), settings=settings, actor=_actor())
    _print(summary, args.json)
    return 0


def _spacing(text: str) -> tuple[float, float, float] | None:
    """``native``, one number (isotropic) or three, in mm."""
    if text == "native":
        return None
    parts = [float(p) for p in text.split(",")]
    if len(parts) not in (1, 3) or min(parts) <= 0:
        raise ValueError(f"--spacing {text!r}: expected native, one or three positive mm values")
    return (parts[0],) * 3 if len(parts) == 1 else (parts[0], parts[1], parts[2])


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


def cmd_federated(args: argparse.Namespace) -> int:
    from srcohort import federated
    from srcohort.cohort.library import resolve_cohort
    if args.action in LEDGER_ACTIONS:
        return LEDGER_ACTIONS[args.action](args)
    if args.action == "site":
        release = federated.release_site(_client(args), resolve_cohort(args.cohort),
                                         site=args.site, prefix=args.prefix, k=args.k,
                                         out=args.out, actor=_actor())
        if release.state == "pending":
            _print({"release": release.number, "state": release.state} if args.json else
                   f"release {release.number} of {args.site} waits for approval: another "
                   f"person runs 'srcohort federated approve {release.number} --out FILE'",
                   args.json)
        elif args.json:
            _print(release.aggregate, True)
        else:
            print(f"aggregate of {args.site} written to {args.out} (release {release.number}"
                  + (f"; {len(release.linked_suppressed)} more cells suppressed so that no "
                     f"count below k follows with earlier releases"
                     if release.linked_suppressed else "") + ")")
        return 0
    if args.action == "combine":
        combined = federated.combine_files(args.aggregates, args.out)
    else:
        sites = [s for s in args.sites.split(",") if s]
        if "{site}" not in args.prefix_template or not sites:
            print("error: --sites needs site names and --prefix-template a {site} placeholder",
                  file=sys.stderr)
            return 2
        combined = federated.run_federated_count(
            _client(args), resolve_cohort(args.cohort), sites,
            prefix_template=args.prefix_template, k=args.k, out_dir=args.out)
    if args.json:
        _print(combined.to_json(), True)
    else:
        print(combined.table())
    return 0


def cmd_federated_decide(args: argparse.Namespace) -> int:
    from srcohort.federated import decide_release
    approve = args.action == "approve"
    record = decide_release(_client(args), args.prefix, args.release, approve=approve,
                            out=args.out if approve else None,
                            reason="" if approve else args.reason, actor=_actor())
    _print(record.summary() if args.json else
           f"release {record.number} {record.state} by {record.decided['user']}"
           + (f"; aggregate written to {args.out}" if approve else ""), args.json)
    return 0


def cmd_federated_ledger(args: argparse.Namespace) -> int:
    from srcohort.federated import Ledger, releases
    ledger = Ledger(_client(args), args.prefix)
    entries = ledger.entries()
    rows = [r.summary() for r in releases(entries)
            if args.state is None or r.state == args.state]
    head = entries[-1]["sha256"] if entries else None
    if args.json:
        _print({"ledger": ledger.chain.index, "entries": len(entries), "head": head,
                "releases": rows}, True)
        return 0
    for row in rows:
        decided = f"  {row['state']} by {row['decided_by']}" if "decided_by" in row else ""
        print(f"{row['release']:>5}  {row['time']}  {row['state']:<8}  {row['site']}  "
              f"{row['cohort']}  k={row['k']}  by {row['requested_by']}{decided}")
    print(f"{ledger.chain.index}: {len(entries)} entries, hash chain intact"
          + (f", head sha256 {head}" if head else ""))
    return 0


def cmd_federated_policy(args: argparse.Namespace) -> int:
    from srcohort.federated import set_approval_policy
    set_approval_policy(_client(args), args.prefix, required=args.require_approval == "yes",
                        actor=_actor())
    print(f"releases under {args.prefix} "
          + ("now wait for a person's approval" if args.require_approval == "yes"
             else "now leave without approval"))
    return 0


LEDGER_ACTIONS = {"approve": cmd_federated_decide, "reject": cmd_federated_decide,
                  "ledger": cmd_federated_ledger, "policy": cmd_federated_policy}


def cmd_audit(args: argparse.Namespace) -> int:
    from srcohort.audit.chain import verify
    from srcohort.audit.log import audit_log, line, parse_time, select
    log = audit_log(_client(args), args.prefix)
    entries = log.entries()
    problems = verify(entries)
    try:
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        print(f"error: --since/--until: {exc}", file=sys.stderr)
        return 2
    chosen = select(entries, actions=args.action or (), user=args.user, cohort=args.cohort,
                    since=since, until=until)
    chosen = chosen[-args.last:] if args.last > 0 else chosen
    if args.json:
        _print(chosen, True)
    else:
        for entry in chosen:
            print(line(entry))
        print(f"{log.index}: {len(chosen)} of {len(entries)} entries shown"
              + ("" if problems else ", hash chain intact"))
    if problems:
        print(f"error: {log.index} is damaged: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from srcohort.builder.actions import standalone_actions
    from srcohort.builder.app import BuilderApp
    from srcohort.builder.deployment import Sites, standalone
    from srcohort.builder.server import BuilderServer
    try:
        sites = (Sites.from_template(args.prefix_template, [s for s in args.sites.split(",") if s])
                 if args.sites else Sites({args.site: args.prefix}))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    secret = os.environ.get(args.secret_env, "")
    deployment = standalone(_client(args), sites,
                            actions=standalone_actions(secret.encode("utf-8") if secret else None),
                            cohorts_dir=args.cohorts, out_dir=args.out)
    server = BuilderServer(BuilderApp(deployment), args.host, args.port,
                           host_names=tuple(args.host_name))
    print(f"cohort builder on {server.url} (sites: {', '.join(sites.prefixes)}); Ctrl-C stops it",
          flush=True)
    server.serve_until_interrupted()
    return EXIT_OK


def _connection_options(parser: argparse.ArgumentParser, prefix: bool = True) -> None:
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
    if prefix:
        parser.add_argument("--prefix", default=DEFAULT_PREFIX, type=_prefix,
                            help=f"index name prefix, one per deployment ({DEFAULT_PREFIX})")


def _prefix(text: str) -> str:
    from srcohort.index.mapping import check_prefix
    try:
        return check_prefix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _k(text: str) -> int:
    """k below 2 would suppress nothing: refuse it at the command line."""
    from srcohort.federated.aggregate import check_k
    try:
        return check_k(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srcohort", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"srcohort {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument("--study", default=None,
                        help="the study: a shipped one (tavi, lung-nodules) or a folder with "
                             "study.yaml (default: $SRCOHORT_STUDY, else tavi)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str,
            json_option: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--study", default=argparse.SUPPRESS,
                       help="the study, as the global --study (default: $SRCOHORT_STUDY or tavi)")
        if json_option:
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

    p = add("demo-data", cmd_demo_data, "write a synthetic multi-site consortium export of the "
                                        "study (--study) and its ground truth")
    consortium_options(p)
    p.add_argument("--out", type=Path, required=True, help="output folder")

    def site_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("site_dir", type=Path, help="site export folder with mapping.yaml")
        p.add_argument("--workers", type=int, default=None,
                       help="processes (default: the cores this process may use)")
        p.add_argument("--strict", action="store_true",
                       help="exit with 3 when any input is refused (default: 0 unless nothing "
                            "converts, then 1)")
        p.add_argument("--show", type=int, default=20, help="refusals to list (20)")

    p = add("convert", cmd_convert, "convert one site export (mapping.yaml) to DICOM and SR; "
                                    "exit 0, 1 when no input converts, 2 for a bad mapping")
    site_options(p)
    p.add_argument("--out", type=Path, required=True, help="output folder")

    p = add("validate", cmd_validate, "check a site export (mapping, tables, images, ECGs, "
                                      "label maps) as convert would, writing nothing")
    site_options(p)

    p = add("index", cmd_index, "index a folder of DICOM files into OpenSearch")
    p.add_argument("dicom_dir", type=Path, help="folder with DICOM files (searched recursively)")
    p.add_argument("--site", required=True, help="site id stored with every document")
    _connection_options(p)

    p = add("cohort", cmd_cohort, "count, list or explain a cohort definition")
    p.add_argument("action", choices=["count", "list", "explain"])
    p.add_argument("cohort", help="cohort definition file or saved cohort name")
    _connection_options(p)

    p = add("export", cmd_export, "export a cohort, de-identified (PS3.15) and verified: the "
                                  "unified training layout and/or DICOM")
    p.add_argument("cohort", help="cohort definition file or saved cohort name")
    p.add_argument("--out", type=Path, required=True,
                   help="export folder; formats go to <out>/unified and <out>/dicom")
    p.add_argument("--format", choices=("unified", "dicom", "both"), default="unified",
                   help="unified: NIfTI/NumPy/Parquet + Croissant card for training; dicom: "
                        "de-identified DICOM with manifests (default: %(default)s)")
    p.add_argument("--split", default="70/15/15",
                   help="train/val/test fractions, stable per pseudonym (default: %(default)s)")
    p.add_argument("--spacing", default="1.0",
                   help="CT/mask voxel spacing in mm: one value, three (x,y,z) or 'native' "
                        "(default: %(default)s)")
    p.add_argument("--ecg-rate", type=float, default=500.0,
                   help="common ECG sampling rate in Hz (default: %(default)s)")
    p.add_argument("--ecg-seconds", type=float, default=10.0,
                   help="ECG length in seconds, cropped or zero-padded (default: %(default)s)")
    p.add_argument("--secret-env", default="SRCOHORT_SECRET",
                   help="environment variable holding the pseudonymisation secret")
    _connection_options(p)

    p = add("federated", cmd_federated, "federated cohort counts: each site publishes "
                                        "k-suppressed aggregates only, a coordinator combines them",
            json_option=False)
    actions = p.add_subparsers(dest="action", required=True)

    def federated_action(name: str, help_text: str) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help_text, description=help_text)
        a.add_argument("--json", action="store_true", help="print results as JSON")
        return a

    def k_option(a: argparse.ArgumentParser) -> None:
        a.add_argument("--k", type=_k, default=5,
                       help="smallest count published; smaller ones are suppressed (5)")

    a = federated_action("site", "what one site runs: the cohort's aggregate of this site")
    a.add_argument("cohort", help="cohort definition file or saved cohort name")
    a.add_argument("--site", required=True, help="this site's name, as the coordinator shows it")
    a.add_argument("--out", type=Path, required=True, help="aggregate JSON file to write")
    k_option(a)
    _connection_options(a)
    for name, text in (("approve", "approve a pending release (another person than the one "
                                   "who asked for it) and write its aggregate"),
                       ("reject", "reject a pending release: it never leaves and later "
                                  "releases are no longer audited against it")):
        a = federated_action(name, text)
        a.add_argument("release", type=int, help="release number (srcohort federated ledger)")
        if name == "approve":
            a.add_argument("--out", type=Path, required=True, help="aggregate JSON file to write")
        else:
            a.add_argument("--reason", default="", help="why, for the ledger")
        _connection_options(a)
    a = federated_action("ledger", "list this site's releases and check the ledger's hash "
                                   "chain (prints its head to anchor elsewhere)")
    a.add_argument("--state", choices=("pending", "released", "rejected"), default=None,
                   help="only releases in this state")
    _connection_options(a)
    a = federated_action("policy", "whether releases wait for a person's approval")
    a.add_argument("--require-approval", choices=("yes", "no"), required=True,
                   help="yes: 'site' records a pending release and writes nothing until "
                        "'approve'")
    _connection_options(a)
    a = federated_action("combine", "the coordinator: combine site aggregate files into "
                                    "federated.json, upset.png and label-balance.png")
    a.add_argument("aggregates", type=Path, nargs="+", help="site aggregate JSON files")
    a.add_argument("--out", type=Path, required=True, help="output folder")
    a = federated_action("count", "run the site step for every site (each under its own index "
                                  "prefix) and combine: the demo's federated count")
    a.add_argument("cohort", help="cohort definition file or saved cohort name")
    a.add_argument("--sites", required=True, help="comma-separated site names")
    a.add_argument("--prefix-template", default="srcohort-demo-{site}-",
                   help="index prefix of each site ('srcohort-demo-{site}-')")
    a.add_argument("--out", type=Path, required=True, help="output folder")
    k_option(a)
    _connection_options(a, prefix=False)

    p = add("audit", cmd_audit, "print this site's audit log (index runs, counts, lists, "
                                "exports, releases), filtered; checks its hash chain")
    p.add_argument("--action", action="append", choices=ACTIONS,
                   help="only this action (repeatable)")
    p.add_argument("--user", default=None, help="only entries of this user")
    p.add_argument("--cohort", default=None,
                   help="only this cohort: its name or the start of its definition's sha256")
    p.add_argument("--since", default=None, help="from this ISO date or time on (UTC)")
    p.add_argument("--until", default=None, help="before this ISO date or time (UTC)")
    p.add_argument("--last", type=int, default=0, help="only the last N matching entries")
    _connection_options(p)

    p = add("serve", cmd_serve, "the cohort builder: a web page over the index that builds a cohort "
                                "definition with live counts per site and criterion",
            json_option=False)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default: %(default)s)")
    p.add_argument("--host-name", action="append", default=[],
                   help="a name users reach the server by, when it listens beyond this machine "
                        "(repeatable; other Host headers are refused)")
    p.add_argument("--site", default="local",
                   help="the site's name with --prefix, as actions name it (default: %(default)s)")
    p.add_argument("--sites", default="",
                   help="comma-separated site names, each with its own indices (--prefix-template)")
    p.add_argument("--prefix-template", default="srcohort-demo-{site}-",
                   help="index prefix of each of --sites ('srcohort-demo-{site}-')")
    p.add_argument("--cohorts", type=Path, default=Path("cohorts"),
                   help="folder of saved cohort definitions (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("builder-out"),
                   help="folder for exports and federated aggregates (default: %(default)s)")
    p.add_argument("--secret-env", default="SRCOHORT_SECRET",
                   help="environment variable holding the export's pseudonymisation secret")
    _connection_options(p)

    p = add("opensearch", cmd_opensearch, "fetch, start, stop or query the local OpenSearch")
    p.add_argument("action", choices=["start", "stop", "status"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    from srcohort.study.load import STUDY_ENV, StudyError, load_study
    if args.study:
        os.environ[STUDY_ENV] = args.study
    try:
        load_study()
    except StudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from opensearchpy.exceptions import (AuthenticationException, AuthorizationException,
                                         ConnectionError as OpenSearchUnreachable,
                                         NotFoundError)

    from srcohort.audit.chain import ChainError
    from srcohort.cohort.definition import CohortError
    from srcohort.export.state import ExportConflict
    from srcohort.export.verify import PhiFound
    from srcohort.federated.combine import FederatedError
    from srcohort.index.connection import ConnectionSettingsError
    from srcohort.sources.mapping import MappingError
    try:
        return args.func(args)
    except (CohortError, MappingError, ConnectionSettingsError, FederatedError, ExportConflict,
            PhiFound, ChainError) as exc:
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
    except NotFoundError:
        print(f"error: OpenSearch has no srcohort index with prefix "
              f"{getattr(args, 'prefix', '')!r}: index a site first, or check --prefix",
              file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}",
              file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:   # the log line carries the traceback for the site's admin
        logs.get_logger("srcohort.cli").exception("failed", extra={"command": args.command})
        print(f"error: {type(exc).__name__}: {exc} (details in the log)", file=sys.stderr)
        return EXIT_FAILED
