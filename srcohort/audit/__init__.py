"""Who did what at a site: an append-only, hash-chained audit log beside the index.

``actor`` (who, what and when), ``chain`` (the append-only log in OpenSearch, shared with the
federated release ledger), ``log`` (audit entries: ``record``, ``snapshot``, ``select``) and
``audited`` (index runs, counts and lists that record themselves). Nothing is imported here,
so ``srcohort --help`` stays fast; docs/federated.md says what is recorded.
"""
