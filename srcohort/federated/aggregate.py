"""One site's cohort -> the aggregate it may publish (pure: patient documents in, JSON out).

What leaves a site is counts and summary statistics only. The aggregate is assembled from
channel names (from the installed SR profiles), field names (the profiles' ``field``) and
numbers; no value of a patient document other than those counts and statistics is copied,
so identifiers, dates, free text and UIDs cannot appear in it. docs/federated.md has the schema.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from srcohort.cohort.definition import Cohort
from srcohort.cohort.label import LABELS, LabelSpec
from srcohort.federated.suppression import SUPPRESSED, Relation, suppress
from srcohort.index.documents import patient_doc_id
from srcohort.sr.profiles import Profile

SCHEMA = "srcohort.federated.site/1"
DEFAULT_K = 5
IMAGING_CHANNELS = ("CT", "ECG", "SEG")     # series modalities; ECG = waveform series
OTHER_SR = "SR other"                       # an SR no installed profile recognises
OTHER_COMBINATIONS = "other"                # intersections below k, pooled
NO_CHANNEL = "none"
DIGITS = 6                                  # published statistics: enough to pool exactly

Aggregate = dict[str, Any]


def profile_channel(profile: Profile) -> str:
    """Readable channel name: ``SR TID 1500`` for DICOM templates, ``SR <template>`` else (``srcohort-`` dropped)."""
    if profile.template_id:
        return f"SR TID {profile.template_id}"
    return f"SR {profile.template.removeprefix('srcohort-')}"


@dataclass(frozen=True)
class Parameters:
    """What an aggregate was computed with: sites may only be combined when these agree."""
    channels: tuple[str, ...]
    profile_channels: Mapping[str, str]         # profile template -> channel
    label_channels: tuple[str, ...]             # channels of the profiles declaring the label
    features: Mapping[str, tuple[str, ...]]     # quantitative field -> channels declaring it
    label: LabelSpec                            # the training label, as the export reads it

    @classmethod
    def from_profiles(cls, profiles: Sequence[Profile], label: LabelSpec) -> "Parameters":
        by_template = {p.template: profile_channel(p) for p in profiles}
        features: dict[str, set[str]] = {}
        labelled: set[str] = set()
        for profile in profiles:
            for node in profile.fields.values():
                if node.filter == "quantitative":
                    features.setdefault(str(node.field), set()).add(by_template[profile.template])
            if profile.template == label.profile:
                labelled.add(by_template[profile.template])
        return cls(IMAGING_CHANNELS + tuple(sorted(set(by_template.values()))) + (OTHER_SR,),
                   dict(sorted(by_template.items())), tuple(sorted(labelled)),
                   {f: tuple(sorted(c)) for f, c in sorted(features.items())}, label)

    def to_json(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "label": {
                    "name": self.label.name, "template": self.label.profile,
                    "field": self.label.field,
                    "values": {"yes": self.label.positive, "no": self.label.negative},
                    "channels": list(self.label_channels)},
                "features": {f: list(c) for f, c in self.features.items()},
                "feature_value": "per patient: mean of the patient's values"}


def patient_channels(doc: Mapping[str, Any], params: Parameters) -> frozenset[str]:
    """The channels one patient has data in."""
    channels = {m for m in doc.get("modalities", []) if m in IMAGING_CHANNELS}
    for annotation in doc.get("annotations", []):
        if annotation.get("kind") == "SR":
            channels.add(params.profile_channels.get(annotation.get("profile") or "", OTHER_SR))
    return frozenset(channels)


def combination_name(channels: Iterable[str], params: Parameters) -> str:
    present = set(channels)
    return " + ".join(c for c in params.channels if c in present) or NO_CHANNEL


def patient_label(doc: Mapping[str, Any], params: Parameters) -> str:
    """yes / no when the patient's labelled annotations agree on one, else unknown."""
    return params.label.of(doc)


def patient_feature(doc: Mapping[str, Any], field: str, params: Parameters) -> float | None:
    """The patient's value of a quantitative field: the mean over its annotations (a patient
    with two ECGs counts once), from the profiles that declare the field."""
    channels = set(params.features[field])
    values: list[float] = []
    for annotation in doc.get("annotations", []):
        if params.profile_channels.get(annotation.get("profile") or "") not in channels:
            continue
        value = (annotation.get("fields") or {}).get(field)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                values.append(float(v))
    return statistics.fmean(values) if values else None


def summary(values: Sequence[float], k: int) -> dict[str, float]:
    """mean, median and, from 2k values on and when not 0, the sample SD. No min/max:
    extremes single people out; an SD of 0 says every member shares one value, and over few
    values an SD narrows each of them down."""
    ordered = sorted(values)
    sd = round(statistics.stdev(ordered), DIGITS) if len(ordered) > 1 else 0.0
    return {"mean": round(statistics.fmean(ordered), DIGITS),
            **({"sd": sd} if len(ordered) >= 2 * k and sd > 0 else {}),
            "median": round(statistics.median(ordered), DIGITS)}


Members = dict[str, set[str]]


def raw_members(docs: Iterable[Mapping[str, Any]], params: Parameters
                ) -> tuple[Members, dict[str, list[float]]]:
    """The patients behind every unsuppressed cell (document ids) and per-feature patient
    values. Both stay inside the site: the release ledger keeps the ids to audit later
    releases against this one."""
    cells: Members = {"patients": set()}
    cells.update({f"channel/{c}": set() for c in params.channels})
    cells.update({f"label/{label}": set() for label in LABELS})
    cells.update({f"feature/{field}": set() for field in params.features})
    features: dict[str, list[float]] = {field: [] for field in params.features}
    for doc in docs:
        patient = patient_doc_id(doc["patient_key"])
        channels = patient_channels(doc, params)
        cells["patients"].add(patient)
        for channel in channels:
            cells[f"channel/{channel}"].add(patient)
        cells.setdefault(f"combination/{combination_name(channels, params)}", set()).add(patient)
        cells[f"label/{patient_label(doc, params)}"].add(patient)
        for field, values in features.items():
            if (value := patient_feature(doc, field, params)) is not None:
                values.append(value)
                cells[f"feature/{field}"].add(patient)
    return cells, features


def pool_combinations(cells: Members, k: int) -> Members:
    """Intersections below k go into one ``other`` cell, so the list of intersections a site
    publishes never reveals that some rare combination exists there."""
    pooled = {name: members for name, members in cells.items()
              if not name.startswith("combination/") or len(members) >= k}
    pooled[f"combination/{OTHER_COMBINATIONS}"] = set().union(*(
        members for name, members in cells.items()
        if name.startswith("combination/") and len(members) < k))
    return pooled


def relations(cells: Iterable[str], params: Parameters) -> list[Relation]:
    """What the schema tells any reader about how the cells of one site hang together."""
    names = set(cells)
    combos = sorted(n for n in names if n.startswith("combination/"))
    listed = [n for n in combos if n != f"combination/{OTHER_COMBINATIONS}"]
    other = f"combination/{OTHER_COMBINATIONS}"
    found: list[Relation] = []
    if {f"label/{label}" for label in LABELS} <= names:
        found.append(Relation(("patients",), tuple(f"label/{x}" for x in LABELS), equal=True))
        found.append(Relation(("label/yes", "label/no"),
                              tuple(f"channel/{c}" for c in params.label_channels)))
    if other in names:
        found.append(Relation(("patients",), tuple(combos), equal=True))
    for channel in params.channels:
        name = f"channel/{channel}"
        if name not in names or other not in names:
            continue
        inside = tuple(n for n in listed if channel in n.removeprefix("combination/").split(" + "))
        found.append(Relation(inside, (name,)))
        found.append(Relation((name,), inside + (other,)))
    for field, channels in params.features.items():
        if f"feature/{field}" in names:
            found.append(Relation((f"feature/{field}",), tuple(f"channel/{c}" for c in channels)))
    return found


def public_bounds(published: Mapping[str, int | None], k: int
                  ) -> tuple[dict[str, int], dict[str, int]]:
    """Floors and ceilings of hidden cells that the schema promises: a listed intersection is at
    least k (smaller ones are pooled) and the patient total is hidden only below k."""
    floors = {n: k for n in published if n.startswith("combination/")
              and n != f"combination/{OTHER_COMBINATIONS}"}
    return floors, {"patients": k - 1}


def check_k(k: int) -> int:
    """The suppression threshold, refused below 2: k=1 suppresses nothing."""
    if k < 2:
        raise ValueError(f"k must be at least 2 (got {k}): k=1 suppresses nothing")
    return k


KEEP = frozenset({"patients"})     # hidden only below k, which the schema then promises


@dataclass(frozen=True)
class SiteRelease:
    """One site's cohort ready to publish: what may leave (``aggregate``) and, staying at the
    site, the patients behind each of its cells and the cells' true values."""

    aggregate: Aggregate
    members: Mapping[str, frozenset[str]]      # cell -> patient document ids
    values: Mapping[str, int]                  # cell -> true count (hidden ones too)
    features: Mapping[str, Sequence[float]]    # field -> per-patient values

    @property
    def hidden(self) -> frozenset[str]:
        return frozenset(n for n, v in published_cells(self.aggregate).items() if v is None)

    def hiding(self, more: Iterable[str]) -> "SiteRelease":
        """The same release with ``more`` cells suppressed as well."""
        hidden = self.hidden | set(more)
        aggregate = {**self.aggregate, "counts": _counts(self.values, hidden), "features": {
            field: _feature(self.features[field], f"feature/{field}", hidden,
                            self.aggregate["k"])
            for field in self.aggregate["features"]}}
        return SiteRelease(aggregate, self.members, self.values, self.features)


def site_release(docs: Iterable[Mapping[str, Any]], *, cohort: Cohort, site: str,
                 profiles: Sequence[Profile], label: LabelSpec, k: int = DEFAULT_K
                 ) -> SiteRelease:
    """One site's cohort members -> the aggregate with primary and complementary suppression
    (this release on its own; ``federated.linked`` audits it against earlier releases)."""
    check_k(k)
    params = Parameters.from_profiles(profiles, label)
    members, features = raw_members(docs, params)
    members = pool_combinations(members, k)
    cells = {name: len(patients) for name, patients in members.items()}
    floors, ceilings = public_bounds(cells, k)
    hidden = suppress(cells, relations(cells, params), k, floors=floors, ceilings=ceilings,
                      keep=KEEP)
    withheld = hidden is None
    if withheld:        # nothing but the total can be published safely
        cells = {"patients": cells["patients"]}
        hidden = {"patients"} if cells["patients"] < k else set()
    aggregate = {
        "schema": SCHEMA,
        "cohort": {"name": cohort.name, "sha256": cohort.digest},
        "site": site, "k": k, "parameters": params.to_json(), "withheld": withheld,
        "counts": _counts(cells, hidden),
        "features": {field: _feature(values, f"feature/{field}", hidden, k)
                     for field, values in features.items() if f"feature/{field}" in cells},
    }
    return SiteRelease(aggregate, {n: frozenset(members[n]) for n in cells}, cells,
                       {field: tuple(values) for field, values in features.items()})


def site_aggregate(docs: Iterable[Mapping[str, Any]], *, cohort: Cohort, site: str,
                   profiles: Sequence[Profile], label: LabelSpec, k: int = DEFAULT_K
                   ) -> Aggregate:
    """The publishable aggregate of one site's cohort members (JSON-ready, deterministic)."""
    return site_release(docs, cohort=cohort, site=site, profiles=profiles, label=label,
                        k=k).aggregate


def _counts(cells: Mapping[str, int], hidden: Iterable[str]) -> dict[str, Any]:
    hidden = set(hidden)
    published = {name: SUPPRESSED if name in hidden else value for name, value in cells.items()}
    return {"patients": published["patients"],
            "channels": _group(published, "channel/"),
            "combinations": _group(published, "combination/"),
            "label": _group(published, "label/")}


def _feature(values: Sequence[float], cell: str, hidden: Iterable[str], k: int
             ) -> dict[str, Any]:
    if cell in set(hidden):
        return {"n": SUPPRESSED}
    return {"n": len(values), **summary(values, k)}


def _group(published: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {name.removeprefix(prefix): value for name, value in sorted(published.items())
            if name.startswith(prefix)}


def published_cells(aggregate: Aggregate) -> dict[str, int | None]:
    """An aggregate's cells flattened back to names, None where suppressed (the inverse of the
    grouping above; what the coordinator reasons on)."""
    counts = aggregate["counts"]
    flat: dict[str, Any] = {"patients": counts["patients"]}
    for group, prefix in (("channels", "channel/"), ("combinations", "combination/"),
                          ("label", "label/")):
        flat.update({prefix + name: value for name, value in counts[group].items()})
    flat.update({f"feature/{f}": s["n"] for f, s in aggregate["features"].items()})
    return {name: None if value == SUPPRESSED else int(value) for name, value in flat.items()}


def parameters_of(aggregate: Aggregate) -> Parameters:
    """The Parameters an aggregate declares (its relations depend on them)."""
    raw = aggregate["parameters"]
    label = raw["label"]
    return Parameters(tuple(raw["channels"]), {}, tuple(label["channels"]),
                      {f: tuple(c) for f, c in raw["features"].items()},
                      LabelSpec(label["template"], label["field"], label["values"]["yes"],
                                label["values"]["no"], label["name"]))
