"""Reading site exports: mapping files, CSV tables and DICOM folders, into canonical records."""
