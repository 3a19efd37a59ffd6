"""Paging parameters shared by every list endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Query

Limit = Annotated[int, Query(ge=1, le=500, description="rows per page")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip")]
T = TypeVar("T")


@dataclass(frozen=True)
class PageWindow:
    """Page n of an offset-paged list: ask for one row more than shown to know whether a next page exists."""

    page: int
    size: int = 50

    @property
    def limit(self) -> int:
        """Rows to fetch (one more than shown)."""
        return self.size + 1

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.size

    def split(self, rows: Sequence[T]) -> tuple[list[T], bool]:
        """(the rows to show, whether there is a next page)."""
        return list(rows[: self.size]), len(rows) > self.size
