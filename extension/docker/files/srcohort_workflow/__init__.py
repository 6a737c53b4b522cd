"""Airflow operators of the srcohort workflow extension for Kaapana 0.6.

Kaapana's DAG installer copies this package next to the DAG files
(``/kaapana/tmp/dags/srcohort_workflow/`` -> ``/kaapana/mounted/workflows/dags/``). Every step
runs in the ``srcohort`` processing image (``SrcohortOperator``); Kaapana's Airflow carries
neither srcohort nor its DICOM stack, so nothing here imports srcohort.
"""
