"""Memory and CPU of every srcohort step: the one place to change them.

KaapanaBaseOperator (Kaapana 0.6.0, KP/operators/KaapanaBaseOperator.py) turns ``ram_mem_mb``
into the pod's memory request and ``ram_mem_mb_lmt`` (default: request + 100) into its limit,
``cpu_millicores`` into the CPU request and that + 100m into the limit; without them a step
gets 500 Mi requested and a 600 Mi limit. Airflow's ``NODE_RAM`` pool admits a step by its
``ram_mem_mb``. The CPU limit is what srcohort's workers are sized by inside the pod
(srcohort.resources.cpu_count reads the cgroup quota).

The figures are for site exports of some hundred patients with CTs of 300-600 slices. The
requests of the steps that convert, index and export cover the peaks measured for them
(``srcohort/resources.py``, fitted to benchmarks/clinical.py, with its margin) at 600 slices,
with the workers the CPU limit allows and 100,000 files, and their limits are twice that:
tests/test_airflow_dags.py checks both. Airflow carries no
srcohort, so the figures are written here, not computed.
"""

STEP_RESOURCES: dict[str, dict[str, int]] = {
    # indices and roles only
    "project-scope": {"ram_mem_mb": 300, "ram_mem_mb_lmt": 600, "cpu_millicores": 200},
    # unpack, convert on every granted core (one CT series per worker), dcmsend
    "import": {"ram_mem_mb": 1200, "ram_mem_mb_lmt": 2400, "cpu_millicores": 2000},
    # headers and SR content trees, bulk requests of 2 MB
    "index": {"ram_mem_mb": 400, "ram_mem_mb_lmt": 800, "cpu_millicores": 1000},
    "dataset": {"ram_mem_mb": 500, "ram_mem_mb_lmt": 1000, "cpu_millicores": 500},
    # CT volumes resampled per worker, NIfTI written, zipped
    "export": {"ram_mem_mb": 1000, "ram_mem_mb_lmt": 2000, "cpu_millicores": 2000},
    "federated-site": {"ram_mem_mb": 500, "ram_mem_mb_lmt": 1000, "cpu_millicores": 500},
    "federated-central": {"ram_mem_mb": 500, "ram_mem_mb_lmt": 1000, "cpu_millicores": 500},
    "federated-decide": {"ram_mem_mb": 300, "ram_mem_mb_lmt": 600, "cpu_millicores": 200},
    "install": {"ram_mem_mb": 300, "ram_mem_mb_lmt": 600, "cpu_millicores": 200},
}
