"""The content of an ECG waveform object: one rhythm multiplex group and its annotations.

Samples arrive in microvolts as floats; DICOM stores 16-bit integers times a per-channel
Channel Sensitivity. The sensitivity is chosen per channel so that nothing the source stored is
lost: the source's own step (``resolution_uv``) where every sample lies on its grid, a half or
quarter step for leads the reader derived (e.g. aVR = -(I + II) / 2 from stored I and II), and
a coarser step only when the signal would overflow 16 bits.
"""

from __future__ import annotations

import math

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.valuerep import format_number_as_ds

from srcohort.sources.ecg.model import (MEASUREMENT_UNITS, MEASUREMENTS, EcgFormatError,
                                        EcgRecording)
from srcohort.sources.ecg.utils import STATEMENTS
from srcohort.waveform.enum import LEAD_CODES, MICROVOLT, UNIT_CODES, UNSPECIFIED_LEAD

INT16_MAX = 32767
GRID_DIVISORS = (1, 2, 4)      # source step, half step, quarter step
ON_GRID = 1e-6                 # counts this close to an integer are that integer
WHOLE_GROUP = [1, 0]           # Referenced Waveform Channels: every channel of group 1


def _ds(value: float) -> str:
    """A DS string; the sample counts are computed from its parsed value, not from ``value``."""
    return format_number_as_ds(float(value))


def quantise(samples: np.ndarray, resolution_uv: float) -> tuple[np.ndarray, str]:
    """Int16 counts and the Channel Sensitivity (DS, µV per count) that reproduce ``samples``.

    Read back as ``counts * sensitivity`` (baseline 0), every sample is exact where it lies on
    the chosen grid and within half a sensitivity step otherwise.
    """
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    least = peak / INT16_MAX                 # the finest step that still fits 16 bits
    for divisor in GRID_DIVISORS:
        sensitivity = _ds(resolution_uv / divisor)
        step = float(sensitivity)
        if step < least:
            break
        counts = samples / step
        if np.all(np.abs(counts - np.rint(counts)) <= ON_GRID):
            return np.rint(counts).astype("<i2"), sensitivity
    sensitivity = _ds(max(resolution_uv, least * (1 + 1e-9)))
    counts = np.rint(samples / float(sensitivity))
    return counts.astype("<i2"), sensitivity


def _bits_stored(counts: np.ndarray) -> int:
    """Significant bits of signed samples: magnitude bits plus the sign bit."""
    return int(np.max(np.abs(counts.astype(np.int32)), initial=0)).bit_length() + 1


def channel_definition(lead: str, counts: np.ndarray, sensitivity: str) -> Dataset:
    """Channel Definition Sequence item: CID 3001 source, sensitivity in µV, no skew."""
    item = Dataset()
    item.ChannelLabel = lead
    item.ChannelSourceSequence = [hd.sr.CodedConcept.from_code(
        LEAD_CODES.get(lead, UNSPECIFIED_LEAD))]
    item.ChannelSensitivity = sensitivity
    item.ChannelSensitivityUnitsSequence = [hd.sr.CodedConcept.from_code(MICROVOLT)]
    item.ChannelSensitivityCorrectionFactor = "1"
    item.ChannelBaseline = "0"
    item.ChannelSampleSkew = "0"            # all leads of a group are sampled together
    item.WaveformBitsStored = _bits_stored(counts)
    return item


def rhythm_group(recording: EcgRecording) -> Dataset:
    """The one multiplex group: every lead, in the recording's order, interleaved int16."""
    columns, definitions = [], []
    for lead, samples in recording.leads.items():
        values = np.asarray(samples, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise EcgFormatError(f"lead {lead} of patient {recording.patient_id!r} holds "
                                 "samples that are not numbers")
        counts, sensitivity = quantise(values, recording.resolution_uv)
        columns.append(counts)
        definitions.append(channel_definition(lead, counts, sensitivity))
    group = Dataset()
    group.MultiplexGroupLabel = "RHYTHM"
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = len(columns)
    group.NumberOfWaveformSamples = recording.samples
    group.SamplingFrequency = _ds(recording.sampling_rate)
    group.ChannelDefinitionSequence = definitions
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    group.WaveformData = np.stack(columns, axis=1).astype("<i2").tobytes()
    return group


def annotations(recording: EcgRecording) -> list[Dataset]:
    """Waveform Annotation items: coded global measurements, then one statement per finding.

    Findings are written as statement text, the way ECG carts annotate their waveforms, in the
    wording the readers recognise (``STATEMENTS``), so a DICOM ECG reads back as it was written.
    """
    items = []
    for name, value in recording.measurements.items():
        if not math.isfinite(value):
            raise EcgFormatError(f"measurement {name} of patient {recording.patient_id!r} is "
                                 f"{value}, not a number")
        item = Dataset()
        item.ConceptNameCodeSequence = [hd.sr.CodedConcept.from_code(MEASUREMENTS[name].concept)]
        item.NumericValue = _ds(value)
        item.MeasurementUnitsCodeSequence = [
            hd.sr.CodedConcept.from_code(UNIT_CODES[MEASUREMENT_UNITS[name]])]
        item.ReferencedWaveformChannels = WHOLE_GROUP
        items.append(item)
    for finding in dict.fromkeys(recording.findings):
        item = Dataset()
        item.UnformattedTextValue = STATEMENTS[finding]
        item.ReferencedWaveformChannels = WHOLE_GROUP
        items.append(item)
    return items
