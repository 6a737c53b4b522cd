"""The catalogue: every way a site export was seen to break srcohort, each with what it must do.

Each case damages a copy of a small synthetic site (``tests.hostile.judge`` converts it) and
says what must be refused, with which words, and which valid inputs may stop converting
because they are the damaged ones. Everything else the undamaged site converts must still
convert. Families: confinement (paths and links that leave the site), dicom (files that only
lenient readers read), identity (ids that would merge or split patients), nonsense (values no
site can have), spreadsheet (what Excel and typos do to tables and mappings), ecg and labelmap.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.hostile.judge import Case, Expect, Refused
from tests.hostile.kit import (Site, drop_element, gzip_truncated, pixel_length,
                               raw_patient_id, set_element, with_transfer_syntax)

OUTSIDE_SECRET = "secret.txt"
REGISTRY_LINE = 3            # a valid registry row of the base site (line 2 is a known fault)
CT_PATIENT = "S01-0003"      # a patient with a complete CT and a label map
CT_SEG_LINE = 3              # that label map's row in the segmentations table


def _ct(site: Site) -> list[Path]:
    return sorted(p for p in (site.root / "images" / CT_PATIENT).rglob("*.dcm"))


def _slice(site: Site, index: int = 1) -> Path:
    return _ct(site)[index]


def _refuse_file(site: Site, path: Path, reason: str) -> Expect:
    rel = site.rel(path)
    return Expect([Refused(rel, reason)], touched={(rel, None)})


def _refuse_row(site: Site, table: str, line: int, reason: str) -> Expect:
    rel = site.table_rel(table)
    return Expect([Refused(rel, reason, line)], touched={(rel, line)})


def _mapping(words: str) -> Expect:
    return Expect(mapping_error=words)


def _rows_of(site: Site, patients: set[str]) -> set[tuple[str, int | None]]:
    """Every table row of these patients outside the registry: what a refused registry
    makes unknown when the patient has no images to be known by."""
    rows: set[tuple[str, int | None]] = set()
    mapping = site.mapping()
    for name in ("procedures", "landmarks", "measurements", "segmentations"):
        spec = mapping["tables"][name]
        delimiter = spec.get("delimiter", ",")
        lines = site.table_lines(name)
        column = lines[0].split(delimiter).index(spec["columns"]["patient_id"])
        rows |= {(site.table_rel(name), n) for n, line in enumerate(lines[1:], start=2)
                 if line.split(delimiter)[column].strip() in patients}
    return rows


def _without_images(site: Site) -> set[str]:
    """Patients of the registry with no images folder: known through the registry only."""
    spec = site.mapping()["tables"]["registry"]
    delimiter = spec.get("delimiter", ",")
    lines = site.table_lines("registry")
    column = lines[0].split(delimiter).index(spec["columns"]["patient_id"])
    listed = {line.split(delimiter)[column].strip() for line in lines[1:]}
    return listed - {p.name for p in (site.root / "images").iterdir()}


def _registry_line_patient(site: Site) -> str:
    spec = site.mapping()["tables"]["registry"]
    return site.table_lines("registry")[REGISTRY_LINE - 1].split(spec["delimiter"])[0]


def _label_maps(site: Site) -> set[tuple[str, int | None]]:
    return {(site.rel(p), None) for p in (site.root / "labelmaps").iterdir()}


# -- confinement ---------------------------------------------------------------------------
def registry_absolute(site: Site) -> Expect:
    secret = site.outside / OUTSIDE_SECRET
    site.edit_mapping(lambda m: m["tables"]["registry"].update(file=str(secret)))
    return _mapping("absolute path")


def registry_etc_passwd(site: Site) -> Expect:
    def change(m: dict) -> None:
        m["tables"]["registry"].update(file="/etc/passwd", delimiter=":")
        m["tables"]["registry"]["columns"] = {"patient_id": "root"}
        m["tables"]["registry"].pop("values", None)
    site.edit_mapping(change)
    return _mapping("absolute path")


def registry_climbs_out(site: Site) -> Expect:
    site.edit_mapping(lambda m: m["tables"]["registry"].update(file=f"../outside/{OUTSIDE_SECRET}"))
    return _mapping("climbs out")


def registry_link_out(site: Site) -> Expect:
    site.link(site.outside / OUTSIDE_SECRET, site.root / "tables" / "linked.csv")
    site.edit_mapping(lambda m: m["tables"]["registry"].update(file="tables/linked.csv"))
    return _mapping("leaves the site folder")


def images_absolute(site: Site) -> Expect:
    site.edit_mapping(lambda m: m.update(images="/etc"))
    return _mapping("absolute path")


def images_climb(site: Site) -> Expect:
    site.edit_mapping(lambda m: m.update(images="../outside"))
    return _mapping("climbs out")


def images_missing(site: Site) -> Expect:
    site.edit_mapping(lambda m: m.update(images="no-such-folder"))
    return _mapping("does not exist")


def ecg_etc(site: Site) -> Expect:
    site.edit_mapping(lambda m: m.update(ecg="/etc"))
    return _mapping("absolute path")


def ecg_is_a_file(site: Site) -> Expect:
    site.edit_mapping(lambda m: m.update(ecg="tables/labels.csv"))
    return _mapping("is not a folder")


def label_table_outside(site: Site) -> Expect:
    site.edit_mapping(lambda m: m.update(label_table="/etc/passwd"))
    return _mapping("absolute path")


def image_link_out(site: Site) -> Expect:
    link = site.link(site.outside_dicom(), site.root / "images" / "linked.dcm")
    return _refuse_file(site, link, "leaves the site folder")


def image_folder_link_out(site: Site) -> Expect:
    site.outside_dicom()
    link = site.link(site.outside, site.root / "images" / "elsewhere")
    return _refuse_file(site, link, "links are not followed")


def image_link_loop(site: Site) -> Expect:
    link = site.link(site.root / "images", site.root / "images" / "loop")
    return _refuse_file(site, link, "links are not followed")


def image_broken_link(site: Site) -> Expect:
    link = site.link(site.root / "images" / "gone.dcm", site.root / "images" / "broken.dcm")
    return _refuse_file(site, link, "cannot be read")


def image_fifo(site: Site) -> Expect:
    fifo = site.root / "images" / "pipe.dcm"
    os.mkfifo(fifo)
    return _refuse_file(site, fifo, "not a regular file")


def ecg_link_out(site: Site) -> Expect:
    link = site.link(site.outside / OUTSIDE_SECRET, site.root / "ecg" / "linked.xml")
    return _refuse_file(site, link, "leaves the site folder")


def segmentation_row_absolute(site: Site) -> Expect:
    line = site.add_row("segmentations", {"patient_id": CT_PATIENT,
                                          "file": str(site.outside / OUTSIDE_SECRET)})
    return _refuse_row(site, "segmentations", line, "absolute path")


def segmentation_row_climbs(site: Site) -> Expect:
    line = site.add_row("segmentations", {"patient_id": CT_PATIENT,
                                          "file": f"../outside/{OUTSIDE_SECRET}"})
    return _refuse_row(site, "segmentations", line, "climbs out")


def segmentation_row_link(site: Site) -> Expect:
    site.link(site.outside / OUTSIDE_SECRET, site.root / "labelmaps" / "linked.nii.gz")
    line = site.add_row("segmentations", {"patient_id": CT_PATIENT,
                                          "file": "labelmaps/linked.nii.gz"})
    return _refuse_row(site, "segmentations", line, "leaves the site folder")


# -- broken DICOM --------------------------------------------------------------------------
def truncated_slice(site: Site) -> Expect:
    path = _slice(site)
    path.write_bytes(path.read_bytes()[:-100])
    return _refuse_file(site, path, "cut off")


def truncated_header(site: Site) -> Expect:
    path = _slice(site)
    path.write_bytes(path.read_bytes()[:300])
    return _refuse_file(site, path, "DICOM")


def jpeg_over_native(site: Site) -> Expect:
    path = _slice(site)
    with_transfer_syntax(path, "1.2.840.10008.1.2.4.50")
    return _refuse_file(site, path, "needs encapsulated fragments")


def explicit_under_implicit(site: Site) -> Expect:
    path = _slice(site)
    with_transfer_syntax(path, "1.2.840.10008.1.2")
    return _refuse_file(site, path, "not encoded as the file meta")


def huge_pixel_length(site: Site) -> Expect:
    path = _slice(site)
    pixel_length(path, 0xFFFFFFF0)
    return _refuse_file(site, path, "cut off")


def short_pixel_data(site: Site) -> Expect:
    path = _slice(site)
    set_element(path, "Rows", 64)
    return _refuse_file(site, path, "pixel data holds")


def unknown_transfer_syntax(site: Site) -> Expect:
    path = _slice(site)
    with_transfer_syntax(path, "1.2.3.4.5")
    return _refuse_file(site, path, "no known transfer syntax")


def no_preamble(site: Site) -> Expect:
    path = _slice(site)
    path.write_bytes(path.read_bytes()[132:])
    return _refuse_file(site, path, "not readable as DICOM")


def empty_file(site: Site) -> Expect:
    path = _slice(site)
    path.write_bytes(b"")
    return _refuse_file(site, path, "not readable as DICOM")


def random_bytes(site: Site) -> Expect:
    path = site.root / "images" / "noise.dcm"
    path.write_bytes(bytes(range(256)) * 40)
    return _refuse_file(site, path, "not readable as DICOM")


def text_in_images(site: Site) -> Expect:
    path = site.root / "images" / "README.txt"
    path.write_text("exported by PACS\n")
    return _refuse_file(site, path, "not readable as DICOM")


def hidden_file(site: Site) -> Expect:
    path = site.root / "images" / ".DS_Store"
    path.write_bytes(b"\x00\x00\x00\x01Bud1")
    return _refuse_file(site, path, "not readable as DICOM")


def no_sop_instance_uid(site: Site) -> Expect:
    path = _slice(site)
    drop_element(path, "SOPInstanceUID")
    return _refuse_file(site, path, "lacks SOPInstanceUID")


def bad_uid_syntax(site: Site) -> Expect:
    path = _slice(site)
    set_element(path, "SOPInstanceUID", "1.2.abc.3")
    return _refuse_file(site, path, "not a valid UID")


def long_uid(site: Site) -> Expect:
    path = _slice(site)
    set_element(path, "SeriesInstanceUID", "1." + "2" * 80)
    return _refuse_file(site, path, "not a valid UID")


def image_without_pixels(site: Site) -> Expect:
    path = _slice(site)
    drop_element(path, "PixelData")
    return _refuse_file(site, path, "without pixel data")


def identical_copy(site: Site) -> Expect:
    source = _slice(site)
    copy = site.root / "images" / "again" / "copy.dcm"
    copy.parent.mkdir()
    shutil.copyfile(source, copy)
    return Expect(duplicates=[site.rel(copy)])


def same_uid_other_content(site: Site) -> Expect:
    source = _slice(site)
    other = site.root / "images" / "other" / "other.dcm"
    other.parent.mkdir()
    shutil.copyfile(source, other)
    set_element(other, "SeriesDescription", "changed")
    rel, other_rel = site.rel(source), site.rel(other)
    return Expect([Refused(rel, "different content"), Refused(other_rel, "different content")],
                  touched={(rel, None), (other_rel, None)})


# -- identity ------------------------------------------------------------------------------
def patient_id_invalid_utf8(site: Site) -> Expect:
    path = _slice(site)
    raw_patient_id(path, b"S01-\xff\xfe03")
    return _refuse_file(site, path, "not valid in its character set")


def two_invalid_utf8_ids(site: Site) -> Expect:
    first, second = _slice(site, 1), _slice(site, 2)
    raw_patient_id(first, b"P\xff1")
    raw_patient_id(second, b"P\xfe1")
    return Expect([Refused(site.rel(first), "not valid in its character set"),
                   Refused(site.rel(second), "not valid in its character set")],
                  touched={(site.rel(first), None), (site.rel(second), None)})


def patient_id_backslash(site: Site) -> Expect:
    path = _slice(site)
    set_element(path, "PatientID", "S01-0003\\S01-0004")
    return _refuse_file(site, path, "several values")


def patient_id_nul(site: Site) -> Expect:
    path = _slice(site)
    set_element(path, "PatientID", "S01\x000003")
    return _refuse_file(site, path, "control character")


def patient_id_huge(site: Site) -> Expect:
    path = _slice(site)
    set_element(path, "PatientID", "9" * 10000)
    return _refuse_file(site, path, "at most 64")


def patient_id_empty(site: Site) -> Expect:
    path = _slice(site)
    set_element(path, "PatientID", "")
    return _refuse_file(site, path, "lacks PatientID")


def registry_id_huge(site: Site) -> Expect:
    orphans = _rows_of(site, {_registry_line_patient(site)})
    site.set_cell("registry", REGISTRY_LINE, "patient_id", "7" * 10000)
    expect = _refuse_row(site, "registry", REGISTRY_LINE, "at most 64")
    expect.touched |= orphans                 # the patient's id is the broken value
    return expect


def registry_id_control(site: Site) -> Expect:
    orphans = _rows_of(site, {_registry_line_patient(site)})
    site.set_cell("registry", REGISTRY_LINE, "patient_id", "S01\x070002")
    expect = _refuse_row(site, "registry", REGISTRY_LINE, "control character")
    expect.touched |= orphans
    return expect


def ecg_patient_id_backslash(site: Site) -> Expect:
    path = site.ecgs()[0]
    text = path.read_bytes()
    path.write_bytes(text.replace(b"<PatientID>S01-0001</PatientID>",
                                  b"<PatientID>S01-0001\\S01-0003</PatientID>"))
    return _refuse_file(site, path, "backslash")


# -- nonsense values -----------------------------------------------------------------------
def two_digit_year_future(site: Site) -> Expect:
    def change(m: dict) -> None:
        m["tables"]["registry"]["date_format"] = "%d.%m.%y"
    lines = site.table_lines("registry")
    site.edit_mapping(change)
    site.write_table_lines("registry", [lines[0]] + [
        _two_digit(line) for line in lines[1:]])
    site.set_cell("registry", REGISTRY_LINE, "tavi_date", "17.03.68")
    return _refuse_row(site, "registry", REGISTRY_LINE, "after the conversion date")


def _two_digit(line: str) -> str:
    cells = line.split(";")
    if len(cells) > 1 and len(cells[1]) == 10:
        cells[1] = cells[1][:6] + cells[1][8:]
    return ";".join(cells)


def date_before_1900(site: Site) -> Expect:
    site.set_cell("registry", REGISTRY_LINE, "tavi_date", "17.03.1850")
    return _refuse_row(site, "registry", REGISTRY_LINE, "before 1900")


def date_in_future(site: Site) -> Expect:
    site.set_cell("registry", REGISTRY_LINE, "tavi_date", "17.03.2099")
    return _refuse_row(site, "registry", REGISTRY_LINE, "after the conversion date")


def procedure_date_in_future(site: Site) -> Expect:
    site.set_cell("procedures", 2, "date", "01.01.2090")
    return _refuse_row(site, "procedures", 2, "after the conversion date")


def valve_negative(site: Site) -> Expect:
    site.set_cell("registry", REGISTRY_LINE, "prosthesis_size", "-26")
    return _refuse_row(site, "registry", REGISTRY_LINE, "plausible range")


def valve_huge(site: Site) -> Expect:
    site.set_cell("registry", REGISTRY_LINE, "prosthesis_size", "1e308")
    return _refuse_row(site, "registry", REGISTRY_LINE, "plausible range")


def valve_infinite(site: Site) -> Expect:
    site.set_cell("registry", REGISTRY_LINE, "prosthesis_size", "inf")
    return _refuse_row(site, "registry", REGISTRY_LINE, "finite")


def valve_nan(site: Site) -> Expect:
    site.set_cell("registry", REGISTRY_LINE, "prosthesis_size", "nan")
    return _refuse_row(site, "registry", REGISTRY_LINE, "finite")


def ops_formula(site: Site) -> Expect:
    site.set_cell("procedures", 2, "code", '=HYPERLINK("http://x","5-35a.01")')
    return _refuse_row(site, "procedures", 2, "spreadsheet formula")


def ops_plus_formula(site: Site) -> Expect:
    site.set_cell("procedures", 2, "code", "+5-35a.01")
    return _refuse_row(site, "procedures", 2, "spreadsheet formula")


def ops_nonsense(site: Site) -> Expect:
    site.set_cell("procedures", 2, "code", "hello")
    return _refuse_row(site, "procedures", 2, "not an OPS code")


def landmark_far_away(site: Site) -> Expect:
    site.set_cell("landmarks", 2, "x", "1000000000")
    return _refuse_row(site, "landmarks", 2, "plausible range")


def measurement_negative(site: Site) -> Expect:
    site.set_cell("measurements", 2, "value", "-5")
    return _refuse_row(site, "measurements", 2, "plausible range")


def measurement_overflow(site: Site) -> Expect:
    site.set_cell("measurements", 2, "value", "1e400")
    return _refuse_row(site, "measurements", 2, "finite")


def value_not_in_site_table(site: Site) -> Expect:
    site.set_cell("registry", REGISTRY_LINE, "prosthesis", "@SUM(A1)")
    return _refuse_row(site, "registry", REGISTRY_LINE, "not in the site's value table")


# -- spreadsheet reality -------------------------------------------------------------------
def bom_with_utf8(site: Site) -> Expect:
    lines = site.table_lines("registry")
    site.edit_mapping(lambda m: m["tables"]["registry"].update(encoding="utf-8"))
    site.write_table_lines("registry", lines, "utf-8", prefix=b"\xef\xbb\xbf")
    return Expect()                          # read as it is: nothing refused, nothing lost


def bom_with_latin1(site: Site) -> Expect:
    orphans = _rows_of(site, _without_images(site))
    lines = site.table_lines("registry")
    site.write_table_lines("registry", lines, "utf-8", prefix=b"\xef\xbb\xbf")
    rel = site.table_rel("registry")
    return Expect([Refused(rel, "set encoding: utf-8")],
                  touched={(rel, n) for n in range(1, len(lines) + 1)} | orphans)


def latin1_read_as_utf8(site: Site) -> Expect:
    orphans = _rows_of(site, _without_images(site))
    site.edit_mapping(lambda m: m["tables"]["registry"].update(encoding="utf-8"))
    rel = site.table_rel("registry")
    return Expect([Refused(rel, "set 'encoding'")],
                  touched={(rel, n) for n in range(1, 50)} | orphans)


def line_endings(site: Site) -> Expect:
    """The same table with LF and with CRLF line ends (the base has CRLF in one table)."""
    for name in ("procedures", "landmarks"):
        path = site.table_path(name)
        data = path.read_bytes().replace(b"\r\n", b"\n")
        path.write_bytes(data if name == "procedures" else data.replace(b"\n", b"\r\n"))
    return Expect()


def extra_cells(site: Site) -> Expect:
    lines = site.table_lines("landmarks")
    site.write_table_lines("landmarks", [lines[0]] + [line + ";extra;cells" for line in lines[1:]])
    return Expect()


def key_typo_delimiter(site: Site) -> Expect:
    site.edit_mapping(lambda m: m["tables"]["registry"].update(
        delimeter=m["tables"]["registry"].pop("delimiter")))
    return _mapping("did you mean 'delimiter'")


def key_typo_tables(site: Site) -> Expect:
    site.edit_mapping(lambda m: m.update(tabels=m.pop("tables")))
    return _mapping("did you mean 'tables'")


def unknown_table(site: Site) -> Expect:
    site.edit_mapping(lambda m: m["tables"].update(registy=m["tables"].pop("registry")))
    return _mapping("did you mean 'registry'")


def unknown_encoding(site: Site) -> Expect:
    site.edit_mapping(lambda m: m["tables"]["registry"].update(encoding="utf-9"))
    return _mapping("unknown encoding")


def bad_date_format(site: Site) -> Expect:
    site.edit_mapping(lambda m: m["tables"]["registry"].update(date_format="dd.mm.yyyy"))
    return _mapping("not a strptime date format")


def long_delimiter(site: Site) -> Expect:
    site.edit_mapping(lambda m: m["tables"]["registry"].update(delimiter=";;"))
    return _mapping("expected one character")


def value_table_target_unknown(site: Site) -> Expect:
    site.edit_mapping(lambda m: m["tables"]["registry"]["values"]["prosthesis"].update(
        {"Mystery": "MYSTERY"}))
    return _mapping("is not a value of 'prosthesis'")


def mapping_not_yaml(site: Site) -> Expect:
    site.write_mapping_text("site: [unclosed\n")
    return _mapping("not valid YAML")


def mapping_missing(site: Site) -> Expect:
    (site.root / "mapping.yaml").unlink()
    return _mapping("cannot read mapping")


def site_id_path(site: Site) -> Expect:
    site.edit_mapping(lambda m: m.update(site="../x"))
    return _mapping("short id")


def duplicated_header(site: Site) -> Expect:
    lines = site.table_lines("landmarks")
    header = lines[0].split(";")
    lines[0] = ";".join(header[:-1] + [header[1]])       # the last column named like another
    site.write_table_lines("landmarks", lines)
    rel = site.table_rel("landmarks")
    return Expect([Refused(rel, "lacks mapped columns", 1)],
                  touched={(rel, n) for n in range(1, 200)})


def empty_table(site: Site) -> Expect:
    site.table_path("measurements").write_bytes(b"")
    rel = site.table_rel("measurements")
    return Expect([Refused(rel, "is empty")], touched={(rel, n) for n in range(1, 200)})


def nul_in_table(site: Site) -> Expect:
    site.set_cell("procedures", 2, "patient_id", "S01-0001\x00")
    return _refuse_row(site, "procedures", 2, "control character")


def huge_cell(site: Site) -> Expect:
    orphans = _rows_of(site, {_registry_line_patient(site)})
    site.set_cell("registry", REGISTRY_LINE, "patient_id", "A" * 300_000)
    expect = _refuse_row(site, "registry", REGISTRY_LINE, "at most 64")
    expect.touched |= orphans
    return expect


# -- ECG files -----------------------------------------------------------------------------
def ecg_truncated(site: Site) -> Expect:
    path = site.ecgs()[0]
    path.write_bytes(path.read_bytes()[:400])
    return _refuse_file(site, path, str(path.name))


def ecg_xml_bomb(site: Site) -> Expect:
    path = site.root / "ecg" / "bomb.xml"
    entities = "".join(f'<!ENTITY e{i} "&e{i - 1};&e{i - 1};&e{i - 1};&e{i - 1};">'
                       for i in range(1, 12))
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE RestingECG [<!ENTITY e0 "lol">{entities}]>'
                    f"<RestingECG><PatientDemographics><PatientID>&e11;</PatientID>"
                    f"</PatientDemographics></RestingECG>")
    return _refuse_file(site, path, "bomb.xml")


def ecg_xxe(site: Site) -> Expect:
    path = site.root / "ecg" / "xxe.xml"
    secret = site.outside / OUTSIDE_SECRET
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE RestingECG [<!ENTITY x SYSTEM '
                    f'"file://{secret}">]><RestingECG><PatientDemographics><PatientID>&x;'
                    f"</PatientID></PatientDemographics></RestingECG>")
    return _refuse_file(site, path, "xxe.xml")


def ecg_empty(site: Site) -> Expect:
    path = site.root / "ecg" / "empty.xml"
    path.write_bytes(b"")
    return _refuse_file(site, path, "empty.xml")


def ecg_garbage(site: Site) -> Expect:
    path = site.root / "ecg" / "garbage.bin"
    path.write_bytes(os.urandom(2048))
    return _refuse_file(site, path, "garbage.bin")


def ecg_unknown_patient(site: Site) -> Expect:
    path = site.ecgs()[0]
    path.write_bytes(path.read_bytes().replace(b"<PatientID>S01-0001</PatientID>",
                                               b"<PatientID>NOBODY-42</PatientID>"))
    return _refuse_file(site, path, "matches no images nor registry row")


# -- label maps ----------------------------------------------------------------------------
def _label_map_row(site: Site) -> tuple[str, Expect]:
    rel = site.table_lines("segmentations")[CT_SEG_LINE - 1].split(",")[1]
    return rel, Expect(touched={(rel, None), (site.table_rel("segmentations"), CT_SEG_LINE)})


def labelmap_truncated(site: Site) -> Expect:
    rel, expect = _label_map_row(site)
    gzip_truncated(site.root / rel)
    expect.refused.append(Refused(site.table_rel("segmentations"), rel, CT_SEG_LINE))
    return expect


def labelmap_missing(site: Site) -> Expect:
    rel, expect = _label_map_row(site)
    (site.root / rel).unlink()
    expect.refused.append(Refused(site.table_rel("segmentations"), "No such file", CT_SEG_LINE))
    return expect


def labelmap_unknown_label(site: Site) -> Expect:
    table = site.root / "tables" / "labels.csv"
    lines = table.read_text().splitlines()
    table.write_text("\n".join(lines[:2]) + "\n")        # label 2 no longer named
    rel = site.table_rel("segmentations")
    return Expect([Refused(rel, "not in the label table", CT_SEG_LINE)],
                  touched={(rel, n) for n in range(2, 4)} | _label_maps(site))


def label_table_missing(site: Site) -> Expect:
    (site.root / "tables" / "labels.csv").unlink()
    rel = site.table_rel("segmentations")
    return Expect([Refused(rel, "label table unusable", CT_SEG_LINE)],
                  touched={(rel, n) for n in range(1, 50)} | _label_maps(site))


def broken_slice_keeps_label_map(site: Site) -> Expect:
    """A broken slice is refused; the rest of its series and the series' label map convert."""
    path = _slice(site, 1)
    path.write_bytes(path.read_bytes()[:-50])
    return _refuse_file(site, path, "cut off")


CASES: tuple[Case, ...] = tuple(
    Case(function.__name__, family, function) for family, functions in (
        ("confinement", (registry_absolute, registry_etc_passwd, registry_climbs_out,
                         registry_link_out, images_absolute, images_climb, images_missing,
                         ecg_etc, ecg_is_a_file, label_table_outside, image_link_out,
                         image_folder_link_out, image_link_loop, image_broken_link, image_fifo,
                         ecg_link_out, segmentation_row_absolute, segmentation_row_climbs,
                         segmentation_row_link)),
        ("dicom", (truncated_slice, truncated_header, jpeg_over_native, explicit_under_implicit,
                   huge_pixel_length, short_pixel_data, unknown_transfer_syntax, no_preamble,
                   empty_file, random_bytes, text_in_images, hidden_file, no_sop_instance_uid,
                   bad_uid_syntax, long_uid, image_without_pixels, identical_copy,
                   same_uid_other_content, broken_slice_keeps_label_map)),
        ("identity", (patient_id_invalid_utf8, two_invalid_utf8_ids, patient_id_backslash,
                      patient_id_nul, patient_id_huge, patient_id_empty, registry_id_huge,
                      registry_id_control, ecg_patient_id_backslash)),
        ("nonsense", (two_digit_year_future, date_before_1900, date_in_future,
                      procedure_date_in_future, valve_negative, valve_huge, valve_infinite,
                      valve_nan, ops_formula, ops_plus_formula, ops_nonsense, landmark_far_away,
                      measurement_negative, measurement_overflow, value_not_in_site_table)),
        ("spreadsheet", (bom_with_utf8, bom_with_latin1, latin1_read_as_utf8, line_endings,
                         extra_cells, key_typo_delimiter, key_typo_tables, unknown_table,
                         unknown_encoding, bad_date_format, long_delimiter,
                         value_table_target_unknown, mapping_not_yaml, mapping_missing,
                         site_id_path, duplicated_header, empty_table, nul_in_table,
                         huge_cell)),
        ("ecg", (ecg_truncated, ecg_xml_bomb, ecg_xxe, ecg_empty, ecg_garbage,
                 ecg_unknown_patient)),
        ("labelmap", (labelmap_truncated, labelmap_missing, labelmap_unknown_label,
                      label_table_missing)),
    ) for function in functions)
