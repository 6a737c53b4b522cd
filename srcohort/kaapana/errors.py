"""The one error a Kaapana step reports: a single line that says what failed and what to check."""

from __future__ import annotations


class KaapanaError(RuntimeError):
    """A failure at the Kaapana edge, worded for the site admin reading the task log.

    The step runner prints it as one line and exits non-zero; no traceback is needed because
    the message names the setting, service or file involved.
    """
