"""Data intake: what a retriever returns, streamed into the project and looked at as it passes.

Why: a 200 MB download used to be held in memory several times over (the body, its decoded text,
a list of parsed rows) and an HTML login page, a zip file or a latin-1 CSV was stored as `.txt`
and failed later with "columns are: 'line'". Here every result (bytes, str, a DataFrame, a path
to a file, a binary file object, an iterator of bytes) becomes a file under `data/.incoming/`
(or is read in place), in 1 MiB chunks, hashed as it goes. A `Scan` keeps what the format needs
from the whole file without keeping the file: its sha256 and size, its first 256 kB, whether it
is valid UTF-8, and its line and CSV record counts. `examine` then decides the format from that
head: the encoding (BOM, else UTF-8, else cp1252/latin-1, or `[data] encoding`), the CSV
separator and decimal mark (or `[data] sep` / `[data] decimal`), and refuses an HTML page or
binary data in one line. The `reading` it returns is recorded with the version, so a version
always loads the same way whatever config.toml says later.

This module is pure standard library: it runs inside the runner (the project's interpreter) and
never imports pandas.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from engine import events
from engine.errors import ConfigError, DataError

CHUNK = 1 << 20  # bytes read or written at a time
HEAD = 1 << 18  # bytes of the start of the data kept to decide the format
SNIFF = 65536  # characters the CSV separator is sniffed from
JSON_PARSE_LIMIT = 64 << 20  # JSON documents up to this size are parsed whole to count records
INCOMING = Path("data") / ".incoming"  # haj's scratch folder in a project, emptied by retrieve
PROGRESS_EVERY = 0.25  # seconds between progress events
QUOTED_SLICE = 1 << 16  # bytes split at quotes at a time when counting CSV records

# ---- what config.toml may declare -------------------------------------------------------------
SEPARATORS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def declared_reading(data: dict[str, Any], where: str = "config.toml") -> dict[str, str]:
    """`[data] encoding`, `sep` and `decimal` as given (empty = detect), checked: a ConfigError
    names the first bad value. Returns only the keys that are set."""
    declared: dict[str, str] = {}
    encoding = data.get("encoding", "")
    if not isinstance(encoding, str):
        raise ConfigError(f'{where}: data.encoding must be a string such as "latin-1"')
    if encoding.strip():
        try:
            declared["encoding"] = codecs.lookup(encoding.strip()).name
        except LookupError:
            raise ConfigError(
                f"{where}: data.encoding {encoding!r} is not an encoding Python knows "
                '(e.g. "utf-8", "latin-1", "cp1252", "utf-16"; "" detects it)'
            ) from None
    sep = data.get("sep", "")
    if not isinstance(sep, str):
        raise ConfigError(f'{where}: data.sep must be a string such as ";"')
    if sep:
        sep = SEPARATORS.get(sep.lower(), sep)
        if len(sep) != 1 or sep in '"\r\n' or sep.isalnum():
            raise ConfigError(
                f'{where}: data.sep must be one separator character such as ",", ";", '
                f'"|" or "\\t" ("" detects it)'
            )
        declared["sep"] = sep
    decimal = data.get("decimal", "")
    if not isinstance(decimal, str) or decimal not in ("", ".", ","):
        raise ConfigError(f'{where}: data.decimal must be "." or "," ("" detects it)')
    if decimal:
        declared["decimal"] = decimal
    if declared.get("sep") and declared.get("sep") == declared.get("decimal"):
        raise ConfigError(f"{where}: data.sep and data.decimal cannot both be {decimal!r}")
    return declared


# ---- progress ----------------------------------------------------------------------------------
class Meter:
    """Progress of one phase of byte work ("downloading", "reading", "checking"), reported as
    events.Progress in bytes with the average rate, at most every PROGRESS_EVERY seconds."""

    def __init__(self, emit: events.Callback, label: str, total: int | None = None) -> None:
        self.emit = emit
        self.label = label
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, done: int, total: int | None = None) -> None:
        self.done = int(done)
        if total is not None:
            self.total = int(total)
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY:
            self._last = now
            self._send(now)

    def add(self, count: int) -> None:
        self.update(self.done + count)

    def finish(self) -> None:
        self._send(time.monotonic())

    def _send(self, now: float) -> None:
        elapsed = now - self.started
        self.emit(
            events.Progress(
                done=self.done,
                total=self.total or 0,
                label=self.label,
                unit="bytes",
                rate=round(self.done / elapsed, 1) if elapsed > 0 else None,
            )
        )


# ---- scanning ----------------------------------------------------------------------------------
_BLANK_BYTES = re.compile(rb"\n(?=\r?\n)")
_BLANK_TEXT = re.compile(r"\n(?=\r?\n)")
_CP1252_GAPS = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")  # bytes cp1252 leaves undefined


class _Lines:
    """Counts non-blank lines, or CSV records when `quoted` (line ends inside "quoted" fields
    do not end a record), over chunks of bytes or text, without keeping them."""

    def __init__(self, quoted: bool, text: bool = False) -> None:
        self.quoted = quoted
        self.nl, self.crlf, self.quote = ("\n", "\r\n", '"') if text else (b"\n", b"\r\n", b'"')
        self.blank = _BLANK_TEXT if text else _BLANK_BYTES
        self.ends = 0  # line ends outside quotes
        self.blanks = 0  # of which end a blank line
        self.in_quote = False
        self.after_end = True  # nothing but line ends since the last line end (or the start)

    def feed(self, chunk: Any) -> None:
        if not chunk:
            return
        if not self.quoted or not (self.in_quote or self.quote in chunk):
            self._count(chunk)
            return
        for start in range(0, len(chunk), QUOTED_SLICE):  # the split's parts stay few
            piece = chunk[start : start + QUOTED_SLICE]
            # what lies outside quotes, each quoted field replaced by one quote (content)
            parts = piece.split(self.quote)
            if self.in_quote:
                outside = self.quote + self.quote.join(parts[1::2])
            else:
                outside = self.quote.join(parts[0::2])
            if (len(parts) - 1) % 2:
                self.in_quote = not self.in_quote
            self._count(outside)

    def _count(self, part: Any) -> None:
        if not part:
            return
        self.ends += part.count(self.nl)
        self.blanks += len(self.blank.findall(part))
        if self.after_end and (part[:1] == self.nl or part[:2] == self.crlf):
            self.blanks += 1
        end = part.rfind(self.nl)
        if end >= 0:
            self.after_end = part[end + 1 :] in (self.crlf[:0], self.crlf[:1])
        else:  # a "\r" alone may be the first half of a "\r\n" in the next chunk
            self.after_end = self.after_end and part == self.crlf[:1]

    @property
    def count(self) -> int:
        """Non-blank lines (records), the last one counted even without a final line end."""
        return self.ends - self.blanks + (0 if self.after_end else 1)


@dataclass
class Scan:
    """What is known of the data once every chunk has passed through `feed`."""

    sha: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    utf8: bool = True  # every byte so far is valid UTF-8
    cp1252: bool = True  # no byte that cp1252 leaves undefined
    blank: bool = True  # only whitespace so far
    lines: _Lines = field(default_factory=lambda: _Lines(quoted=False))
    records: _Lines = field(default_factory=lambda: _Lines(quoted=True))
    _decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")())

    def feed(self, chunk: bytes) -> None:
        self.sha.update(chunk)
        self.size += len(chunk)
        if len(self.head) < HEAD:
            self.head += chunk[: HEAD - len(self.head)]
        if self.utf8 and not chunk.isascii():
            try:
                self._decoder.decode(chunk)
            except UnicodeDecodeError:
                self.utf8 = False
        if self.cp1252 and any(gap in chunk for gap in _CP1252_GAPS):
            self.cp1252 = False
        if self.blank and not chunk.isspace():
            self.blank = False
        self.lines.feed(chunk)
        self.records.feed(chunk)

    def close(self) -> None:
        if self.utf8:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.utf8 = False

    @property
    def sha256(self) -> str:
        return self.sha.hexdigest()

    @property
    def complete(self) -> bool:
        """The head is the whole content."""
        return self.size <= len(self.head)

    @classmethod
    def of_bytes(cls, data: bytes) -> Scan:
        scan = cls()
        view = memoryview(data)
        for start in range(0, len(data), CHUNK):
            scan.feed(bytes(view[start : start + CHUNK]))
        scan.close()
        return scan


# ---- receiving a retriever's result ------------------------------------------------------------
@dataclass
class Received:
    """The data as a file with its scan. `owned`: the file is haj's own temporary file (moved
    into the store, or deleted); otherwise it is the user's file, copied and never touched."""

    path: Path
    scan: Scan
    owned: bool

    def open(self) -> IO[bytes]:
        return open(self.path, "rb")

    def place(self, dest: Path) -> None:
        """Put the data at `dest` (a new version's file), all or nothing."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.owned:
            with open(self.path, "rb+") as handle:
                os.fsync(handle.fileno())
            os.chmod(self.path, 0o644)
            os.replace(self.path, dest)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, open(self.path, "rb") as source:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != self.scan.sha256:
                raise DataError(f"{self.path} changed while it was read: retrieve again")
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def discard(self) -> None:
        """Remove haj's temporary file if it is still there (unchanged data, refused data)."""
        if self.owned:
            self.path.unlink(missing_ok=True)


def clean_incoming(project_dir: Path) -> None:
    """Remove what an interrupted retrieve left in data/.incoming (retrieve holds the project's
    lock, so nothing else is writing there)."""
    folder = project_dir / INCOMING
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def scratch(project_dir: Path) -> Iterator[Path]:
    """data/.incoming for one retrieve: emptied before, removed after, with data/ itself when
    this retrieve made it and stored nothing, so a failed retrieve leaves the project as it was."""
    data_dir = project_dir / "data"
    had_data = data_dir.exists()
    clean_incoming(project_dir)
    try:
        yield project_dir / INCOMING
    finally:
        clean_incoming(project_dir)
        if not had_data:
            with contextlib.suppress(OSError):
                data_dir.rmdir()  # only when empty


def _is_frame(result: object) -> bool:
    return type(result).__module__.split(".")[0] == "pandas" and hasattr(result, "to_csv")


def receive(result: object, project_dir: Path, emit: events.Callback) -> Received:
    """The retriever's result as a file with its scan; DataError for a result haj cannot take."""
    incoming = project_dir / INCOMING
    if isinstance(result, os.PathLike):
        return _receive_path(Path(os.fspath(result)), project_dir, emit)
    if isinstance(result, str):
        _refuse_path_as_text(result, project_dir)
        result = result.encode("utf-8")
    if isinstance(result, bytes | bytearray | memoryview):
        data = memoryview(result).cast("B")
        return _stream(
            (bytes(data[i : i + CHUNK]) for i in range(0, len(data), CHUNK)), incoming, None
        )
    if _is_frame(result):
        return _receive_frame(result, incoming, emit)
    if hasattr(result, "read"):
        total = _length_of(result)
        meter = Meter(emit, "reading", total)
        return _stream(_chunks_of(result), incoming, meter)
    if isinstance(result, Iterable) and not isinstance(result, dict):
        meter = Meter(emit, "reading")
        return _stream(_bytes_items(result), incoming, meter)
    raise DataError(
        f"retrieve() returned {type(result).__name__}: return bytes, str, a DataFrame, a "
        "pathlib.Path to a file, a binary file object or an iterator of bytes"
    )


def _refuse_path_as_text(text: str, project_dir: Path) -> None:
    """A str is the data itself; one naming a file is almost surely a mistake."""
    if "\n" in text or len(text) > 1024 or not text.strip():
        return
    with contextlib.suppress(OSError, ValueError):
        path = Path(text.strip()).expanduser()
        if (path if path.is_absolute() else project_dir / path).is_file():
            raise DataError(
                f"retrieve() returned the str {text.strip()!r}, which names a file: return "
                "pathlib.Path(...) to store the file's content (a str is stored as the data)"
            )


def _receive_path(path: Path, project_dir: Path, emit: events.Callback) -> Received:
    if not path.is_absolute():
        path = project_dir / path
    if not path.exists():
        raise DataError(f"retrieve() returned the path {path}, which does not exist")
    if not path.is_file():
        raise DataError(f"retrieve() returned the path {path}, which is not a file")
    incoming = (project_dir / INCOMING).resolve()
    owned = path.resolve().parent == incoming
    scan = Scan()
    meter = Meter(emit, "checking" if owned else "reading", path.stat().st_size)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            scan.feed(chunk)
            meter.add(len(chunk))
    scan.close()
    meter.finish()
    return Received(path, scan, owned=owned)


def _receive_frame(frame: Any, incoming: Path, emit: events.Callback) -> Received:
    """A DataFrame written as UTF-8 CSV straight to a file (pandas writes it in chunks)."""
    incoming.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="frame-", suffix=".csv", dir=incoming)
    os.close(fd)
    path = Path(name)
    try:
        frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
        return _receive_path(path, incoming.parent.parent, events.ignore)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _length_of(handle: Any) -> int | None:
    """The size a file object will give, when it says (an HTTP response's Content-Length)."""
    headers = getattr(handle, "headers", None)
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        length = headers.get("Content-Length") if headers is not None else None
        if length is not None:
            return int(length)
    with contextlib.suppress(AttributeError, OSError, ValueError):
        return os.fstat(handle.fileno()).st_size or None
    return None


def _chunks_of(handle: Any) -> Iterable[bytes]:
    while True:
        chunk = handle.read(CHUNK)
        if not chunk:
            return
        if isinstance(chunk, str):
            raise DataError("retrieve() returned a text file object: open it in binary mode ('rb')")
        yield bytes(chunk)


def _bytes_items(items: Iterable[Any]) -> Iterable[bytes]:
    for item in items:
        if isinstance(item, str):
            item = item.encode("utf-8")
        if not isinstance(item, bytes | bytearray | memoryview):
            raise DataError(
                f"retrieve() returned an iterator of {type(item).__name__}: it must give bytes"
            )
        yield bytes(item)


def _stream(chunks: Iterable[bytes], incoming: Path, meter: Meter | None) -> Received:
    """Write `chunks` to a new file in `incoming`, scanning them."""
    incoming.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="retrieved-", suffix=".part", dir=incoming)
    path = Path(name)
    scan = Scan()
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                scan.feed(chunk)
                out.write(chunk)
                if meter is not None:
                    meter.add(len(chunk))
        scan.close()
        if meter is not None:
            meter.finish()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Received(path, scan, owned=True)


# ---- deciding the format -----------------------------------------------------------------------
@dataclass
class Seen:
    """What the data is: its format, shape and how to read it (recorded with the version)."""

    format: str  # csv | json | txt | html | binary
    rows: int | None = None
    columns: int | None = None
    reading: dict[str, str] = field(default_factory=dict)
    detected: list[str] = field(default_factory=list)  # what was detected, in words
    problem: str = ""  # html and binary: what it looks like


_MAGIC = (
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook is one)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PAR1", "a Parquet file"),
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0", "an old Office file (an Excel .xls workbook?)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ", "xz-compressed data"),
)
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_HTML = re.compile(r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]|<title[\s>]", re.I)


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _binary_kind(head: bytes) -> str | None:
    """What binary data looks like, or None for text."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    sample = head[:SNIFF]
    if b"\x00" in sample or len(_CONTROL.findall(sample)) > 0.05 * max(len(sample), 1):
        return "binary data"
    return None


def looks_like_html(text: str) -> bool:
    start = text.lstrip("\ufeff \t\r\n")[:4096]
    return start.startswith("<") and bool(_HTML.search(start))


def examine(
    scan: Scan,
    reopen: Callable[[], IO[bytes]],
    declared: dict[str, str] | None = None,
) -> Seen:
    """The format of the scanned data, from its head (and its counts): csv or json only when
    the content parses as such, html and binary said as such, else txt. `reopen()` opens the
    whole content again, for what the head cannot answer (a JSON document's records, records in
    an encoding that is not ASCII-compatible)."""
    declared = dict(declared or {})
    head = bytes(scan.head)
    detected: list[str] = []
    bom = _bom_encoding(head)
    if "encoding" in declared:
        encoding = declared["encoding"]
        if encoding == "utf-8" and bom == "utf-8-sig":
            encoding = "utf-8-sig"
    elif bom is not None:
        encoding = bom
    elif scan.utf8:
        encoding = "utf-8"
    else:
        encoding = "cp1252" if scan.cp1252 else "latin-1"
        detected.append(f"encoding {encoding} (not UTF-8)")
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    if not wide:
        kind = _binary_kind(head)
        if kind is not None and "encoding" not in declared:
            return Seen("binary", problem=kind)
    try:
        text = _head_text(head, encoding, scan.complete)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"the data is not {encoding} ([data] encoding): byte {exc.start} of its first "
            'part cannot be decoded; set data.encoding to its real encoding, or "" to detect it'
        ) from None
    reading = {"encoding": encoding}
    if looks_like_html(text):
        return Seen("html", reading=reading, problem="an HTML page")
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and "sep" not in declared:
        shape = _json_shape_of(scan, text, reopen, encoding, wide)
        if shape is not None:
            return Seen("json", *shape, reading=reading, detected=detected)
    delimiter = declared.get("sep") or _csv_delimiter(text[:SNIFF])
    shape = _csv_shape(text, delimiter)
    if shape is not None:
        rows, columns = shape
        if not scan.complete:
            rows = _records(scan, reopen, encoding, wide) - 1
        reading["sep"] = delimiter or ","
        if "decimal" in declared:
            reading["decimal"] = declared["decimal"]
        else:
            reading["decimal"] = _decimal_mark(text, reading["sep"])
        if reading["decimal"] == "," and _thousands_dots(text, reading["sep"]):
            reading["thousands"] = "."
        if "sep" not in declared and reading["sep"] != ",":
            detected.append(f"separator {_sep_name(reading['sep'])}")
        if "decimal" not in declared and reading["decimal"] == ",":
            detected.append(
                "decimal comma" + (" and thousands dots" if "thousands" in reading else "")
            )
        return Seen("csv", rows, columns, reading=reading, detected=detected)
    return Seen("txt", reading=reading, detected=detected)


def _sep_name(sep: str) -> str:
    return {"\t": "tab", ";": "';'", "|": "'|'", ",": "','"}.get(sep, repr(sep))


def _head_text(head: bytes, encoding: str, complete: bool) -> str:
    """The head decoded; when it is not the whole content, up to its last complete line."""
    decoder = codecs.getincrementaldecoder(encoding)()
    text = decoder.decode(head, final=complete)
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    return text


def _records(scan: Scan, reopen: Callable[[], IO[bytes]], encoding: str, wide: bool) -> int:
    """CSV records in the whole content: counted while it streamed, or (UTF-16/32) now."""
    if not wide:
        return scan.records.count
    lines = _Lines(quoted=True, text=True)
    with reopen() as handle:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        while chunk := handle.read(CHUNK):
            lines.feed(decoder.decode(chunk))
        lines.feed(decoder.decode(b"", final=True))
    return lines.count


def _json_shape_of(
    scan: Scan, text: str, reopen: Callable[[], IO[bytes]], encoding: str, wide: bool
) -> tuple[int | None, int | None] | None:
    if scan.complete:
        return _json_shape(text)
    if scan.size <= JSON_PARSE_LIMIT:
        with reopen() as handle:
            return _json_shape(handle.read().decode(encoding))
    # too big to parse whole: JSON lines when the head's lines are objects
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        records = [json.loads(line) for line in lines]
    except ValueError:
        return None, None  # a large JSON document: its records are counted when it is read
    if not records or not all(isinstance(r, dict) for r in records):
        return None
    columns = _records_shape(records)[1]
    rows = scan.lines.count if not wide else None
    return rows, columns


# ---- shapes (shared with engine.data.sniff) ----------------------------------------------------
def _json_shape(text: str) -> tuple[int | None, int | None] | None:
    try:
        document = json.loads(text)
    except ValueError:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            records = [json.loads(line) for line in lines]
        except ValueError:
            return None
        return _records_shape(records)
    return _records_shape(records_of(document))


def records_of(document: Any) -> Any:
    if isinstance(document, dict):
        for value in document.values():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                return value
    return document


def _records_shape(records: Any) -> tuple[int | None, int | None]:
    if isinstance(records, list) and records and all(isinstance(r, dict) for r in records):
        keys: dict[str, None] = {}
        for record in records:
            keys.update(dict.fromkeys(record))
        return len(records), len(keys)
    return None, None


def _csv_delimiter(sample: str) -> str | None:
    import csv

    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return None


def _csv_shape(text: str, delimiter: str | None) -> tuple[int, int] | None:
    """(data rows, columns) when the text is a table, else None.

    A few lines of prose with a comma each also split evenly, so tiny or text-only content needs
    more evidence: one data row counts only under a header of column names with a number in the
    row, and rows whose every field is words (no number, no single-word value) are prose.
    """
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter)) if delimiter else []
    rows = [row for row in rows if row]
    width = len(rows[0]) if rows else 0
    if len(rows) < 2 or width < 2:
        return _single_column_shape(text)
    consistent = sum(1 for row in rows if len(row) == width)
    if consistent < 0.9 * len(rows):
        return None
    header, data = rows[0], rows[1:]
    if len(data) == 1:
        if not all(_column_name(field) for field in header):
            return None
        if not any(_NUMBER.fullmatch(value.strip()) for value in data[0]):
            return None
    if _prose(rows[:200]):
        return None
    return len(data), width


def _single_column_shape(text: str) -> tuple[int, int] | None:
    """A one-column CSV: a column-name header over at least two values, all numbers."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 3 or not _column_name(lines[0]) or _NUMBER.fullmatch(lines[0]):
        return None
    if not all(_NUMBER.fullmatch(value) for value in lines[1:]):
        return None
    return len(lines) - 1, 1


_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_COMMA_DECIMAL = re.compile(r"[-+]?(\d{1,3}(\.\d{3})+|\d+),\d+")
_DOT_DECIMAL = re.compile(r"[-+]?\d+\.\d+([eE][-+]?\d+)?")
_DOT_THOUSANDS = re.compile(r"[-+]?\d{1,3}(\.\d{3})+(,\d+)?")


def _column_name(field: str) -> bool:
    """A header field that reads as a column name, not part of a sentence: no space around it,
    starts with a letter or '_', at most 4 words and 64 characters, no sentence punctuation."""
    return (
        field == field.strip()
        and 0 < len(field) <= 64
        and (field[0].isalpha() or field[0] == "_")
        and len(field.split()) <= 4
        and field[-1] not in ".,;:!?"
    )


def _prose(rows: list[list[str]]) -> bool:
    """Every field is several words and none a number: sentences cut at their commas."""
    fields = [field.strip() for row in rows for field in row if field.strip()]
    return bool(fields) and all(
        len(field.split()) > 1 and not _NUMBER.fullmatch(field) for field in fields
    )


def _fields(text: str, sep: str, limit: int = 2000) -> list[str]:
    """Data fields (header skipped) of the first `limit` rows."""
    import csv
    import io
    from itertools import islice

    rows = islice(csv.reader(io.StringIO(text[: 4 * SNIFF]), delimiter=sep), 1, limit)
    return [value.strip() for row in rows for value in row if value.strip()]


def _decimal_mark(text: str, sep: str) -> str:
    """The decimal mark: "," when numbers are written 1,5 (possible only when "," does not
    separate fields) in more fields than numbers written 1.5."""
    if sep == ",":
        return "."
    fields = _fields(text, sep)
    commas = sum(1 for v in fields if _COMMA_DECIMAL.fullmatch(v))
    points = sum(1 for v in fields if _DOT_DECIMAL.fullmatch(v) and not _DOT_THOUSANDS.fullmatch(v))
    return "," if commas and commas >= points else "."


def _thousands_dots(text: str, sep: str) -> bool:
    """Numbers written 1.234,5 or 12.345 beside decimal commas: the dots group thousands."""
    return any(_DOT_THOUSANDS.fullmatch(v) for v in _fields(text, sep))
