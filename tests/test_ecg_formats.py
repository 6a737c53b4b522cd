"""ECG files of every format -> EcgRecording -> DICOM ECG waveform, judged by dciodvfy.

The synthetic recording is the truth: each vendor writer quantises it to its own step, the
reader must give it back within one such step (exactly where the format stores the value),
and the DICOM waveform must reproduce what was read, via pydicom's ``waveform_array``.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import GeneralECGWaveformStorage, TwelveLeadECGWaveformStorage

from srcohort.demo.ct import CTStudy, Geometry, ct_series
from srcohort.demo.ecg_files import ECG_WRITERS, synthetic_recording, write_scp
from srcohort.sources.ecg.model import STANDARD_LEADS, EcgFormatError, EcgRecording
from srcohort.sources.ecg.read import detect_format, read_ecg
from srcohort.sources.ecg.utils import findings_in
from srcohort.uids import derived_uid
from srcohort.waveform import ecg_dataset
from srcohort.waveform.content import quantise
from tests.dicom_validators import dciodvfy, require_tool

ACQUIRED = dt.datetime(2022, 11, 3, 9, 41, 17)
POSTERIOR_LEADS = STANDARD_LEADS + ("V7", "V8", "V9")
EPSILON = 1e-6                    # float noise, far below any quantisation step (µV)


def _recording(lbbb: bool = False, **kwargs: object) -> EcgRecording:
    return synthetic_recording("SITE1-0007", patient_name="Müller^Jürgen",
                               birth_date=dt.date(1944, 2, 29), sex="M", acquired=ACQUIRED,
                               lbbb=lbbb, seed=5, **kwargs)  # type: ignore[arg-type]


def _write_waveform(recording: EcgRecording, path: Path, study: pydicom.Dataset | None = None
                    ) -> pydicom.Dataset:
    ds = ecg_dataset(recording, study=study, series_instance_uid=derived_uid("t", "series"),
                     sop_instance_uid=derived_uid("t", "instance"), institution="Test Hospital")
    ds.save_as(path, enforce_file_format=True)
    return pydicom.dcmread(path)


def _channel_sensitivities(ds: pydicom.Dataset) -> list[float]:
    return [float(c.ChannelSensitivity) for c in ds.WaveformSequence[0].ChannelDefinitionSequence]


# Round trip per format --------------------------------------------------------------------

@pytest.mark.validators
@pytest.mark.parametrize("lbbb", [False, True], ids=["normal", "lbbb"])
@pytest.mark.parametrize("source_format", sorted(ECG_WRITERS))
def test_round_trip(source_format: str, lbbb: bool, tmp_path: Path) -> None:
    require_tool("dciodvfy")
    source = _recording(lbbb)
    path = ECG_WRITERS[source_format](source, tmp_path / "export.bin")   # the name says nothing
    assert detect_format(path) == source_format

    read = read_ecg(path)
    assert read.source_format == source_format
    assert (read.patient_id, read.patient_name, read.birth_date, read.sex, read.acquired) == (
        source.patient_id, source.patient_name, source.birth_date, source.sex, source.acquired)
    assert read.sampling_rate == source.sampling_rate
    assert list(read.leads) == list(STANDARD_LEADS)
    assert read.measurements == source.measurements
    assert set(read.findings) == set(source.findings)
    step = read.resolution_uv
    for lead, samples in read.leads.items():
        assert np.max(np.abs(samples - source.leads[lead])) <= step + EPSILON, lead

    ds = _write_waveform(read, tmp_path / "ecg.dcm")
    assert dciodvfy(tmp_path / "ecg.dcm") == []
    assert ds.SOPClassUID == TwelveLeadECGWaveformStorage
    back = ds.waveform_array(0)
    for channel, (lead, sensitivity) in enumerate(zip(read.leads, _channel_sensitivities(ds))):
        assert np.max(np.abs(back[:, channel] - read.leads[lead])) <= sensitivity / 2 + EPSILON
        assert np.max(np.abs(back[:, channel] - source.leads[lead])) <= step + EPSILON, lead
    again = read_ecg(tmp_path / "ecg.dcm")
    assert again.measurements == read.measurements
    assert set(again.findings) == set(read.findings)


def test_formats_that_store_every_sample_on_their_grid_lose_nothing_in_dicom(
        tmp_path: Path) -> None:
    """MUSE derives four limb leads at half and quarter steps; the waveform keeps them exactly."""
    read = read_ecg(ECG_WRITERS["ge-muse"](_recording(), tmp_path / "muse.xml"))
    back = _write_waveform(read, tmp_path / "ecg.dcm").waveform_array(0)
    for channel, lead in enumerate(read.leads):
        np.testing.assert_allclose(back[:, channel], read.leads[lead], rtol=0, atol=EPSILON)
    one, two = read.leads["I"], read.leads["II"]
    np.testing.assert_allclose(read.leads["III"], two - one, rtol=0, atol=EPSILON)
    np.testing.assert_allclose(read.leads["aVR"], -(one + two) / 2, rtol=0, atol=EPSILON)


def test_writers_and_waveform_are_deterministic(tmp_path: Path) -> None:
    source = _recording(lbbb=True)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for source_format, write in ECG_WRITERS.items():
        first = write(source, tmp_path / "a" / source_format).read_bytes()
        assert write(source, tmp_path / "b" / source_format).read_bytes() == first, source_format
    read = read_ecg(tmp_path / "a" / "scp")
    _write_waveform(read, tmp_path / "one.dcm")
    _write_waveform(read, tmp_path / "two.dcm")
    assert (tmp_path / "one.dcm").read_bytes() == (tmp_path / "two.dcm").read_bytes()


# The real sample pydicom ships --------------------------------------------------------------

MORTARA_MEANINGS = {"RR Interval": "rr_interval", "PR Interval": "pr_interval",
                    "QRS Duration": "qrs_duration", "QT Interval": "qt_interval",
                    "QTc Interval": "qtc_interval", "P Axis": "p_axis", "QRS Axis": "qrs_axis",
                    "T Axis": "t_axis"}


@pytest.mark.validators
def test_real_sample_reads_converts_and_round_trips(tmp_path: Path) -> None:
    require_tool("dciodvfy")
    path = Path(get_testdata_file("waveform_ecg.dcm"))
    original = pydicom.dcmread(path)
    read = read_ecg(path)

    assert read.source_format == "dicom"
    assert read.patient_id == original.PatientID
    assert read.sex == original.PatientSex
    assert read.birth_date == dt.datetime.strptime(original.PatientBirthDate, "%Y%m%d").date()
    assert read.acquired == dt.datetime.strptime(original.AcquisitionDateTime, "%Y%m%d%H%M%S")
    assert read.sampling_rate == float(original.WaveformSequence[0].SamplingFrequency)
    meanings = [c.ChannelSourceSequence[0].CodeMeaning
                for c in original.WaveformSequence[0].ChannelDefinitionSequence]
    assert [re.sub(r"^Lead | \(.*\)$", "", m) for m in meanings] == list(read.leads)
    rhythm = original.waveform_array(0)
    for channel, lead in enumerate(read.leads):
        np.testing.assert_array_equal(read.leads[lead], rhythm[:, channel])
    numeric = [(item.ConceptNameCodeSequence[0].CodeMeaning, float(item.NumericValue))
               for item in original.WaveformAnnotationSequence if "NumericValue" in item]
    stated = {MORTARA_MEANINGS[m]: value for m, value in numeric if m in MORTARA_MEANINGS}
    assert stated and read.measurements == stated
    texts = [str(i.UnformattedTextValue) for i in original.WaveformAnnotationSequence
             if "UnformattedTextValue" in i]
    assert "RITMO SINUSALE" in texts and read.findings == ["SINUS_RHYTHM"]

    converted = _write_waveform(read, tmp_path / "converted.dcm")
    assert dciodvfy(tmp_path / "converted.dcm") == []
    np.testing.assert_array_equal(converted.waveform_array(0), rhythm)  # lossless
    again = read_ecg(tmp_path / "converted.dcm")
    assert again.measurements == read.measurements and again.findings == read.findings
    for lead in read.leads:
        np.testing.assert_array_equal(again.leads[lead], read.leads[lead])


# The waveform writer ----------------------------------------------------------------------

@pytest.mark.validators
@pytest.mark.parametrize("kwargs", [{"leads": POSTERIOR_LEADS}, {"duration_s": 40.0}],
                         ids=["15-leads", "20000-samples"])
def test_recordings_beyond_the_12_lead_iod_become_general_ecg(kwargs: dict, tmp_path: Path
                                                               ) -> None:
    require_tool("dciodvfy")
    source = _recording(**kwargs)
    ds = _write_waveform(source, tmp_path / "ecg.dcm")
    assert dciodvfy(tmp_path / "ecg.dcm") == []
    assert ds.SOPClassUID == GeneralECGWaveformStorage
    assert ds.WaveformSequence[0].NumberOfWaveformChannels == len(source.leads)
    sources = {c.ChannelLabel: c.ChannelSourceSequence[0]
               for c in ds.WaveformSequence[0].ChannelDefinitionSequence}
    assert (sources["I"].CodingSchemeDesignator, sources["I"].CodeValue) == ("MDC", "2:1")
    if "V8" in source.leads:                               # CID 3001: MDC 2:66 "Lead V8"
        assert (sources["V8"].CodeValue, sources["V8"].CodeMeaning) == ("2:66", "Lead V8")
    back = read_ecg(tmp_path / "ecg.dcm")
    assert list(back.leads) == list(source.leads)
    for lead in source.leads:
        np.testing.assert_allclose(back.leads[lead], source.leads[lead], rtol=0, atol=EPSILON)


@pytest.mark.validators
def test_waveform_joins_the_patients_ct_study(tmp_path: Path) -> None:
    require_tool("dciodvfy")
    ct = ct_series(CTStudy(
        uid_parts=("t", "ct"), patient_id="SITE1-0007", patient_name="Müller^Jürgen",
        birth_date=dt.date(1944, 2, 29), sex="M", study_date=dt.date(2022, 11, 1),
        study_time="101500", accession_number="ACC123", referring_physician="",
        institution="Test Hospital", manufacturer="CT Co", model="CT1",
        series_description="Angio", geometry=Geometry((0, 0, 0), 1.0, 1.0),
        lumen_center=(8, 8), lumen_radius=2.0))[0]
    ds = _write_waveform(_recording(), tmp_path / "ecg.dcm", study=ct)
    assert dciodvfy(tmp_path / "ecg.dcm") == []
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "StudyInstanceUID",
                    "StudyDate", "AccessionNumber"):
        assert ds[keyword].value == ct[keyword].value, keyword
    assert ds.SeriesInstanceUID != ct.SeriesInstanceUID
    assert ds.AcquisitionDateTime == ACQUIRED.strftime("%Y%m%d%H%M%S")
    alone = _write_waveform(_recording(), tmp_path / "alone.dcm")
    assert alone.StudyInstanceUID != ct.StudyInstanceUID


def test_channel_definitions_carry_lead_codes_units_and_skew(tmp_path: Path) -> None:
    ds = _write_waveform(_recording(), tmp_path / "ecg.dcm")
    group = ds.WaveformSequence[0]
    assert (group.WaveformBitsAllocated, group.WaveformSampleInterpretation) == (16, "SS")
    assert "AcquisitionContextSequence" in ds and len(ds.AcquisitionContextSequence) == 0
    lead_i, avr = group.ChannelDefinitionSequence[0], group.ChannelDefinitionSequence[3]
    assert (lead_i.ChannelSourceSequence[0].CodeValue,
            lead_i.ChannelSourceSequence[0].CodeMeaning) == ("2:1", "Lead I")
    assert avr.ChannelSourceSequence[0].CodeValue == "2:62"
    unit = lead_i.ChannelSensitivityUnitsSequence[0]
    assert (unit.CodingSchemeDesignator, unit.CodeValue) == ("UCUM", "uV")
    assert float(lead_i.ChannelBaseline) == 0 and float(lead_i.ChannelSampleSkew) == 0
    counts = np.frombuffer(group.WaveformData, "<i2").reshape(-1, group.NumberOfWaveformChannels)
    assert int(np.abs(counts[:, 0]).max()).bit_length() < lead_i.WaveformBitsStored <= 16


def test_sampling_rates_outside_the_ecg_iods_are_refused() -> None:
    slow = _recording(rate_hz=150.0)
    with pytest.raises(EcgFormatError, match="150 Hz"):
        ecg_dataset(slow, study=None, series_instance_uid="1.2.3", sop_instance_uid="1.2.4")


def test_quantise_is_exact_on_the_grid_and_half_a_step_off_it() -> None:
    rng = np.random.default_rng(0)
    on_grid = rng.integers(-800, 800, 2000) * 4.88
    counts, sensitivity = quantise(on_grid, 4.88)
    assert sensitivity == "4.88"
    np.testing.assert_allclose(counts * 4.88, on_grid, rtol=0, atol=EPSILON)
    half_grid = rng.integers(-800, 800, 2000) * 2.44
    counts, sensitivity = quantise(half_grid, 4.88)
    assert float(sensitivity) == 2.44
    np.testing.assert_allclose(counts * 2.44, half_grid, rtol=0, atol=EPSILON)
    anywhere = rng.uniform(-3000, 3000, 2000)
    counts, sensitivity = quantise(anywhere, 4.88)
    assert np.max(np.abs(counts * float(sensitivity) - anywhere)) <= float(sensitivity) / 2
    huge = rng.uniform(-1e6, 1e6, 2000)                  # 1 V would overflow 16 bits at 1 µV
    counts, sensitivity = quantise(huge, 1.0)
    assert float(sensitivity) > 1.0 and np.max(np.abs(counts.astype(int))) <= 32767
    assert np.max(np.abs(counts * float(sensitivity) - huge)) <= float(sensitivity) / 2


# Detection and statements -----------------------------------------------------------------

def test_unknown_content_is_refused_naming_the_file(tmp_path: Path) -> None:
    for name, content in (("table.xml", b"patient_id;lead\nP1;II\n"), ("empty.scp", b""),
                          ("other.xml", b"<?xml version='1.0'?><ECGData><Lead/></ECGData>")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(EcgFormatError, match="not an ECG file") as info:
            read_ecg(path)
        assert str(path) in str(info.value)


def test_findings_from_statement_text() -> None:
    assert findings_in(["Sinus rhythm", "Left bundle branch block"]) == ["SINUS_RHYTHM", "LBBB"]
    assert findings_in(["Incomplete left bundle branch block"]) == []
    assert findings_in(["Sinusrhythmus, Linksschenkelblock"]) == ["SINUS_RHYTHM", "LBBB"]
    assert findings_in(["RITMO SINUSALE", "ECG NORMALE"]) == ["SINUS_RHYTHM"]
    assert findings_in(["1st degree AV block", "LVH with secondary repolarization"]) == [
        "AV_BLOCK_1", "LVH"]
    assert findings_in(["AV block in the history", "atrial flutter"]) == []


# Bad input --------------------------------------------------------------------------------

def _edit(path: Path, old: bytes, new: bytes) -> Path:
    data = path.read_bytes()
    assert old in data, old
    path.write_bytes(data.replace(old, new, 1))
    return path


def _truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _dicom_with_fewer_channels(path: Path) -> Path:
    ds = pydicom.dcmread(path)
    ds.WaveformSequence[0].NumberOfWaveformChannels = 11
    ds.save_as(path)
    return path


def _scp_with_a_flipped_sample(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF                         # a sample inside Section 6
    path.write_bytes(bytes(data))
    return path


def _muse_without_a_lead_crc_match(path: Path) -> Path:
    text = path.read_bytes()
    crc = re.search(rb"<LeadDataCRC32>(\d+)</LeadDataCRC32>", text)
    assert crc
    return _edit(path, crc.group(0), b"<LeadDataCRC32>%d</LeadDataCRC32>" % (int(crc.group(1)) ^ 1))


def _aecg_with_text_sample(path: Path) -> Path:
    text = path.read_text(encoding="utf-8")
    digits = re.search(r"<digits>(-?\d+) ", text)
    assert digits
    path.write_text(text.replace(digits.group(0), "<digits>12a ", 1), encoding="utf-8")
    return path


def _muse_with_bad_base64(path: Path) -> Path:
    data = path.read_bytes()
    start = data.index(b"<WaveFormData>") + len(b"<WaveFormData>")
    path.write_bytes(data[:start] + b"@@" + data[start + 2:])
    return path


BAD_INPUTS = {
    "muse-truncated": ("ge-muse", _truncated, "XML"),
    "philips-truncated": ("philips", _truncated, "XML"),
    "aecg-truncated": ("hl7-aecg", _truncated, "XML"),
    "scp-truncated": ("scp", _truncated, "declares"),
    "dicom-truncated": ("dicom", _truncated, "Waveform Data"),
    "muse-lead-count": ("ge-muse", lambda p: _edit(p, b"<NumberofLeads>8<", b"<NumberofLeads>9<"),
                        "declares 9 leads but holds 8"),
    "philips-lead-count": ("philips", lambda p: _edit(p, b'numberofleads="12"',
                                                      b'numberofleads="13"'),
                           "declares 13 leads but holds 12"),
    "dicom-lead-count": ("dicom", _dicom_with_fewer_channels, "declares 11 channels"),
    "aecg-non-numeric": ("hl7-aecg", _aecg_with_text_sample, "digits"),
    "muse-non-base64": ("ge-muse", _muse_with_bad_base64, "Base64"),
    "muse-crc": ("ge-muse", _muse_without_a_lead_crc_match, "CRC"),
    "scp-crc": ("scp", _scp_with_a_flipped_sample, "CRC"),
    "philips-non-numeric": ("philips", lambda p: _edit(p, b'durationperchannel="10000"',
                                                       b'durationperchannel="10 s"'),
                            "durationperchannel"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_the_file_and_the_reason(case: str, tmp_path: Path) -> None:
    source_format, damage, reason = BAD_INPUTS[case]
    path = damage(ECG_WRITERS[source_format](_recording(), tmp_path / f"{case}.ecg"))
    with pytest.raises(EcgFormatError) as info:
        read_ecg(path)
    assert str(path) in str(info.value)
    assert reason.lower() in str(info.value).lower()


def test_a_dicom_file_that_is_not_an_ecg_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ct.dcm"
    pydicom.dcmread(get_testdata_file("CT_small.dcm")).save_as(path)
    with pytest.raises(EcgFormatError, match="not an ECG waveform") as info:
        read_ecg(path)
    assert str(path) in str(info.value)


def test_scp_sections_have_valid_crcs_and_even_lengths(tmp_path: Path) -> None:
    """The writer's own structure, checked against the standard's rules independently."""
    data = ECG_WRITERS["scp"](_recording(), tmp_path / "x.scp").read_bytes()
    assert struct.unpack_from("<H", data)[0] == binascii.crc_hqx(data[2:], 0xFFFF)
    assert struct.unpack_from("<I", data, 2)[0] == len(data)
    pointers = data[6 + 16: 6 + struct.unpack_from("<I", data, 10)[0]]
    found = []
    for pos in range(0, len(pointers), 10):
        sid, length, index = struct.unpack_from("<HII", pointers, pos)
        if length:
            section = data[index - 1: index - 1 + length]
            assert struct.unpack_from("<H", section)[0] == binascii.crc_hqx(section[2:], 0xFFFF)
            assert struct.unpack_from("<H", section, 2)[0] == sid and length % 2 == 0
            found.append(sid)
    assert found == [0, 1, 2, 3, 6, 7, 8]


def test_uncompressed_scp_reads_as_the_huffman_encoded_one(tmp_path: Path) -> None:
    source = _recording(lbbb=True)
    huffman = read_ecg(write_scp(source, tmp_path / "huffman.scp"))
    plain = read_ecg(write_scp(source, tmp_path / "plain.scp", huffman=False))
    assert (tmp_path / "plain.scp").stat().st_size > (tmp_path / "huffman.scp").stat().st_size
    assert plain.measurements == huffman.measurements and plain.findings == huffman.findings
    for lead in source.leads:
        np.testing.assert_array_equal(plain.leads[lead], huffman.leads[lead])
