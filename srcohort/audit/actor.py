"""Who does what, and when: the facts every audit and ledger entry starts with.

The user is the run's user in Kaapana (the backend puts it into ``workflow_form.username``; a
processing container gets every workflow_form key upper-cased, so ``USERNAME``, next to
``DAG_ID`` and ``RUN_ID``), else the operating-system user the process runs as. Time always
comes from a clock passed in, so tests pin it and never depend on the day they run.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

Clock = Callable[[], dt.datetime]
# What the audit log records (srcohort.audit.log).
ACTIONS = ("index", "count", "list", "export", "release", "approve", "reject", "policy")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def timestamp(clock: Clock) -> str:
    """ISO 8601 in UTC with milliseconds: sorts as text, parses as an OpenSearch date."""
    when = clock().astimezone(dt.timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):          # no passwd entry for the uid (some containers)
        return f"uid:{os.getuid()}"


@dataclass(frozen=True)
class Actor:
    """The person (or service account) behind an action, and the workflow run if any."""

    user: str
    run: str | None = None

    @classmethod
    def current(cls, environ: Mapping[str, str] | None = None) -> "Actor":
        """From the environment: a Kaapana container's run user and run, else the OS user."""
        env = os.environ if environ is None else environ
        if env.get("DAG_ID") and env.get("RUN_ID"):
            return cls(env.get("USERNAME") or os_user(), f"{env['DAG_ID']}/{env['RUN_ID']}")
        return cls(os_user())

    @classmethod
    def of_run(cls, workflow_form: Mapping[str, Any], dag_id: str, run_id: str) -> "Actor":
        """An Airflow step's actor: the form's ``username`` (Kaapana sets it), else the OS user."""
        return cls(str(workflow_form.get("username") or os_user()), f"{dag_id}/{run_id}")

    def to_json(self) -> dict[str, str]:
        return {"user": self.user, **({"run": self.run} if self.run else {})}
