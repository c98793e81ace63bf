"""Reading an export-data archive within bounds: every entry's declared size is checked before it
is opened and its actual size while it is read, and the JSON files are parsed a record at a time
(ijson), so a small archive that inflates to gigabytes is refused without being held in memory."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

import ijson
from pydantic import ValidationError

from pneumoscan.web.results.archive_schema import Record

MEBIBYTE = 1024 * 1024
TABLE_LIMIT = 256 * MEBIBYTE
FILE_LIMIT = 64 * MEBIBYTE
FILES_FOLDER = "files/"


class BadArchive(ValueError):
    """The archive is not one import-data can restore; the message names the entry, row and field."""


class _Bounded:
    """A zip entry's stream that refuses to yield more than `limit` bytes, whatever the header says."""

    def __init__(self, stream, name: str, limit: int) -> None:
        self.stream, self.name, self.left = stream, name, limit

    def read(self, size: int = -1) -> bytes:
        wanted = self.left + 1 if size < 0 else min(size, self.left + 1)
        data = self.stream.read(wanted)
        self.left -= len(data)
        if self.left < 0:
            raise BadArchive(f"{self.name} inflates past its size limit")
        return data


def entry_info(bundle: zipfile.ZipFile, name: str, limit: int) -> zipfile.ZipInfo:
    """The entry's header, refused when missing or declaring more than `limit` bytes."""
    try:
        info = bundle.getinfo(name)
    except KeyError:
        raise BadArchive(f"{name} is missing from the archive") from None
    if info.file_size > limit:
        raise BadArchive(f"{name} declares {info.file_size} bytes, more than the {limit} allowed")
    return info


def check_entries(bundle: zipfile.ZipFile) -> None:
    """Refuses an archive with two entries of one name: which one a reader gets is not defined."""
    names = bundle.namelist()
    if len(names) != len(set(names)):
        raise BadArchive("the archive holds two entries with one name")


def read_file(bundle: zipfile.ZipFile, name: str, limit: int = FILE_LIMIT) -> bytes:
    """One stored image or heatmap, at most `limit` bytes however it is declared."""
    entry = FILES_FOLDER + name
    try:
        with bundle.open(entry_info(bundle, entry, limit)) as stream:
            return _Bounded(stream, entry, limit).read()
    except zipfile.BadZipFile as error:
        raise BadArchive(f"{entry} is damaged: {error}") from None


def records(
    bundle: zipfile.ZipFile, name: str, kind: type[Record], limit: int = TABLE_LIMIT, required: bool = False
) -> Iterator[Record]:
    """The checked records of a JSON array entry, one at a time; nothing if it is absent and not
    `required` (archives from before that table was exported)."""
    if name not in bundle.NameToInfo and not required:
        return
    with bundle.open(entry_info(bundle, name, limit)) as stream:
        try:
            for number, item in enumerate(
                ijson.items(_Bounded(stream, name, limit), "item", use_float=True), 1
            ):
                try:
                    yield kind.model_validate(item)
                except ValidationError as error:
                    raise BadArchive(f"{name} row {number}: {_first_problem(error)}") from None
        except (ijson.JSONError, zipfile.BadZipFile) as error:
            raise BadArchive(f"{name} is not a whole JSON array: {error}") from None


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    field = ".".join(str(part) for part in problem["loc"]) or "row"
    return f"{field}: {problem['msg']}"
