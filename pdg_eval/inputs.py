"""Reading input files strictly: text lines, whole texts and JSON, each problem an :class:`InputError` at its place.

Every reader of user files goes through these functions, so that every malformed input (bad UTF-8, a line over the
limit, CR-only line ends, JSON that Python would accept but cannot round-trip, nesting that would exhaust the stack)
is one ``file:line: field: problem`` line, and :func:`schema_problem` checks decoded values against the JSON Schemas
in ``schemas/``.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import sys
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import jsonschema

from .errors import ConfigError, InputError

MAX_RECORD_BYTES = 1 << 20  # 1 MiB; a longer line is almost always a degenerate generation
#: Deepest nesting of arrays and objects accepted in JSON input; deeper input is refused before decoding (Python's
#: decoder recurses once per level and raises RecursionError near 1000)
MAX_JSON_DEPTH = 64
BOM = b"\xef\xbb\xbf"
#: Leading bytes of compressed files, named when such a file is given as text
_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"7z\xbc\xaf\x27\x1c": "7z", b"BZh": "bzip2",
               b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
#: A JSON string, or one bracket outside strings (possessive: linear time on unterminated strings)
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.S)
#: One backslash escape in JSON text; group 1: the hex digits of a ``\uXXXX`` escape
_JSON_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.S)


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``schemas/<name>.schema.json``: ``record`` (an input record) or ``score`` (a score JSON)."""
    return json.loads(resources.files("pdg_eval").joinpath(f"schemas/{name}.schema.json").read_text("utf-8"))


@lru_cache(maxsize=None)
def _validator(name: str) -> jsonschema.Draft202012Validator:
    """``name``: a schema file's stem, or ``stem#definition`` for one of its ``$defs`` (``leaderboard#run``)."""
    stem, _, definition = name.partition("#")
    schema = load_schema(stem)
    return jsonschema.Draft202012Validator({**schema, "$ref": f"#/$defs/{definition}"} if definition else schema)


def schema_problem(obj: Any, schema: str = "record", limit: int = 200) -> tuple[str, str] | None:
    """``(field, problem)`` for the most relevant way ``obj`` breaks :func:`load_schema` ``(schema)``, or None.

    ``field`` is the dotted path (``metrics.0.spec``; the schema's name for the whole value); ``problem`` is cut to
    ``limit`` characters (jsonschema quotes the offending value, which can be a whole line).
    """
    error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(obj))
    if error is None:
        return None
    field_name = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{field_name}.{missing}" if field_name else missing, "missing required field"
    if error.validator == "oneOf" and field_name == "reference":
        return field_name, "must be a string or a non-empty list of strings"
    problem = error.message.replace(repr(error.instance), reprlib.repr(error.instance))  # no 100 kB value dumps
    problem = problem if len(problem) <= limit else f"{problem[:limit - 1]}…"
    return field_name or schema.partition("#")[2] or schema, problem


def _compressed(raw: bytes) -> str:
    """`` (a gzip file? decompress it first)`` when ``raw`` starts like a compressed file, else ``""``."""
    kind = next((name for magic, name in _COMPRESSED.items() if raw.startswith(magic)), None)
    return f" (a {kind} file? decompress it first)" if kind else ""


def _decode(raw: bytes, source: str, line: int = 1, field: str | None = "record") -> str:
    """``raw`` (starting on ``line``) decoded as UTF-8; :class:`InputError` at the line and column of a bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = line + raw.count(b"\n", 0, exc.start)
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        hint = _compressed(raw) if where == 1 else ""
        raise InputError(source, where, field,
                         f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}){hint}") from None


def _rest_of_line(handle: BinaryIO) -> int:
    """Read to the end of the current line in bounded chunks; returns the number of bytes read."""
    size = 0
    while chunk := handle.readline(1 << 20):
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return size


def iter_lines(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a UTF-8 file with LF or CRLF line ends (a leading BOM is accepted), streaming.

    :class:`InputError` for non-UTF-8 bytes, a line longer than ``max_bytes`` (never held in memory), a carriage
    return inside a line (CR-only line ends) and a byte-order mark starting a later line (concatenated files).
    """
    if max_bytes < 1:
        raise ConfigError(f"the longest accepted line must be at least 1 byte, not {max_bytes}")
    source = str(path)
    with open(path, "rb") as handle:
        number = 0
        while raw := handle.readline(max_bytes + 1):
            number += 1
            if len(raw) > max_bytes:
                size = len(raw) + (0 if raw.endswith(b"\n") else _rest_of_line(handle))
                raise InputError(source, number, "record",
                                 f"line is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.1f} MiB limit "
                                 "(raise it with --max-record-bytes)")
            if raw.startswith(BOM):
                if number > 1:
                    raise InputError(source, number, "record", "byte-order mark (U+FEFF) at the start of a line "
                                                                "after the first (concatenated files?): remove it")
                raw = raw[len(BOM):]
            text = _decode(raw, source, number).rstrip("\r\n")
            if "\r" in text:
                raise InputError(source, number, "record", f"carriage return inside the line (column "
                                                            f"{text.index(chr(13)) + 1}): convert CR line ends to LF")
            yield number, text


def read_text(path: str | Path) -> str:
    """The whole text of a UTF-8 file (a leading BOM removed); :class:`InputError` at a non-UTF-8 byte."""
    return _decode(Path(path).read_bytes().removeprefix(BOM), str(path), field=None)


def _position(text: str, offset: int, line: int | None) -> tuple[int, int]:
    """``(line, column)``, 1-based, of ``offset`` in ``text``, which starts on ``line`` (default 1)."""
    return (line or 1) + text.count("\n", 0, offset), offset - text.rfind("\n", 0, offset)


def _too_deep(text: str) -> int | None:
    """Offset of the bracket that opens level ``MAX_JSON_DEPTH + 1`` of JSON ``text``, or None."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return None
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        if token.group() in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return token.start()
        elif token.group() in ("]", "}"):
            depth -= 1
    return None


def _lone_surrogate(text: str) -> int | None:
    """Offset of a ``\\uD800``-``\\uDFFF`` escape in JSON ``text`` that is not half of a surrogate pair, or None."""
    if "\\u" not in text:
        return None
    high: re.Match[str] | None = None
    for escape in _JSON_ESCAPE.finditer(text):
        code = int(escape.group(1), 16) if escape.group(1) else -1
        if high is not None:
            if 0xDC00 <= code <= 0xDFFF and escape.start() == high.end():
                high = None
                continue
            return high.start()
        if 0xD800 <= code <= 0xDBFF:
            high = escape
        elif 0xDC00 <= code <= 0xDFFF:
            return escape.start()
    return None if high is None else high.start()


class _Refused(Exception):
    """A JSON value :func:`decode_json` refuses, raised from a decoder hook (which knows no position)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Refused(f"duplicate key {key!r} in one object")
    return obj


def _refuse_constant(name: str) -> float:
    raise _Refused(f"{name} is not valid JSON (use null or a number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"number {text[:20]}{'…' if len(text) > 20 else ''} is beyond the range of a double")
    return value


def _int(text: str) -> int:
    limit = sys.get_int_max_str_digits()
    digits = len(text.lstrip("-"))
    if limit and digits > limit:
        raise _Refused(f"integer of {digits} digits, over Python's {limit}-digit limit (write it as a string)")
    return int(text)


def decode_json(text: str, source: str, line: int | None = None, field: str | None = "record",
                finite: bool = True) -> Any:
    """Decode JSON ``text`` strictly; :class:`InputError` (``source:line: field: problem (column c)``) for malformed
    JSON, nesting deeper than :data:`MAX_JSON_DEPTH`, a duplicate key (RFC 8259 §4: names SHOULD be unique), an
    integer longer than Python converts, an escaped lone surrogate (not a character: UTF-8 cannot encode it) and,
    with ``finite``, the non-standard ``NaN``/``Infinity`` literals and numbers beyond a double's range.

    ``line``: the line ``text`` is on (one JSONL line); None: ``text`` is a whole document, lines counted from 1.
    """
    def refuse(problem: str, offset: int | None = None) -> InputError:
        if offset is None:
            return InputError(source, line, field, problem)
        row, column = _position(text, offset, line)
        return InputError(source, row, field, f"{problem} (column {column})")

    deep = _too_deep(text)
    if deep is not None:
        raise refuse(f"nested deeper than {MAX_JSON_DEPTH} arrays/objects", deep)
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_int=_int,
                           **({"parse_constant": _refuse_constant, "parse_float": _finite_float} if finite else {}))
    except json.JSONDecodeError as exc:
        raise refuse(f"malformed JSON: {exc.msg}", exc.pos) from None
    except _Refused as exc:
        raise refuse(str(exc)) from None
    surrogate = _lone_surrogate(text)
    if surrogate is not None:
        escape = text[surrogate:surrogate + 6]
        raise refuse(f"{escape} is a lone surrogate (half of a UTF-16 pair), not a character", surrogate)
    return value
