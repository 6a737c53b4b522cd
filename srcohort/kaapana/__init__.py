"""srcohort inside a Kaapana 0.6 platform: the edge between srcohort's core and Kaapana.

Everything that knows Kaapana lives here: what a processing pod is given (``pod``), the
platform's Keycloak token (``auth``) and OpenSearch (``opensearch``), per-project indices and
roles (``project``), the PACS (``pacs``), the project bucket (``bucket``), Kaapana's backend
(``backend``), upload archives (``archive``) and the container steps the DAGs run (``steps``).
The core (convert, index, cohort, export, federated) stays unaware of Kaapana; the stand-alone
CLI keeps using it directly.
"""
