"""Studies as declared data: input tables, vocabularies, SR templates, label and anchor
(``model``), read from YAML folders (``load``), and one patient's values for them (``record``)."""
