"""``srcohort-kaapana``: the entry point of srcohort's processing image in Kaapana.

Kaapana 0.6 starts a processing pod with its image's entrypoint and ignores an operator's
``cmds``/``arguments``, so the operators name the step in ``$SRCOHORT_STEP``; the step can
also be given as the first argument (``srcohort-kaapana index``). A step prints its summary
as JSON on stdout and keeps it as ``$OPERATOR_OUT_DIR/srcohort-<step>.json``. A failure is one
line on stderr, saying what failed and what to check, and exit status 1.

The study (``srcohort/studies/``, or a folder) is the run's ``workflow_form.study``, else the
one installed with the extension (``$SRCOHORT_STUDY``, from the install settings), else the
packaged default; it decides how inputs are converted, what the index names, which cohorts are
saved, the label of federated releases and the dashboards.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any, Callable, Sequence

from opensearchpy.exceptions import TransportError

from srcohort import logs
from srcohort.audit.chain import ChainError
from srcohort.cohort.definition import CohortError
from srcohort.export.state import ExportConflict
from srcohort.export.verify import PhiFound
from srcohort.federated.combine import FederatedError
from srcohort.index.connection import ConnectionSettingsError
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.opensearch import explain, opensearch_url, platform_ca
from srcohort.kaapana.platform import Platform
from srcohort.kaapana.pod import Pod
from srcohort.study.load import STUDY_ENV, StudyError, load_study

Step = Callable[[Platform], dict[str, Any]]
# step -> (module:function in srcohort.kaapana.steps, what it does). Imported when the step
# runs, after the run's study is chosen: modules may take defaults from the active study.
STEPS: dict[str, tuple[str, str]] = {
    "project-scope": ("scope:run", "create the project's srcohort indices and roles (system "
                                   "user)"),
    "import": ("importing:run", "site-export zips -> DICOM/SR/SEG/ECG -> the PACS; reports to "
                                "the project bucket"),
    "index": ("indexing:run", "series from the PACS (GetInputOperator's folders) -> the "
                              "project's srcohort indices"),
    "dataset": ("dataset:run", "a cohort -> a Kaapana dataset of its series"),
    "export": ("export:run", "a dataset or cohort, de-identified -> the project bucket"),
    "federated-site": ("federated:site", "this instance's k-suppressed aggregate of a cohort, "
                                         "released through the project's ledger: the only file "
                                         "the federated run takes from the site"),
    "federated-central": ("federated:central", "start the site step at the registered "
                                               "instances and combine their aggregates"),
    "federated-decide": ("federated:decide", "approve or reject a release waiting in the "
                                             "project's ledger, or list the ledger"),
    "install": ("install:install", "the chart's post-install Job: settings for the workflows, "
                                   "every project's indices, roles and dashboards"),
    "uninstall": ("install:uninstall", "the chart's pre-delete Job: the dashboards and "
                                       "settings go again"),
}


def step_function(step: str) -> Step:
    module, function = STEPS[step][0].split(":")
    return getattr(importlib.import_module(f"srcohort.kaapana.steps.{module}"), function)


# Steps whose folder Kaapana ships elsewhere (federated sharing): only their result goes there.
SHIPPED = {"federated-site"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srcohort-kaapana", description=__doc__.split("\n\n")[0],
        epilog="steps: " + "; ".join(f"{name}: {text}" for name, (_, text) in STEPS.items()))
    parser.add_argument("step", nargs="?", choices=sorted(STEPS),
                        help="the step to run (default: $SRCOHORT_STEP)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    pod = Pod.from_environ()
    step = args.step or pod.get("SRCOHORT_STEP")
    if step not in STEPS:
        print(f"srcohort-kaapana: no step given ($SRCOHORT_STEP is {step!r}; one of "
              f"{', '.join(sorted(STEPS))})", file=sys.stderr)
        return 2
    platform = Platform(pod)
    try:
        _choose_study(pod)
        result = step_function(step)(platform)
    except TransportError as exc:
        return _fail(step, explain(exc, opensearch_url(pod), _user(pod), platform_ca(pod)))
    except (KaapanaError, CohortError, ConnectionSettingsError, ExportConflict, PhiFound,
            LookupError, StudyError, FederatedError, ChainError) as exc:
        return _fail(step, str(exc))
    text = json.dumps(result, indent=1, default=str)
    if step not in SHIPPED:
        (pod.out_dir / f"srcohort-{step}.json").write_text(text, "utf-8")
    print(text)
    return 0


def _choose_study(pod: Pod) -> None:
    """Make the run's study the active one, for this process and the workers it forks, as
    ``srcohort --study`` does; a study that does not load stops the step here."""
    try:
        asked = pod.setting("study")
    except KaapanaError:             # a Job without a run conf (install, uninstall)
        asked = None
    chosen = str(asked or pod.get(STUDY_ENV) or "").strip()
    if chosen:
        os.environ[STUDY_ENV] = chosen
    load_study()


def _user(pod: Pod) -> str:
    return pod.get("KAAPANA_PROJECT_USER_NAME") or "system"


def _fail(step: str, message: str) -> int:
    print(f"srcohort-kaapana {step}: {' '.join(message.split())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
