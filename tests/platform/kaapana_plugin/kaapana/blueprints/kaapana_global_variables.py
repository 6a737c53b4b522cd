"""Stand-in for kaapana/blueprints/kaapana_global_variables.py (Kaapana 0.6.0): the same names,
from the same environment variables; AIRFLOW_WORKFLOW_DIR is the services namespace's volume
of the harness (in Kaapana, Airflow's /kaapana/mounted/workflows/data is that volume)."""

import os

from kaapana.harness import config, volume

BATCH_NAME = "batch"
AIRFLOW_WORKFLOW_DIR = str(volume(os.getenv("SERVICES_NAMESPACE", "services")))
PROCESSING_WORKFLOW_DIR = "/kaapana/mounted/data"
INSTANCE_NAME = os.getenv("INSTANCE_NAME", None)
KAAPANA_BUILD_VERSION = os.getenv("KAAPANA_BUILD_VERSION", None)
ADMIN_NAMESPACE = os.getenv("ADMIN_NAMESPACE", None)
SERVICES_NAMESPACE = os.getenv("SERVICES_NAMESPACE", None)
PULL_POLICY_IMAGES = os.getenv("PULL_POLICY_IMAGES", "IfNotPresent")
DEFAULT_REGISTRY = os.getenv("DEFAULT_REGISTRY", None)
PLATFORM_VERSION = os.getenv("PLATFORM_VERSION", None)
GPU_SUPPORT = False
HARNESS = config()
