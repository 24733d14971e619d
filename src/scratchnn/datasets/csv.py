"""CSV files of the user's own tabular data: a header row, numeric features, one target.

Example file::

    sepal_length,sepal_width,species
    5.1,3.5,setosa
    6.2,2.9,versicolor

``load_csv("iris.csv", "species")`` gives ``X`` (2, 2) float64, ``y`` = ['setosa',
'versicolor'] and the feature names; ``load_csv_features`` reads a file to predict on.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..io import check_path, open_regular_file

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class CSVData:
    """A loaded CSV file.

    Attributes:
        X: (n_samples, n_features) float64, the feature columns in file order.
        y: (n_samples,) the target column: int64 if every value is an integer, float64 if every
            value is a number, else the strings as read (surrounding whitespace stripped).
        feature_names: the feature columns' names, in the order of ``X``'s columns.
        target_name: the target column's name.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str


def load_csv(path: PathLike, target: str, *, delimiter: str = ",") -> CSVData:
    """Read a CSV file with a header row into features ``X`` and target ``y``.

    Every column but ``target`` is a feature, and each of its cells must be a finite number.
    Blank lines are skipped; the file is read as UTF-8 (a byte-order mark is allowed).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        TypeError: ``path`` is not a str or os.PathLike (bytes are refused), or ``target``
            is not a str.
        ValueError (naming the file, and the line and column where one is at fault): ``path``
            is not a regular file (a directory, a FIFO, a device: never read), an empty file,
            a header without data rows, duplicate or empty column names, ``target`` not among
            the columns (the message lists them), a quote that is never closed (the line where
            it opened: it would swallow the rest of the file), a row with the wrong number of
            cells, a feature cell that is empty or not a finite number, an empty target cell.
    """
    if not isinstance(target, str):
        raise TypeError(f"target must be a column name (str), got {type(target).__name__}")
    path, header, rows, lines = _read(path, delimiter)
    if target not in header:
        raise ValueError(f"{path}: target column {target!r} not found; the columns are "
                         f"{header}")
    target_index = header.index(target)
    feature_indices = [i for i in range(len(header)) if i != target_index]
    if not feature_indices:
        raise ValueError(f"{path}: the only column is the target {target!r}; there are no "
                         "feature columns")
    X = _parse_features(path, header, rows, lines, feature_indices)
    labels = [row[target_index].strip() for row in rows]
    for label, line in zip(labels, lines):
        if not label:
            raise ValueError(f"{path}, line {line}: the target column {target!r} is empty")
    return CSVData(X=X, y=_parse_target(labels), feature_names=[header[i] for i in feature_indices],
                   target_name=target)


def load_csv_features(path: PathLike, feature_names: Optional[Sequence[str]],
                      delimiter: str = ",") -> np.ndarray:
    """Read the columns ``feature_names`` of a CSV file with a header row, for prediction.

    The file may hold other columns (the target, an id, ...): they are ignored, in any order.
    ``feature_names=None`` reads every column, in the file's order.

    Returns:
        ``X`` (n_samples, len(feature_names)) float64, its columns in the order of
        ``feature_names`` (the training order), whatever their order in the file.

    Raises:
        ValueError: a named column is missing (the message names them), or as ``load_csv``.
    """
    if feature_names is None:
        path, header, rows, lines = _read(path, delimiter)
        return _parse_features(path, header, rows, lines, list(range(len(header))))
    if isinstance(feature_names, str) or not isinstance(feature_names, Sequence):
        raise TypeError(f"feature_names must be a list of column names, got "
                        f"{type(feature_names).__name__}")
    if not feature_names or not all(isinstance(name, str) for name in feature_names):
        raise ValueError(f"feature_names must be a non-empty list of strings, got {feature_names!r}")
    if len(set(feature_names)) != len(feature_names):
        raise ValueError(f"feature_names has duplicates: {list(feature_names)}")
    path, header, rows, lines = _read(path, delimiter)
    missing = [name for name in feature_names if name not in header]
    if missing:
        raise ValueError(f"{path}: missing the feature column(s) {missing}; the model needs "
                         f"{list(feature_names)} and the file has {header}")
    return _parse_features(path, header, rows, lines, [header.index(name) for name in feature_names])


def _read(path: PathLike, delimiter: str):
    """The file's header (names stripped), its data rows and their line numbers."""
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n\"":
        raise ValueError(f"delimiter must be one character (not a quote or newline), got "
                         f"{delimiter!r}")
    path = Path(check_path(path))
    header, rows, lines = None, [], []
    record: list[str] = []      # the raw lines of the row being read, for the quote check
    last: list[str] = []        # those of the row read last
    with open_regular_file(str(path), "CSV file") as binary, \
            io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(_recording(file, record, path), delimiter=delimiter)
        try:
            for row in reader:
                last = record.copy()
                record.clear()
                if not row:   # a blank line
                    continue
                if header is None:
                    header = [name.strip() for name in row]
                    _check_header(path, header, reader.line_num)
                    continue
                if len(row) != len(header):
                    _check_quotes(path, last, reader.line_num, delimiter)
                    raise ValueError(f"{path}, line {reader.line_num}: {len(row)} cells, but the "
                                     f"header has {len(header)} columns")
                rows.append(row)
                lines.append(reader.line_num)
        except csv.Error as error:
            _check_quotes(path, record, reader.line_num, delimiter)
            raise ValueError(f"{path}, line {reader.line_num}: malformed CSV: {error}") from None
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: not UTF-8 text ({error})") from None
    if header is None:
        raise ValueError(f"{path}: the file is empty; expected a header row of column names")
    # An unterminated quote takes in the rest of the file as one cell of the last row.
    _check_quotes(path, last, reader.line_num, delimiter)
    if not rows:
        raise ValueError(f"{path}: the file has a header but no data rows")
    return path, header, rows, lines


def _recording(file, record: list, path: Path):
    """The lines of ``file``, each also appended to ``record``; a NUL character (valid
    UTF-8, which csv reads as data) means the file is not text."""
    for number, line in enumerate(file, 1):
        if "\x00" in line:
            raise ValueError(f"{path}, line {number}: not a text file (it holds NUL bytes); "
                             "expected CSV text")
        record.append(line)
        yield line


def _check_quotes(path: Path, record: list, last_line: int, delimiter: str) -> None:
    """Raise if the row made of the raw lines ``record`` (ending at line ``last_line``)
    ends inside a quoted cell, naming the line where that quote opened."""
    opened = _open_quote(record, delimiter)
    if opened is not None:
        line = last_line - len(record) + 1 + opened
        raise ValueError(f"{path}, line {line}: unterminated quote: the quoted cell that opens on "
                         f"line {line} is never closed, so it would take in every line after it "
                         f"(through line {last_line})")


def _open_quote(lines: list, delimiter: str) -> Optional[int]:
    """The index in ``lines`` of the line where a still-open quoted cell began, or None.

    The rules of ``csv.reader``'s default dialect: a quote opens a quoted cell only
    at the start of a cell, ``""`` inside one is a quote, and a quote followed by
    anything else closes it."""
    state, opened = "start", None
    for number, line in enumerate(lines):
        for char in line:
            if state == "quoted":
                if char == '"':
                    state = "quote"
            elif state == "quote":                  # just after a quote inside a quoted cell
                state = "quoted" if char == '"' else \
                    "start" if char == delimiter or char in "\r\n" else "cell"
            elif char == delimiter or char in "\r\n":
                state = "start"
            elif state == "start" and char == '"':
                state, opened = "quoted", number
            else:
                state = "cell"
    return opened if state == "quoted" else None


def _check_header(path: Path, header: list[str], line: int) -> None:
    for position, name in enumerate(header, start=1):
        if not name:
            raise ValueError(f"{path}, line {line}: column {position} of the header has no name")
    counts = Counter(header)      # linear: a header may have tens of thousands of columns
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        raise ValueError(f"{path}, line {line}: duplicate column names {duplicates}")


def _parse_features(path: Path, header: list[str], rows: list[list[str]], lines: list[int],
                    indices: list[int]) -> np.ndarray:
    """The cells of columns ``indices`` as a finite (n_rows, len(indices)) float64 array."""
    cells = np.array([[row[i] for i in indices] for row in rows], dtype=str)
    try:
        X = cells.astype(np.float64)
        bad = ~np.isfinite(X)
    except ValueError:   # find the first cell that is not a number, for the message
        bad = np.array([[not _is_number(cell) for cell in row] for row in cells])
        if not bad.any():   # numpy's parser refused a cell that Python's float() accepts
            X = np.array([[float(cell) for cell in row] for row in cells], dtype=np.float64)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        cell = str(cells[r, c])
        what = "is empty" if not cell.strip() else f"is {cell!r}"
        raise ValueError(f"{path}, line {lines[r]}, column {header[indices[c]]!r} (column "
                         f"{indices[c] + 1}): the cell {what}; feature values must be finite numbers")
    return X


def _is_number(text: str) -> bool:
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


def _parse_target(labels: list[str]) -> np.ndarray:
    """int64 if every label is an integer, float64 if every label is a finite number, else str."""
    try:
        integers = [int(label) for label in labels]
        if all(-2 ** 63 <= value < 2 ** 63 for value in integers):
            return np.array(integers, dtype=np.int64)
    except ValueError:
        pass
    try:
        values = np.array([float(label) for label in labels], dtype=np.float64)
    except ValueError:
        return np.array(labels, dtype=str)
    if not np.isfinite(values).all():
        return np.array(labels, dtype=str)
    if (values == np.round(values)).all() and (np.abs(values) <= 2.0 ** 53).all():
        return values.astype(np.int64)   # "1.0", "2.0": integral numbers
    return values
