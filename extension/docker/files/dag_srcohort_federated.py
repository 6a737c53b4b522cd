"""Kaapana workflows ``srcohort-federated-site``, ``srcohort-federated-count`` and
``srcohort-federated-decide``.

Built on Kaapana's federated framework, the way advanced-collect-metadata-federated is
(data-processing/processing-pipelines/advanced_collect_metadata_federated): the central Airflow
DAG srcohort-federated-count carries ``external_schema_federated_form`` (one round,
``remote_dag_id`` = srcohort-federated-site, ``federated_operators`` = the site step) and
``external_schemas`` (the site DAG's form, filled once for every site); its container starts
the site DAG at every registered instance through the backend and combines what comes back.
The site step allows federated learning and shares only ``.json`` files
(``whitelist_federated_learning``): its folder holds the site's aggregate and nothing else.
Federated runs run in the services namespace (HelperFederated sets it for them); the site
reads the srcohort indices of the project of the same name as the central's, and releases
through that project's release ledger. Where the project requires approval, the site's release
waits: srcohort-federated-decide, started at the site by a second person, approves or rejects
it (without a release number it lists the ledger), and the next federated run ships it.
"""

from __future__ import annotations

from kaapana.blueprints.kaapana_global_variables import SERVICES_NAMESPACE

from srcohort_workflow.forms import cleaner, cohort_field, field, srcohort_dag, study_field
from srcohort_workflow.SrcohortOperator import SrcohortOperator

SITE_DAG = "srcohort-federated-site"
SITE_STEP = "srcohort-federated-site"

site_dag = srcohort_dag(SITE_DAG, {
    "data_form": {},
    "workflow_form": {"type": "object", "properties": {
        "cohort": cohort_field(),
        "study": study_field(),
        "k": field("Smallest published count (k)", "Counts below k are suppressed in what "
                   "leaves the site; never below the installed threshold.", default="5"),
    }},
})
site_scope = SrcohortOperator(dag=site_dag, step="project-scope", namespace=SERVICES_NAMESPACE)
site = SrcohortOperator(dag=site_dag, step="federated-site", name=SITE_STEP,
                        allow_federated_learning=True, whitelist_federated_learning=[".json"])
site_scope >> site >> cleaner(site_dag)

count_dag = srcohort_dag("srcohort-federated-count", {
    "data_form": {},
    "external_schema_federated_form": {"type": "object", "properties": {
        "federated_total_rounds": {"type": "integer", "default": 1, "readOnly": True,
                                   "required": True},
        "remote_dag_id": {"type": "string", "title": "Remote dag id", "default": SITE_DAG,
                          "readOnly": True, "required": True},
        "federated_operators": {"type": "array", "title": "Federated operators",
                                "items": {"type": "string", "enum": [SITE_STEP]},
                                "default": [SITE_STEP], "readOnly": True, "required": True},
    }},
    "external_schemas": SITE_DAG,
})
central = SrcohortOperator(dag=count_dag, step="federated-central",
                           namespace=SERVICES_NAMESPACE)
central >> cleaner(count_dag)

decide_dag = srcohort_dag("srcohort-federated-decide", {
    "data_form": {},
    "workflow_form": {"type": "object", "properties": {
        "release": field("Release number", "A release of this project's ledger that waits for "
                         "approval; empty: list the releases (in the step's log) and change "
                         "nothing."),
        "decision": field("Decision", "Approve: the next federated run of the cohort ships it. "
                          "Reject: it never leaves. Whoever asked for the release cannot "
                          "approve it.", default="approve", choices=("approve", "reject")),
        "reason": field("Reason", "Why (kept in the ledger with the decision)."),
    }},
})
decide_scope = SrcohortOperator(dag=decide_dag, step="project-scope",
                                namespace=SERVICES_NAMESPACE)
decide = SrcohortOperator(dag=decide_dag, step="federated-decide")
decide_scope >> decide >> cleaner(decide_dag)
