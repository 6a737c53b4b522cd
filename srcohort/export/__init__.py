"""Cohort -> de-identified files plus manifests that a training pipeline reads the same way everywhere."""
