"""How each synthetic hospital exports its data: the heterogeneity the converter must absorb.

Real consortium sites differ in everything that is not standardised: column names (German,
English, abbreviations), date formats, delimiters, encodings, decimal marks, how they spell a
valve model or a yes, which tables and columns they have at all, and how their PACS export lays
out files. Each profile below is one such site, written down as data so the generator has no
site-specific branches. Sites 1-3 together carry every injected fault kind, so a three-site
consortium already exercises the whole quarantine path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

LAYOUTS = ("nested", "flat", "per_series")
FAULT_KINDS = ("bad_registry_date", "unreadable_dicom", "bad_procedure_date",
               "non_numeric_measurement", "unknown_patient_landmark", "truncated_ecg",
               "labelmap_geometry")


@dataclass(frozen=True)
class Table:
    """One exported CSV: its path below the site folder, headers and date format.

    ``columns`` maps canonical column -> the site's header; a canonical column the site does
    not export is simply absent (e.g. no smoking status).
    """

    file: str
    columns: dict[str, str]
    date_format: str = ""            # strptime format of its date columns; "" without dates


@dataclass(frozen=True)
class SiteProfile:
    """Everything that makes one site's export look the way it does."""

    institution: str
    id_format: str                  # str.format template over {site} (number) and {serial}
    registry: Table
    procedures: Table
    landmarks: Table | None
    measurements: Table | None
    prosthesis: dict[str, tuple[str, ...]]   # canonical model -> site spellings in use
    yes_no: tuple[str, str]
    smoking: dict[str, str]                  # canonical -> site spelling
    landmark_names: dict[str, str]           # canonical -> site spelling
    measurement_names: dict[str, str]        # canonical -> site spelling
    layout: str
    scanner: tuple[str, str, str]            # manufacturer, model, series description
    delimiter: str = ","
    encoding: str = "utf-8"
    decimal: str = "."
    line_terminator: str = "\n"
    quote_all: bool = False
    pad_ids_to: int = 0                      # right-justify table ids with blanks to this width
    size_decimals: int = 0                   # prosthesis size written as 26 or 26,0
    units: dict[str, str] = field(default_factory=dict)   # canonical UCUM unit -> site unit
    ops_text_column: str | None = None       # unmapped free-text column beside the OPS code
    faults: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown image layout {self.layout!r}")
        if unknown := set(self.faults) - set(FAULT_KINDS):
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")

    def patient_id(self, site_number: int, serial: int) -> str:
        """The DICOM PatientID this site gives consortium patient number ``serial``."""
        return self.id_format.format(site=site_number, serial=serial)


PROFILES: tuple[SiteProfile, ...] = (
    SiteProfile(
        institution="Universitätsklinikum Nordstadt",
        id_format="S{site:02d}-{serial:04d}",
        registry=Table("tables/TAVI_Register.csv", {
            "patient_id": "PatNr", "tavi_date": "Datum_TAVI", "prosthesis": "Klappentyp",
            "prosthesis_size": "Größe", "diabetes": "Diabetes", "smoking": "Nikotin",
            "lbbb": "LSB"}, "%d.%m.%Y"),
        procedures=Table("tables/OPS_Export.csv", {
            "patient_id": "PatNr", "code": "OPS", "date": "OPS_Datum"}, "%d.%m.%Y"),
        landmarks=Table("tables/Landmarken.csv", {
            "patient_id": "PatNr", "landmark": "Punkt", "x": "X_mm", "y": "Y_mm", "z": "Z_mm"}),
        measurements=Table("tables/Messwerte.csv", {
            "patient_id": "PatNr", "measurement": "Parameter", "value": "Wert",
            "unit": "Einheit"}),
        prosthesis={"SAPIEN3": ("Sapien 3 Ultra", "Sapien 3"), "MYVAL": ("Myval",),
                    "EVOLUT": ("Evolut PRO+", "Evolut R"), "ACURATE": ("ACURATE neo2",),
                    "PORTICO": ("Portico",)},
        yes_no=("ja", "nein"),
        smoking={"current": "aktiv", "former": "ehemals", "never": "nie"},
        landmark_names={"LCC_HINGE": "LCC-Hinge", "RCC_HINGE": "RCC-Hinge",
                        "NCC_HINGE": "NCC-Hinge", "LM_OSTIUM": "Ostium HSA",
                        "RCA_OSTIUM": "Ostium RCA"},
        measurement_names={"ANNULUS_DIAMETER": "Anulus-Durchmesser",
                           "ANNULUS_PERIMETER": "Anulus-Umfang", "ANNULUS_AREA": "Anulus-Fläche",
                           "MS_LENGTH": "MS-Länge", "CALCIUM_VOLUME": "Kalkvolumen",
                           "AGATSTON": "Agatston-Score"},
        layout="nested",
        scanner=("SIEMENS", "SOMATOM Force", "TAVI Angio 0.6 Bv40"),
        delimiter=";", encoding="latin-1", decimal=",", line_terminator="\r\n",
        units={"mm": "cm", "mm2": "cm2", "mm3": "ml", "1": "AU"},
        ops_text_column="OPS_Text",
        faults=("bad_registry_date", "unreadable_dicom", "truncated_ecg"),
    ),
    SiteProfile(
        institution="St. Vincent's Heart Centre",
        id_format="{serial:07d}",
        registry=Table("tables/registry.csv", {
            "patient_id": "MRN", "tavi_date": "procedure_date", "prosthesis": "valve",
            "prosthesis_size": "valve_size_mm", "diabetes": "diabetes",
            "smoking": "smoking_status", "lbbb": "lbbb"}, "%Y-%m-%d"),
        procedures=Table("tables/procedure_codes.csv", {
            "patient_id": "mrn", "code": "ops_code", "date": "date"}, "%Y%m%d"),
        landmarks=Table("tables/landmarks.csv", {
            "patient_id": "mrn", "landmark": "landmark", "x": "x", "y": "y", "z": "z"}),
        measurements=Table("tables/ct_measurements.csv", {
            "patient_id": "mrn", "measurement": "measurement", "value": "value",
            "unit": "unit"}),
        prosthesis={"SAPIEN3": ("SAPIEN 3", "S3", "S3UR"), "MYVAL": ("Myval",),
                    "EVOLUT": ("CoreValve Evolut R", "Evolut PRO+", "Evolut FX"),
                    "ACURATE": ("Acurate neo2",), "PORTICO": ("Portico",)},
        yes_no=("yes", "no"),
        smoking={"current": "current smoker", "former": "ex-smoker", "never": "never smoked"},
        landmark_names={"LCC_HINGE": "LCC hinge", "RCC_HINGE": "RCC hinge",
                        "NCC_HINGE": "NCC hinge", "LM_OSTIUM": "LM ostium",
                        "RCA_OSTIUM": "RCA ostium"},
        measurement_names={"ANNULUS_DIAMETER": "Annulus diameter",
                           "ANNULUS_PERIMETER": "Annulus perimeter",
                           "ANNULUS_AREA": "Annulus area", "MS_LENGTH": "MS length",
                           "CALCIUM_VOLUME": "Calcium volume", "AGATSTON": "Agatston score"},
        layout="flat",
        scanner=("GE MEDICAL SYSTEMS", "Revolution CT", "Cardiac 0.625 STND"),
        pad_ids_to=10,
        faults=("bad_registry_date", "non_numeric_measurement", "bad_procedure_date",
                "labelmap_geometry"),
    ),
    SiteProfile(
        institution="Herzzentrum Südwest",
        id_format="TAVI{serial}",
        registry=Table("tables/REG.txt", {
            "patient_id": "PID", "tavi_date": "TAVIDt", "prosthesis": "Prosth",
            "prosthesis_size": "Sz", "diabetes": "DM", "smoking": "Smk", "lbbb": "LBBB"},
            "%m/%d/%Y"),
        procedures=Table("tables/PROC.txt", {"patient_id": "PID", "code": "Code", "date": "Dt"},
                         "%m/%d/%Y"),
        landmarks=Table("tables/LMK.txt", {
            "patient_id": "PID", "landmark": "Lmk", "x": "X", "y": "Y", "z": "Z"}),
        measurements=Table("tables/MEAS.txt", {
            "patient_id": "PID", "measurement": "Param", "value": "Val", "unit": "Unit"}),
        prosthesis={"SAPIEN3": ("S3",), "MYVAL": ("MYV",), "EVOLUT": ("EVO",),
                    "ACURATE": ("ACN2",), "PORTICO": ("POR",)},
        yes_no=("1", "0"),
        smoking={"current": "1", "former": "2", "never": "0"},
        landmark_names={"LCC_HINGE": "LCC", "RCC_HINGE": "RCC", "NCC_HINGE": "NCC",
                        "LM_OSTIUM": "LM", "RCA_OSTIUM": "RCA"},
        measurement_names={"ANNULUS_DIAMETER": "AnnD", "ANNULUS_PERIMETER": "AnnP",
                           "ANNULUS_AREA": "AnnA", "MS_LENGTH": "MSL", "CALCIUM_VOLUME": "CaVol",
                           "AGATSTON": "AGS"},
        layout="per_series",
        scanner=("Philips", "IQon - Spectral CT", "TAVI CTA 0.9 XCB"),
        delimiter="\t", encoding="utf-8-sig",
        faults=("unknown_patient_landmark",),
    ),
    SiteProfile(                                     # no landmarks table
        institution="Klinikum am See",
        id_format="KAS{serial:06d}",
        registry=Table("tables/tavi.csv", {
            "patient_id": "Patienten-ID", "tavi_date": "OP-Datum", "prosthesis": "Prothese",
            "prosthesis_size": "Prothesengröße", "diabetes": "DM", "smoking": "Raucher",
            "lbbb": "Linksschenkelblock"}, "%Y%m%d"),
        procedures=Table("tables/prozeduren.csv", {
            "patient_id": "Patienten-ID", "code": "Prozedur", "date": "Datum"}, "%Y-%m-%d"),
        landmarks=None,
        measurements=Table("tables/ct_messungen.csv", {
            "patient_id": "Patienten-ID", "measurement": "Messung", "value": "Wert",
            "unit": "Einheit"}),
        prosthesis={"SAPIEN3": ("Edwards Sapien 3", "Edwards Sapien 3 Ultra"),
                    "MYVAL": ("Meril Myval",), "EVOLUT": ("Medtronic Evolut PRO+",),
                    "ACURATE": ("Boston ACURATE neo2",), "PORTICO": ("Abbott Portico",)},
        yes_no=("J", "N"),
        smoking={"current": "Raucher", "former": "Ex-Raucher", "never": "Nichtraucher"},
        landmark_names={},
        measurement_names={"ANNULUS_DIAMETER": "Annulus Durchmesser",
                           "ANNULUS_PERIMETER": "Annulus Umfang", "ANNULUS_AREA": "Annulus Fläche",
                           "MS_LENGTH": "Membranöses Septum", "CALCIUM_VOLUME": "Kalkvolumen",
                           "AGATSTON": "Agatston"},
        layout="nested",
        scanner=("CANON_MEC", "Aquilion ONE", "TAVI 0.5 FC43"),
        delimiter=";", decimal=",", size_decimals=1,
        units={"mm": "cm", "mm2": "cm2"},
        ops_text_column="Bezeichnung",
    ),
    SiteProfile(                                     # no smoking column
        institution="Riverside General Hospital",
        id_format="P{serial:06d}",
        registry=Table("tables/TAVIRegistry.csv", {
            "patient_id": "PatientID", "tavi_date": "TAVIDate", "prosthesis": "ValveType",
            "prosthesis_size": "ValveSize", "diabetes": "Diabetes", "lbbb": "LBBB"},
            "%d/%m/%Y"),
        procedures=Table("tables/Procedures.csv", {
            "patient_id": "PatientID", "code": "ProcedureCode", "date": "ProcedureDate"},
            "%d/%m/%Y"),
        landmarks=Table("tables/Landmarks.csv", {
            "patient_id": "PatientID", "landmark": "Landmark", "x": "X", "y": "Y", "z": "Z"}),
        measurements=Table("tables/Measurements.csv", {
            "patient_id": "PatientID", "measurement": "Measurement", "value": "Value",
            "unit": "Unit"}),
        prosthesis={"SAPIEN3": ("Sapien3",), "MYVAL": ("Myval",), "EVOLUT": ("EvolutPro",),
                    "ACURATE": ("AcurateNeo2",), "PORTICO": ("Portico",)},
        yes_no=("Y", "N"),
        smoking={},
        landmark_names={"LCC_HINGE": "LeftCoronaryCuspHinge", "RCC_HINGE": "RightCoronaryCuspHinge",
                        "NCC_HINGE": "NonCoronaryCuspHinge", "LM_OSTIUM": "LeftMainOstium",
                        "RCA_OSTIUM": "RightCoronaryOstium"},
        measurement_names={"ANNULUS_DIAMETER": "AnnulusDiameter",
                           "ANNULUS_PERIMETER": "AnnulusPerimeter", "ANNULUS_AREA": "AnnulusArea",
                           "MS_LENGTH": "MembranousSeptumLength",
                           "CALCIUM_VOLUME": "CalciumVolume", "AGATSTON": "AgatstonScore"},
        layout="flat",
        scanner=("SIEMENS", "SOMATOM Definition Flash", "CaScore+CTA B26f"),
        encoding="latin-1", quote_all=True,
    ),
    SiteProfile(                                     # no measurements table
        institution="Herz- und Gefäßzentrum Ostalb",
        id_format="HZ-{serial:05d}",
        registry=Table("tables/tavi_liste.tsv", {
            "patient_id": "PID", "tavi_date": "TAVI_Dat", "prosthesis": "Klappe",
            "prosthesis_size": "Gr_mm", "diabetes": "DM", "smoking": "Nikotin", "lbbb": "LSB"},
            "%Y-%m-%d"),
        procedures=Table("tables/ops.tsv", {"patient_id": "PID", "code": "OPS", "date": "Datum"},
                         "%Y-%m-%d"),
        landmarks=Table("tables/punkte.tsv", {
            "patient_id": "PID", "landmark": "Punkt", "x": "x", "y": "y", "z": "z"}),
        measurements=None,
        prosthesis={"SAPIEN3": ("S3U", "S3"), "MYVAL": ("Myval",), "EVOLUT": ("Evolut",),
                    "ACURATE": ("Acurate",), "PORTICO": ("Portico",)},
        yes_no=("true", "false"),
        smoking={"current": "Raucher", "former": "Exraucher", "never": "Nie"},
        landmark_names={"LCC_HINGE": "hinge_lcc", "RCC_HINGE": "hinge_rcc",
                        "NCC_HINGE": "hinge_ncc", "LM_OSTIUM": "ostium_lm",
                        "RCA_OSTIUM": "ostium_rca"},
        measurement_names={},
        layout="per_series",
        scanner=("SIEMENS", "SOMATOM Drive", "TAVI 0.75 I26f"),
        delimiter="\t",
    ),
    SiteProfile(
        institution="Städtisches Klinikum Westend",
        id_format="{serial:08d}",
        registry=Table("tables/tavi_register.csv", {
            "patient_id": "Pat-Nr.", "tavi_date": "Eingriff", "prosthesis": "Klappe",
            "prosthesis_size": "Größe (mm)", "diabetes": "Diabetes mellitus",
            "smoking": "Raucherstatus", "lbbb": "LSB"}, "%d.%m.%y"),
        procedures=Table("tables/leistungen.csv", {
            "patient_id": "Pat-Nr.", "code": "OPS-Kode", "date": "Leistungsdatum"}, "%d.%m.%Y"),
        landmarks=Table("tables/landmarken.csv", {
            "patient_id": "Pat-Nr.", "landmark": "Landmarke", "x": "x [mm]", "y": "y [mm]",
            "z": "z [mm]"}),
        measurements=Table("tables/messungen.csv", {
            "patient_id": "Pat-Nr.", "measurement": "Messgröße", "value": "Wert",
            "unit": "Einheit"}),
        prosthesis={"SAPIEN3": ("SAPIEN 3 Ultra RESILIA", "SAPIEN 3"), "MYVAL": ("MyVal",),
                    "EVOLUT": ("Evolut R", "Evolut PRO+"), "ACURATE": ("Acurate neo2",),
                    "PORTICO": ("Portico",)},
        yes_no=("Ja", "Nein"),
        smoking={"current": "Raucher aktiv", "former": "ehemaliger Raucher",
                 "never": "Nichtraucher"},
        landmark_names={"LCC_HINGE": "Hinge Point LCC", "RCC_HINGE": "Hinge Point RCC",
                        "NCC_HINGE": "Hinge Point NCC", "LM_OSTIUM": "Hauptstamm-Ostium",
                        "RCA_OSTIUM": "RCA-Ostium"},
        measurement_names={"ANNULUS_DIAMETER": "Diameter (mittel)", "ANNULUS_PERIMETER": "Umfang",
                           "ANNULUS_AREA": "Fläche", "MS_LENGTH": "MS-Länge",
                           "CALCIUM_VOLUME": "Ca-Volumen", "AGATSTON": "Agatston"},
        layout="nested",
        scanner=("Philips", "Brilliance iCT", "Herz CTA 0.67 CB"),
        delimiter=";", decimal=",", quote_all=True,
        units={"mm3": "ml"},
    ),
    SiteProfile(
        institution="Northgate University Medical Center",
        id_format="NG{serial:06d}",
        registry=Table("tables/tavr_registry.csv", {
            "patient_id": "MRN", "tavi_date": "TAVR_Date", "prosthesis": "Device",
            "prosthesis_size": "Device_Size", "diabetes": "DM", "smoking": "Tobacco",
            "lbbb": "Baseline_LBBB"}, "%m/%d/%Y"),
        procedures=Table("tables/encounter_procedures.csv", {
            "patient_id": "MRN", "code": "OPS", "date": "Service_Date"}, "%Y-%m-%d"),
        landmarks=Table("tables/ct_landmarks.csv", {
            "patient_id": "MRN", "landmark": "Point", "x": "X_mm", "y": "Y_mm", "z": "Z_mm"}),
        measurements=Table("tables/ct_report_values.csv", {
            "patient_id": "MRN", "measurement": "Item", "value": "Result", "unit": "Units"}),
        prosthesis={"SAPIEN3": ("Edwards SAPIEN 3 Ultra",), "MYVAL": ("Meril Myval",),
                    "EVOLUT": ("Medtronic Evolut PRO+", "Medtronic CoreValve Evolut R"),
                    "ACURATE": ("Boston Scientific ACURATE neo2",),
                    "PORTICO": ("Abbott Portico",)},
        yes_no=("Yes", "No"),
        smoking={"current": "Current", "former": "Former", "never": "Never"},
        landmark_names={"LCC_HINGE": "Left coronary cusp nadir",
                        "RCC_HINGE": "Right coronary cusp nadir",
                        "NCC_HINGE": "Non-coronary cusp nadir", "LM_OSTIUM": "LMCA ostium",
                        "RCA_OSTIUM": "RCA ostium"},
        measurement_names={"ANNULUS_DIAMETER": "Annulus mean diameter",
                           "ANNULUS_PERIMETER": "Annulus perimeter",
                           "ANNULUS_AREA": "Annulus area", "MS_LENGTH": "Membranous septum",
                           "CALCIUM_VOLUME": "AV calcium volume",
                           "AGATSTON": "AV Agatston score"},
        layout="flat",
        scanner=("GE MEDICAL SYSTEMS", "Revolution Apex", "TAVR CTA 0.625"),
        encoding="utf-8-sig", line_terminator="\r\n",
        units={"mm2": "cm2", "mm3": "cm3"},
    ),
)


def site_profiles(sites: int) -> list[tuple[str, int, SiteProfile]]:
    """``(site id, site number, profile)`` for ``sites`` sites, cycling through ``PROFILES``.

    A site of a later cycle is a distinct hospital with the same export habits, so its
    institution name gets a suffix; its patient ids stay distinct through the site number and
    the consortium-wide serial.
    """
    result = []
    for number in range(1, sites + 1):
        cycle, index = divmod(number - 1, len(PROFILES))
        profile = PROFILES[index]
        if cycle:
            profile = dataclasses.replace(profile,
                                          institution=f"{profile.institution} ({cycle + 1})")
        result.append((f"site-{number:02d}", number, profile))
    return result
