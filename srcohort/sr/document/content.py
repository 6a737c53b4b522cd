"""A declared document template as a highdicom ``Template``, filled from a patient's record.

Each node of the declaration becomes the content item of its value type, with the value its
source holds for the patient: a coded answer from the node's vocabulary (a canonical value's
term, or the term another term names through ``via``), a number in the declared unit, a date,
a text; a constant code where the node says ``value`` and one of its ``when`` sources has a
value. What the record does not hold is not written, and a section with nothing in it is left
out (dsrdump rejects empty items; "not recorded" must stay distinct from "no"). Items are built
through ``srcohort.sr.items``, so each kind of item is validated by highdicom once and copied
after.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
import highdicom as hd
from highdicom.sr.templates import Template
from pydicom.sr.coding import Code

from srcohort.study.record import Record
from srcohort.sr import items
from srcohort.study.model import Node, Study, Template as Declared, code_of


class DeclaredDocument(Template):
    """Root container of a declared document with the items the record has values for."""

    def __init__(self, declared: Declared, record: Record) -> None:
        root = hd.sr.ContainerContentItem(name=_root(declared), template_id=declared.template_id)
        content = [_item(node, record, record.study) for node in declared.nodes]
        root.ContentSequence = [item for item in content if item is not None]
        super().__init__([root], is_root=True)


def _root(declared: Declared) -> Code:
    return code_of(str(declared.root), declared.root_meaning)


def _item(node: Node, record: Record, study: Study) -> items.Item:
    name = _concept(node.concept, node.meaning)
    if node.value_type == "CONTAINER":
        return items.section(name, [_item(child, record, study) for child in node.children])
    if node.value is not None:
        return items.code(name, _constant(node.value)) if record.present(node.when) else None
    value = record.value(str(node.source)) if node.source else None
    if value is None:
        return None
    if node.value_type == "CODE":
        return items.code(name, _term(study, node, str(value)))
    if node.value_type == "NUM":
        return items.num(name, float(value), str(node.unit))
    if node.value_type == "DATE":
        return items.date(name, value if isinstance(value, dt.date) else
                          dt.date.fromisoformat(str(value)))
    if node.value_type == "TEXT":
        return items.text(name, str(value))
    raise ValueError(f"{'/'.join(node.path)}: srcohort cannot write {node.value_type} items "
                     f"from a record")


@lru_cache(maxsize=4096)
def _concept(key: str, meaning: str) -> Code:
    return code_of(key, meaning)


@lru_cache(maxsize=1024)
def _constant(text: str) -> Code:
    key, _, meaning = text.partition(" ")
    return code_of(key, meaning)


def _term(study: Study, node: Node, canonical: str) -> Code:
    """The code of canonical value ``canonical`` in the node's vocabulary; with ``via``, of the
    term that attribute of the source column's term names (a device model's family)."""
    if node.via is not None:
        table, _, column = str(node.source).partition(".")
        source = study.inputs[table].columns[column].vocabulary
        canonical = str(source.terms[canonical].attributes[node.via])   # type: ignore[union-attr]
    return study.vocabularies[str(node.vocabulary)].terms[canonical].concept
