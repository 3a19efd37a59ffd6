"""Checking a mapping document as a person wrote it: every problem named by its field and its line.

The adapter's own checks (`adapters.mapping`) say what is wrong and where in the document's structure
(`payload.plate.path`); this module finds that key in the text, so the editor can say "第 7 行".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from linli.devices.adapters.mapping import CompiledMapping, MappingDoc, MappingError, compile_mapping

_WHERE = re.compile(r"^(?P<where>[A-Za-z_][\w.\-]*): (?P<message>.+)$", re.S)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: the key path (dotted), the 1-based line if known, the message."""

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"第 {self.line} 行 " if self.line else ""
        return f"{where}{self.field or '(文档)'}: {self.message}"


def check(text: str) -> tuple[CompiledMapping | None, list[Problem]]:
    """The compiled mapping, or the problems (each with its field and line) that keep it from compiling."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem("", f"不是有效的 YAML/JSON: {reason}", line)]
    if not isinstance(doc, dict):
        return None, [Problem("", "映射文档必须是一个对象（键值对）", 1)]
    root = _compose(text)
    try:
        spec = MappingDoc.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = [str(part) for part in error["loc"] if not str(part).startswith("function-")]
            message = re.sub(r"^Value error, ", "", error["msg"])
            problems.append(Problem(".".join(path), message, line_of(root, path)))
        return None, problems
    try:
        return compile_mapping(spec), []
    except MappingError as exc:
        match = _WHERE.match(str(exc))
        if match is None:
            return None, [Problem("", str(exc), None)]
        where = match["where"]
        return None, [Problem(where, match["message"], line_of(root, where.split(".")))]


def _compose(text: str) -> Any:
    try:
        return yaml.compose(text)
    except yaml.YAMLError:
        return None


def line_of(node: Any, path: list[str]) -> int | None:
    """The 1-based line of the deepest key of path found in the composed YAML (keys may hold dots)."""
    line = None
    rest = list(path)
    while rest and isinstance(node, yaml.MappingNode):
        found = None
        for key, value in node.value:
            name = str(key.value)
            parts = name.split(".")
            if rest[: len(parts)] == parts and (found is None or len(parts) > len(found[0])):
                found = (parts, key, value)
        if found is None:
            break
        parts, key, node = found
        line = key.start_mark.line + 1
        rest = rest[len(parts) :]
    return line
