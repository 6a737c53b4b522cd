"""Times in the objects srcohort writes: those of the data, never those of the clock.

DICOM records when an instance was made (Instance Creation Date and Time, and the Contribution
DateTime of each contributing equipment: all Type 3) and when its content was created (Content
Date and Time: Type 1 in the SR, SEG and waveform IODs). highdicom stamps all of them with the
clock. srcohort derives every object from a site's inputs and names it by what it holds
(``convert.versions``): a clock value would make a rerun on another day a different object
under the same inputs. So the Type 3 creation stamps are left out, and the content date and
time is that of the data the object is made from (``source_datetime``): the content time of
the source image or recording, else its study's.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

# When the sources carry no date at all (a registry row without dates, for a patient without
# images), Content Date still needs a value: this one, never a real day of care.
NO_DATE = ("19000101", "000000")
_CREATION = ("InstanceCreationDate", "InstanceCreationTime")
_CLOCK_EQUIPMENT = "highdicom"      # ManufacturerModelName of highdicom's processing item


def source_datetime(ds: Dataset) -> tuple[str, str]:
    """(DA, TM) of the data ``ds`` holds: its content date and time, else its study's."""
    for date_keyword, time_keyword in (("ContentDate", "ContentTime"),
                                       ("StudyDate", "StudyTime")):
        date = str(ds.get(date_keyword) or "").strip()
        if date:
            return date, str(ds.get(time_keyword) or "").strip() or "000000"
    return NO_DATE


def settle(ds: Dataset, content: tuple[str, str]) -> None:
    """Replace the clock's stamps in ``ds``: creation stamps out, content date and time set."""
    for keyword in _CREATION:
        if keyword in ds:
            delattr(ds, keyword)
    ds.ContentDate, ds.ContentTime = content
    for item in ds.get("ContributingEquipmentSequence", []):
        if item.get("ManufacturerModelName") == _CLOCK_EQUIPMENT and \
                "ContributionDateTime" in item:
            del item.ContributionDateTime
