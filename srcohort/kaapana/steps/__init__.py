"""The container steps of srcohort's Kaapana workflows, one module each.

Each ``run(platform) -> dict`` reads its pod (environment, ``conf.json``, input folders), does
its work through srcohort's core and the platform's services, and returns a small JSON summary
(printed and kept as ``$OPERATOR_OUT_DIR/srcohort-<step>.json``). ``srcohort.kaapana.main``
dispatches on ``$SRCOHORT_STEP``, which the operators set.
"""
