"""YAML read together with the line of every key, so a configuration error names its line."""

from __future__ import annotations

from typing import Any

import yaml

KeyPath = tuple[str, ...]


def load_with_lines(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """The document and the 1-based line of each mapping key, by its path of keys."""
    data = yaml.safe_load(text)
    lines: dict[KeyPath, int] = {}

    def walk(node: yaml.Node, path: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = path + (str(key.value),)
                lines.setdefault(here, key.start_mark.line + 1)
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines.setdefault(path + (str(index),), item.start_mark.line + 1)
                walk(item, path + (str(index),))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return data, lines


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of ``path``, else of its nearest ancestor that has one."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None
