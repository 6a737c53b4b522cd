"""Site export -> DICOM: images pass through, tables become SRs, bad input is quarantined."""
