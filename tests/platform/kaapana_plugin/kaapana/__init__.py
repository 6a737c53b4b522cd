"""Test-only stand-in for Kaapana 0.6's Airflow plugin package ``kaapana`` (not Kaapana's code).

Kaapana's plugin (data-processing/kaapana-plugin/extension/docker/files/plugin/kaapana) needs
Kubernetes, its backend and its PACS. These modules keep the constructor arguments and the
observable behaviour srcohort's DAGs rely on, written from Kaapana 0.6.0's sources (named in
each module), and run every processing container as a local process or in the built image
(tests/platform/pods.py). The harness' settings come from the JSON file ``$SRCOHORT_HARNESS``.
"""
