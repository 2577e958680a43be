"""Fetch this project's raw data. This file is yours: adapt it to wherever your data lives.

`haj retrieve` calls `retrieve(config, secrets, progress)` with the current directory set to the
project:

- `config` is config.toml as a dict of sections, e.g. `config["data"]["url"]`;
- `secrets` is .env as a dict, e.g. `secrets.get("HAJ_API_KEY")`;
- `progress(done, total)` reports a download in bytes (total None when unknown); haj shows it as
  a progress bar. A retrieve(config, secrets) without it works too.

Return the data as a pathlib.Path to a file, bytes, str, a pandas DataFrame, a binary file
object or an iterator of bytes. haj stores it as a new raw data version (an identical result
is recognised and not stored twice), reading it in chunks: a file you wrote under
data/.incoming/ is moved into place, any other file is copied and left alone. Big data is best
returned as a Path, never held in memory. A list of Paths names several files (a folder):
haj reads them in name order, aligns their columns by name, leaves out (and names) a file whose
columns do not fit, drops rows repeated across files when [data] dedupe = true, and records each
file (sha256, size, rows) with the version. haj works out the format (.csv, .json or .txt), the
encoding, the CSV separator and the decimal mark ([data] encoding, sep and decimal override
them), and refuses an HTML page or binary data. Raise an exception to fail; its message is
shown to the user, so keep it to one clear line and never put a secret in it.

Out of the box, data.url may be:

- `example:NAME`: a dataset bundled with scikit-learn, loaded offline;
- `http://...` or `https://...`: streamed to a file under data/.incoming/, sending HAJ_API_KEY
  (if set) in the header named by data.api_key_header (a `user:password@` in the URL is sent as
  basic authentication);
- `file://...` or a local path (`~` is expanded; relative paths are relative to the project);
  a folder or a glob pattern (`data/incoming/*.csv`) names several files, which haj combines.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    import pandas as pd

# Datasets that ship inside scikit-learn (no download): example:NAME -> sklearn.datasets.load_NAME.
EXAMPLES = {
    "breast_cancer": "classification",
    "iris": "classification",
    "wine": "classification",
    "digits": "classification",
    "diabetes": "regression",
}
INCOMING = Path("data") / ".incoming"  # downloads land here; haj moves them into data/raw/
CHUNK = 1 << 20  # bytes read at a time

Progress = Callable[[int, "int | None"], None]


def _no_progress(done: int, total: int | None) -> None:
    pass


def retrieve(
    config: dict[str, Any], secrets: dict[str, str], progress: Progress = _no_progress
) -> Path | pd.DataFrame:
    """The raw data named by config["data"]["url"]: a file, or a DataFrame."""
    data = config.get("data", {})
    url = str(data.get("url") or "").strip()
    if not url:
        raise ValueError(
            "no data source: set [data] url in config.toml (`haj config NAME --url URL`, "
            "or the app's Config tab)"
        )
    scheme = urlsplit(url).scheme.lower()
    if scheme == "example":
        return load_example(url.partition(":")[2])
    if scheme in ("http", "https"):
        return download(
            url,
            timeout=float(data.get("timeout") or 60),
            api_key=(secrets.get("HAJ_API_KEY") or "").strip(),
            api_key_header=str(data.get("api_key_header") or "X-API-Key"),
            progress=progress,
        )
    if scheme == "file":
        return read_local(file_url_path(url))
    if scheme == "" or len(scheme) == 1:  # a plain path; one letter is a Windows drive ("C:\...")
        return read_local(url)
    raise ValueError(
        f"unsupported data source {scheme}://: use http(s)://, file://, a local path or "
        "example:NAME, or edit retriever.py to fetch it"
    )


def load_example(name: str) -> pd.DataFrame:
    """A scikit-learn bundled dataset as a frame; its target column is named "target"."""
    from sklearn import datasets

    key = name.strip().lower().replace("-", "_")
    if key not in EXAMPLES:
        valid = ", ".join(f"example:{known} ({kind})" for known, kind in EXAMPLES.items())
        raise ValueError(f"unknown example dataset {name!r}; valid ones are: {valid}")
    bunch = getattr(datasets, f"load_{key}")(as_frame=True)
    return bunch.frame


def download(
    url: str,
    timeout: float,
    api_key: str,
    api_key_header: str,
    progress: Progress = _no_progress,
) -> Path:
    """GET the URL into a new file under data/.incoming/ and return its path; the API key (if
    any) goes in `api_key_header`. The body is written as it arrives, never held in memory, and
    `progress(done, total)` is told every chunk. A download cut short is an error, and leaves
    no file behind.

    A user and password in the URL (https://user:password@host/...) are sent as HTTP basic
    authentication.
    """
    parts = urlsplit(url)
    secret_headers = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        secret_headers["Authorization"] = "Basic " + b64encode(credentials.encode()).decode()
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if api_key:
        bearer = api_key_header.lower() == "authorization"
        secret_headers[api_key_header] = f"Bearer {api_key}" if bearer else api_key
    request = urllib.request.Request(url, headers={"User-Agent": "haj"})
    for name, value in secret_headers.items():
        # "Unredirected": urllib must not forward secrets when redirected; _SecretRedirects below
        # re-adds them only for redirects to the same host that do not leave https.
        request.add_unredirected_header(name, value)
    opener = urllib.request.build_opener(_SecretRedirects(list(secret_headers)))
    shown = display_url(url)
    INCOMING.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=INCOMING, prefix="download-", suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle, opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            progress(done, total)
            while chunk := response.read(CHUNK):
                handle.write(chunk)
                done += len(chunk)
                progress(done, total)
        if total is not None and done < total:
            raise SourceUnavailable(f"the download from {shown} stopped at {done} of {total} bytes")
        return path
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, SourceUnavailable):
            raise
        if isinstance(exc, urllib.error.HTTPError):
            # a server error may pass (retried by `haj pipeline`); a 4xx is the request's fault
            error = SourceUnavailable if exc.code >= 500 else RuntimeError
            raise error(f"HTTP {exc.code} {exc.reason} from {shown}") from None
        if isinstance(exc, urllib.error.URLError):
            raise SourceUnavailable(f"cannot reach {shown}: {exc.reason}") from None
        if isinstance(exc, TimeoutError):
            raise SourceUnavailable(f"no answer from {shown} within {timeout:g} seconds") from None
        if isinstance(exc, OSError):
            raise SourceUnavailable(f"the download from {shown} failed: {exc}") from None
        raise


class SourceUnavailable(ConnectionError):
    """The source could not be reached, timed out or answered 5xx: worth trying again (the
    pipeline retries it; a bug in this file is not retried)."""


class _SecretRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects; secret headers go along only to the same host and never https -> http."""

    def __init__(self, headers: list[str]) -> None:
        self.headers = [name.capitalize() for name in headers]  # as urllib.request stores names

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is None:
            return None
        old, target = urlsplit(req.full_url), urlsplit(new.full_url)
        downgraded = old.scheme == "https" and target.scheme != "https"
        if target.hostname == old.hostname and not downgraded:
            for name in self.headers:
                if name in req.unredirected_hdrs:
                    new.add_unredirected_header(name, req.unredirected_hdrs[name])
        return new


def display_url(url: str) -> str:
    """The URL for messages: without a user/password part or query values."""
    parts = urlsplit(url)
    query = "..." if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, query, ""))


def file_url_path(url: str) -> str:
    """The local path of a file:// URL."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"file:// URLs must name a local file, not one on host {parts.netloc!r}")
    return urllib.request.url2pathname(parts.path)


def read_local(path: str) -> Path | list[Path]:
    """A local file, checked (haj copies it in chunks); or, for a folder or a glob pattern
    (data/incoming/*.csv), its files: haj reads and combines them into one version, recording
    each file. Relative paths are relative to the project directory."""
    file = Path(path).expanduser()
    if not file.is_absolute():
        file = Path.cwd() / file
    if any(mark in file.name for mark in "*?["):
        matched = sorted(p for p in file.parent.glob(file.name) if p.is_file())
        if not matched:
            raise FileNotFoundError(f"no file matches {file}")
        return matched
    if not file.exists():
        raise FileNotFoundError(f"data file not found: {file}")
    if file.is_dir():
        files = sorted(p for p in file.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise FileNotFoundError(f"the folder {file} holds no file")
        return files
    return file
