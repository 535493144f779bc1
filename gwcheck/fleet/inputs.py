"""Capture sets as users name them: files, directories, globs, and remote URLs through fsspec (``s3://bucket/prefix/``)."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from typing import BinaryIO

from ..errors import ConfigError

#: Names a directory listing takes as captures (a glob or a named file is taken whatever its name).
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz")
GLOB_CHARACTERS = "*?["


def is_url(text: str) -> bool:
    """Whether ``text`` names a file through fsspec (``s3://...``, ``gs://...``, ``file://...``)."""
    return "://" in text


def expand_captures(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Every capture named by ``inputs``: files as given, directories (recursively) and globs in sorted order.

    URLs are listed with fsspec.  A directory or glob that names no capture raises ConfigError; a named
    file is kept even when it cannot be read (the analysis reports it).
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    out: list[str] = []
    for item in map(os.fspath, items):
        if is_url(item):
            out.extend(_expand_url(item))
        elif os.path.isdir(item):
            found = sorted(os.path.join(root, name) for root, _, names in os.walk(item) for name in names if name.endswith(CAPTURE_SUFFIXES))
            if not found:
                raise ConfigError(f"{item}: no capture files in it (names ending in {', '.join(CAPTURE_SUFFIXES)})")
            out.extend(found)
        elif any(c in item for c in GLOB_CHARACTERS) and not os.path.exists(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not found:
                raise ConfigError(f"{item}: no file matches")
            out.extend(found)
        else:
            out.append(item)
    if not out:
        raise ConfigError("no captures given")
    return out


def _filesystem(url: str):
    """The fsspec filesystem and path of ``url``; ConfigError when fsspec or the protocol's package is missing."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise ConfigError(f"{url}: remote captures are read through fsspec: pip install 'gwcheck[dask]'") from None
    try:
        return url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"{url}: {exc}") from None


def _expand_url(url: str) -> list[str]:
    fs, path = _filesystem(url)
    if any(c in path for c in GLOB_CHARACTERS):
        found = sorted(p for p in fs.glob(path) if fs.isfile(p))
    elif fs.isdir(path):
        found = sorted(p for p in fs.find(path) if p.endswith(CAPTURE_SUFFIXES))
    else:
        return [url]
    if not found:
        raise ConfigError(f"{url}: no capture files there")
    return [fs.unstrip_protocol(p) for p in found]


def open_capture(source: str) -> BinaryIO:
    """A binary file object over a capture: a local path, or a URL through fsspec."""
    if is_url(source):
        fs, path = _filesystem(source)
        return fs.open(path, "rb")
    return open(source, "rb")  # noqa: SIM115 - the caller closes it
