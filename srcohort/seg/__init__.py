"""DICOM Segmentation (binary SEG) from site label maps, arranged as highdicom arranges ``hd.seg``.

``enum.py`` names the structures and their codes, ``content.py`` the segment descriptions,
``utils.py`` puts a label map on the CT's grid (or refuses), ``sop.py`` builds the instance.
Reading label maps and label tables (and ``LabelMapError``) is ``srcohort.sources.labelmaps``.
"""

from srcohort.seg.content import segment_descriptions
from srcohort.seg.enum import Structure
from srcohort.seg.sop import build_segmentation

__all__ = ["Structure", "build_segmentation", "segment_descriptions"]
