"""Cohort definitions -> OpenSearch queries -> patient counts and lists."""
