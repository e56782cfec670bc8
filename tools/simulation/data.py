"""Labeled CSV data sets for simulations: ``text,label[,split]`` → texts, label lists and the label space.

Errors: ``SimulationError`` (a ``TagloopError``) → ``DatasetError`` (a CSV cannot be read) and
``SimulationConfigError`` (a setting, or a labeling config that does not fit the data).

Format (``../shared/data/README.md``): UTF-8, header row, a ``text`` and a ``label`` column. Single-label
cells hold one class name; multi-label cells hold class names joined with ``|``, and the empty string
means that no label applies. Index space: **dataset index** = data row number, 0-based, in file order.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from backend.errors import TagloopError

REQUIRED_COLUMNS = ("text", "label")
LABEL_SEPARATOR = "|"


class SimulationError(TagloopError):
    """A simulation cannot run as asked."""

    code = "simulation_error"


class DatasetError(SimulationError):
    """A labeled CSV cannot be read: missing file or columns, no rows, a malformed row."""

    code = "bad_dataset"


class SimulationConfigError(SimulationError):
    """A simulation setting outside what it allows, or a labeling config that does not fit the data."""

    code = "bad_simulation_config"


@dataclass(frozen=True)
class LabeledDataset:
    """Texts with their true labels, in file order (dataset index i = data row i).

    ``labels`` holds the class names in order of first appearance; ``targets[i]`` is the label list of row i
    (one name for single-label data, zero or more for multi-label data).
    """

    path: Path
    texts: tuple[str, ...]
    targets: tuple[tuple[str, ...], ...]
    labels: tuple[str, ...]
    multi_label: bool

    @property
    def name(self) -> str:
        """The file stem, e.g. ``ag_news`` for ``ag_news.csv``."""
        return self.path.stem

    def __len__(self) -> int:
        return len(self.texts)


def split_label_cell(cell: str) -> tuple[str, ...]:
    """A label cell → its label names, without empties or repeats (``'a|b'`` → ``('a', 'b')``, ``''`` → ``()``)."""
    return tuple(dict.fromkeys(x for x in cell.split(LABEL_SEPARATOR) if x))


def is_multi_label(cells: list[str]) -> bool:
    """True when any label cell joins names with ``|`` or is empty (no label applies)."""
    return any(cell == "" or LABEL_SEPARATOR in cell for cell in cells)


def _read_cells(path: Path) -> tuple[list[str], list[str]]:
    """Text and label cells of every data row, checked for the required columns and complete rows."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames
            if not columns:
                raise DatasetError(f"{path}: the file is empty; expected a header row with columns text,label")
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {missing}; found columns {list(columns)}")
            texts: list[str] = []
            cells: list[str] = []
            for row_number, row in enumerate(reader, start=1):
                text, label = row.get("text"), row.get("label")
                if text is None or label is None:
                    raise DatasetError(
                        f"{path}: data row {row_number} (ending on line {reader.line_num}) has "
                        f"{sum(v is not None for v in row.values())} fields; expected {len(columns)} ({list(columns)})"
                    )
                texts.append(text)
                cells.append(label)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 (byte {exc.start}: {exc.reason})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV ({exc})") from None
    return texts, cells


def load_dataset(path: Path) -> LabeledDataset:
    """Read a labeled CSV; multi-label is detected from ``|`` or empty label cells.

    Raises:
        DatasetError: no such file, not UTF-8, empty file, missing ``text``/``label`` column, a short row,
            or a header without data rows. The message names the file and the row.
    """
    texts, cells = _read_cells(path)
    if not texts:
        raise DatasetError(f"{path}: no data rows after the header; expected at least 1")
    multi_label = is_multi_label(cells)
    targets = tuple(split_label_cell(c) if multi_label else (c,) for c in cells)
    labels = tuple(dict.fromkeys(label for t in targets for label in t))
    if not labels:
        raise DatasetError(f"{path}: every label cell is empty; expected at least one label name")
    return LabeledDataset(path, tuple(texts), targets, labels, multi_label)
