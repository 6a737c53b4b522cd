"""Airflow operators of the srcohort workflow extension.

Kaapana copies this package next to the DAG files (``/kaapana/tmp/dags/srcohort_workflow/``);
``kaapana_compat`` decides whether each step runs in the ``srcohort`` processing container or
in-process.
"""
