"""srcohort: site exports -> DICOM and SR -> nested OpenSearch index -> cohorts -> federated export."""

__version__ = "0.1.0"
