"""DICOM -> OpenSearch documents (series and patient roll-up, SR/SEG content as nested objects)."""
