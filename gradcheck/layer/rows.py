"""The pipeline's rows: every tensor and input the report lists, keyed by what it is, not its name.

A check says which row it has facts about by the row's identity (`RowKey`): the tf.Variable behind a
weight, the object a constant came from, an input's position. Display names are for people: two
tensors may share one (a weight and a constant both shown as `scale`), and changing how a tensor is
named must change no check. The Report receives the rows without their keys (`Rows.infos()`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from ..report import InputInfo, TensorInfo


@dataclass(frozen=True)
class RowKey:
    kind: str  # "variable" (a weight, untracked variable or state), "constant" or "input"
    ident: int  # id() of the backing tf.Variable or of the constant's object; an input's position


def variable_key(variable: Any) -> RowKey:
    """The key of a Keras or tf.Variable: the tf.Variable behind it, the object a traced graph captures."""
    from ..runtime import backend

    return RowKey("variable", id(backend().backing(variable)))


def constant_key(obj: Any) -> RowKey:
    return RowKey("constant", id(obj))


def input_key(index: int) -> RowKey:
    return RowKey("input", index)


Info = TypeVar("Info", TensorInfo, InputInfo)


class Rows(Generic[Info]):
    """Rows in report order, each with its key. Updates make a new Rows; the rows are frozen."""

    def __init__(self, keyed: Iterable[tuple[RowKey, Info]] = ()):
        self._keyed: list[tuple[RowKey, Info]] = list(keyed)
        self._index: dict[RowKey, int] = {key: position for position, (key, _) in enumerate(self._keyed)}
        if len(self._index) != len(self._keyed):
            raise ValueError("two rows with one key: a tensor listed twice")

    def __iter__(self) -> Iterator[Info]:
        return (info for _, info in self._keyed)

    def __len__(self) -> int:
        return len(self._keyed)

    def __getitem__(self, position: int) -> Info:
        return self._keyed[position][1]

    def keyed(self) -> list[tuple[RowKey, Info]]:
        return list(self._keyed)

    def get(self, key: RowKey) -> Info | None:
        position = self._index.get(key)
        return None if position is None else self._keyed[position][1]

    def infos(self) -> tuple[Info, ...]:
        return tuple(info for _, info in self._keyed)

    def updated(self, updates: Mapping[RowKey, Mapping[str, Any]]) -> Rows[Info]:
        """These rows with a check's facts applied: {key: {field: value}}.

        A key with no row is a check's mistake, not something to skip quietly.
        """
        unknown = [key for key in updates if key not in self._index]
        if unknown:
            raise KeyError(f"facts for rows that do not exist: {unknown}")
        return Rows((key, replace(info, **updates.get(key, {}))) for key, info in self._keyed)
