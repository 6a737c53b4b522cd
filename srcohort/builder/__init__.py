"""The cohort builder: a single-page app over the patient index that edits a cohort definition
as nested cards, counts it live (per site and criterion by criterion) and saves it as YAML.

Every number it shows comes from queries compiled by ``srcohort.cohort.query.compile_expr``;
every definition it edits is read and checked by ``srcohort.cohort.definition.load_cohort``,
so the page, the YAML and ``srcohort cohort count`` cannot disagree. docs/builder.md.

``deployment`` holds what differs between a stand-alone server and a Kaapana deployment (how
an OpenSearch client is made for a request, which indices belong to which site, which actions
exist); ``app`` answers requests and ``server`` serves them over HTTP.
"""
