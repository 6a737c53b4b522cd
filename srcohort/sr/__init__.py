"""DICOM Structured Reports, one subpackage per object family (as highdicom arranges ``hd.sr``).

Each family has the same rooms: ``content.py`` (the template, one class per template),
``sop.py`` (the SR instance), ``enum.py`` (coded value sets) where the family has them.
``evidence.py`` holds what every family shares: whom and what an SR is about.
"""
