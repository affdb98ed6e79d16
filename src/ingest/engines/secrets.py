"""Connector secrets: which config paths a spec marks `airbyte_secret`, masking, merging and scrubbing."""

import copy
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

MASK = "********"
WILDCARD = "*"  # a path element matching every item of an array

Path = tuple[str, ...]


def secret_paths(spec: Mapping[str, Any]) -> list[Path]:
    """Every config path a `connectionSpecification` marks `airbyte_secret`, walking oneOf/anyOf."""
    found: list[Path] = []
    _walk_spec(spec, (), found, depth=0)
    return list(dict.fromkeys(found))


def _walk_spec(schema: Any, prefix: Path, found: list[Path], depth: int) -> None:
    if not isinstance(schema, Mapping) or depth > 32:
        return
    if schema.get("airbyte_secret") is True and prefix:
        found.append(prefix)
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for key, sub in properties.items():
            _walk_spec(sub, (*prefix, str(key)), found, depth + 1)
    for keyword in ("oneOf", "anyOf", "allOf"):
        variants = schema.get(keyword)
        if isinstance(variants, list):
            for variant in variants:
                _walk_spec(variant, prefix, found, depth + 1)
    items = schema.get("items")
    if isinstance(items, Mapping):
        _walk_spec(items, (*prefix, WILDCARD), found, depth + 1)


def _values_at(node: Any, path: Path) -> Iterator[Any]:
    if not path:
        yield node
        return
    head, rest = path[0], path[1:]
    if head == WILDCARD and isinstance(node, list):
        for item in node:
            yield from _values_at(item, rest)
    elif isinstance(node, Mapping) and head in node:
        yield from _values_at(node[head], rest)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield value


def secret_values(config: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    """The config's secret values as text (empty and masked values excluded), for a `Scrubber`."""
    values: list[str] = []
    for path in secret_paths(spec):
        for value in _values_at(config, path):
            for leaf in _leaves(value):
                text = str(leaf)
                if text and text != MASK:
                    values.append(text)
    return list(dict.fromkeys(values))


def _replace_at(node: Any, path: Path, replace: Any) -> None:
    """Call `replace(parent, key)` for every existing value at `path`."""
    head, rest = path[0], path[1:]
    if head == WILDCARD:
        if isinstance(node, list):
            for index in range(len(node)):
                if rest:
                    _replace_at(node[index], rest, replace)
                else:
                    replace(node, index)
        return
    if isinstance(node, dict) and head in node:
        if rest:
            _replace_at(node[head], rest, replace)
        else:
            replace(node, head)


def mask_config(config: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `config` with every secret value replaced by `********` (nulls stay null)."""
    masked: dict[str, Any] = copy.deepcopy(dict(config))

    def mask(parent: Any, key: Any) -> None:
        if parent[key] is not None:
            parent[key] = MASK

    for path in secret_paths(spec):
        _replace_at(masked, path, mask)
    return masked


def merge_masked(
    new_config: Mapping[str, Any], stored_config: Mapping[str, Any], spec: Mapping[str, Any]
) -> dict[str, Any]:
    """`new_config` where a secret still equal to `********` keeps the stored value.

    A masked value with nothing stored at that path is dropped, so schema validation reports it missing
    instead of the connector receiving the mask as a password.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(new_config))

    for path in secret_paths(spec):
        stored_here = list(_values_at(stored_config, path)) if WILDCARD not in path else []

        def keep(parent: Any, key: Any, _path: Path = path, _stored: list[Any] = stored_here) -> None:
            if parent[key] != MASK:
                return
            if WILDCARD in _path or not _stored:
                # array items cannot be matched reliably to stored ones: treat as unset
                if isinstance(parent, dict):
                    del parent[key]
                else:
                    parent[key] = None
            else:
                parent[key] = copy.deepcopy(_stored[0])

        _replace_at(merged, path, keep)
    return merged


class Scrubber:
    """Replaces known secret values in any text with `********`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if len(secret) < 3:
                # masking one or two characters would shred every log line and protects nothing
                continue
            variants.add(secret)
            escaped = json.dumps(secret)[1:-1]  # the form it takes inside a JSON log line
            variants.add(escaped)
        ordered = sorted(variants, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    @classmethod
    def for_config(cls, config: Mapping[str, Any], spec: Mapping[str, Any]) -> "Scrubber":
        return cls(secret_values(config, spec))

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)
