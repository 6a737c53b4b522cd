"""Small constructors for CONTAINS content items that skip what a source did not record, and the
copying that makes building thousands of SRs cheap.

Registry rows are sparse; returning ``None`` for a missing value and dropping ``None`` when a
section is assembled keeps every template free of if-chains and never writes empty items
(which dsrdump rejects).

Every patient repeats the same few items: the same codes under the same names, a date or a
number under the same concept. highdicom validates every code and value on every construction,
which costs more than the rest of a conversion, so each kind of item is built by highdicom once
(``Prototypes``) and later items are copies (``clone``) with only their value set, the way
highdicom sets it. Inside ``highdicom_only()`` every object is built by highdicom instead: the
reference that tests and benchmarks hold the copies against.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict, defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Generic, Hashable, Iterator, Sequence, TypeVar

import highdicom as hd
from highdicom.sr import RelationshipTypeValues as Rel
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DataElementSequence
from pydicom.sr.coding import Code
from pydicom.tag import Tag
from pydicom.valuerep import DA, DS


Item = hd.sr.ContentItem | None
T = TypeVar("T", bound=Dataset | DataElementSequence)
_MEASURED_VALUE, _CONTENT_SEQUENCE = Tag("MeasuredValueSequence"), Tag("ContentSequence")

_HIGHDICOM_ONLY: ContextVar[bool] = ContextVar("highdicom_only", default=False)


@contextmanager
def highdicom_only() -> Iterator[None]:
    """Build every content item, content tree and SR inside with highdicom's constructors,
    copying nothing: the reference path, as slow as plain highdicom."""
    token = _HIGHDICOM_ONLY.set(True)
    try:
        yield
    finally:
        _HIGHDICOM_ONLY.reset(token)


def copying() -> bool:
    """False inside ``highdicom_only()``."""
    return not _HIGHDICOM_ONLY.get()


def clone(obj: T) -> T:
    """An independent copy of a dataset or sequence, of the same classes, for a fraction of the
    cost of ``copy.deepcopy`` (which goes through pickling hooks and a memo for every object).

    Datasets, elements, sequences and multi-values are new objects, so changing the copy never
    changes the original; element values that cannot change in place (strings, numbers, UIDs,
    dates) are shared. highdicom's ``ContentSequence`` keeps a look-up of its items by concept
    name, which is rebuilt to point at the copied items.
    """
    return _clone_dataset(obj) if isinstance(obj, Dataset) else _clone_sequence(obj)


def _clone_dataset(ds: Any) -> Any:
    new = object.__new__(ds.__class__)
    state = ds.__dict__.copy()
    elements = {}
    for tag, elem in ds._dict.items():
        if elem.__class__ is DataElement:     # else a RawDataElement: an immutable tuple
            copied = object.__new__(DataElement)
            copied.__dict__ = elem_state = elem.__dict__.copy()
            value = elem_state["_value"]
            cloner = _VALUE_CLONERS.get(value.__class__)
            if cloner is None:
                cloner = _VALUE_CLONERS[value.__class__] = _how_to_clone(value.__class__)
            if cloner is not _share:
                elem_state["_value"] = cloner(value)
            elem = copied
        elements[tag] = elem
    state["_dict"] = elements
    state["_private_blocks"] = {}               # per-dataset caches, refilled on demand
    state["_pixel_id"] = {}
    state["_pixel_array_opts"] = state["_pixel_array_opts"].copy()
    if state.get("file_meta") is not None:
        state["file_meta"] = _clone_dataset(state["file_meta"])
    object.__setattr__(new, "__dict__", state)  # past Dataset.__setattr__
    return new


def _clone_sequence(seq: Any) -> Any:
    new = object.__new__(seq.__class__)
    new.__dict__ = state = seq.__dict__.copy()
    state["_list"] = copied = [_clone_dataset(item) for item in seq._list]
    if "_lut" in state:
        by_id = {id(old): copy for old, copy in zip(seq._list, copied)}
        state["_lut"] = defaultdict(list, {name: [by_id.get(id(i), i) for i in found]
                                           for name, found in seq._lut.items()})
    return new


def _clone_multivalue(values: Any) -> Any:
    new = object.__new__(values.__class__)
    new.__dict__ = state = values.__dict__.copy()
    state["_list"] = list(values._list)
    return new


def _share(value: Any) -> Any:
    return value


def _how_to_clone(cls: type) -> Callable[[Any], Any]:
    """Per value class, as isinstance against pydicom's abstract base classes is slow."""
    if issubclass(cls, DataElementSequence):
        return _clone_sequence
    if issubclass(cls, MultiValue):
        return _clone_multivalue
    return _share


_VALUE_CLONERS: dict[type, Callable[[Any], Any]] = {}


def _with_code_keys(obj: T) -> T:
    """``obj`` with the concept names that key highdicom's ``ContentSequence`` look-ups turned
    into equal ``Code`` objects. Copying a look-up hashes every name again, and a ``Code``
    hashes at a tenth of the cost of a ``CodedConcept`` (a dataset): half of a content tree's
    copying time otherwise."""
    for sequence in _sequences(obj):
        if "_lut" in sequence.__dict__:
            sequence._lut = defaultdict(list, {
                Code(name.value, name.scheme_designator, name.meaning, name.scheme_version):
                found for name, found in sequence._lut.items()})
    return obj


def _sequences(obj: Dataset | DataElementSequence) -> Iterator[DataElementSequence]:
    if isinstance(obj, DataElementSequence):
        yield obj
        for item in obj:
            yield from _sequences(item)
    else:
        for elem in obj:
            if elem.VR == "SQ":
                yield from _sequences(elem.value)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Dataset | DataElementSequence)


class Prototypes(Generic[K, V]):
    """Objects highdicom built, by shape; ``copy`` hands out clones, never the prototype, so no
    caller can change what later copies start from. The least recently used shape beyond
    ``size`` is dropped, which bounds memory on inputs with many shapes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._built: OrderedDict[K, V] = OrderedDict()

    def copy(self, key: K, build: Callable[[], V],
             revalue: Callable[[V], None] | None = None) -> V:
        """What ``build()`` returns: a clone of the prototype for ``key`` given the values of
        this call by ``revalue``, or, for a new key or inside ``highdicom_only()``, built."""
        if not copying():
            return build()
        prototype = self._built.get(key)
        if prototype is None:
            prototype = self._built[key] = _with_code_keys(build())
            if len(self._built) > self.size:
                self._built.popitem(last=False)
            return clone(prototype)
        self._built.move_to_end(key)
        copied = clone(prototype)
        if revalue is not None:
            revalue(copied)
        return copied


_ITEMS: Prototypes[tuple, hd.sr.ContentItem] = Prototypes(size=4096)


def section(title: Code, items: Sequence[Item]) -> hd.sr.ContainerContentItem | None:
    """A CONTAINS container holding the present items, or None when none is present."""
    present = [item for item in items if item is not None]
    if not present:
        return None
    container = _ITEMS.copy(("CONTAINER", title), lambda: hd.sr.ContainerContentItem(
        name=title, relationship_type=Rel.CONTAINS))
    container.ContentSequence = present
    return container


def code(name: Code, value: Code | None) -> hd.sr.CodeContentItem | None:
    return None if value is None else _ITEMS.copy(("CODE", name, value), lambda: (
        hd.sr.CodeContentItem(name=name, value=value, relationship_type=Rel.CONTAINS)))


def date(name: Code, value: dt.date | None) -> hd.sr.DateContentItem | None:
    return None if value is None else _ITEMS.copy(
        ("DATE", name),
        lambda: hd.sr.DateContentItem(name=name, value=value, relationship_type=Rel.CONTAINS),
        lambda item: set_value(item, "Date", DA(value)))     # as DateContentItem sets it


def num(name: Code, value: float | None, unit: str) -> hd.sr.NumContentItem | None:
    if value is None:
        return None

    def build() -> hd.sr.NumContentItem:
        return hd.sr.NumContentItem(name=name, value=value, unit=Code(unit, "UCUM", unit),
                                    relationship_type=Rel.CONTAINS)
    if type(value) not in (int, float):         # highdicom's own checks decide on anything else
        return build()
    return _ITEMS.copy(("NUM", name, unit, type(value)), build,
                       lambda item: set_num_value(item, value))


def set_num_value(item: hd.sr.NumContentItem, value: float) -> None:
    """Replace the number of a NUM item built by highdicom with a value of the same type, encoded
    as ``NumContentItem`` encodes it (the float item also carries the exact binary value)."""
    measured = item[_MEASURED_VALUE].value[0]
    set_value(measured, "NumericValue", DS(value, auto_format=True))
    if isinstance(value, float):
        set_value(measured, "FloatingPointValue", value)


def text(name: Code, value: str | None) -> hd.sr.TextContentItem | None:
    return None if not value else _ITEMS.copy(
        ("TEXT", name),
        lambda: hd.sr.TextContentItem(name=name, value=value, relationship_type=Rel.CONTAINS),
        lambda item: set_value(item, "TextValue", str(value)))  # as TextContentItem sets it


def set_value(ds: Dataset, keyword: str, value: Any) -> None:
    """``setattr(ds, keyword, value)`` for an element ``ds`` has (as in a copy of a prototype):
    the same conversion and checks of the value, without Dataset's generic attribute path."""
    ds[Tag(keyword)].value = value


def content_items(item: Dataset) -> list[hd.sr.ContentItem]:
    """The items of ``item``'s Content Sequence, for walks over many trees."""
    return item[_CONTENT_SEQUENCE].value
