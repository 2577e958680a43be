"""Fetch this project's raw data. This file is yours: adapt it to wherever your data lives.

`haj retrieve` calls `retrieve(config, secrets)` with the current directory set to the project:

- `config` is config.toml as a dict of sections, e.g. `config["data"]["url"]`;
- `secrets` is .env as a dict, e.g. `secrets.get("HAJ_API_KEY")`.

Return the data as bytes, str or a pandas DataFrame. haj stores whatever comes back as a new raw
data version (an identical result is recognised and not stored twice): bytes and str are sniffed
and saved as .csv, .json or .txt, and a DataFrame is saved as CSV. Raise an exception to fail;
its message is shown to the user, so keep it to one clear line and never put a secret in it.

Out of the box, data.url may be:

- `example:NAME`: a dataset bundled with scikit-learn, loaded offline;
- `http://...` or `https://...`: downloaded, sending HAJ_API_KEY (if set) in the header named by
  data.api_key_header (a `user:password@` in the URL is sent as basic authentication);
- `file://...` or a local path (`~` is expanded; relative paths are relative to the project).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from base64 import b64encode
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


def retrieve(config: dict[str, Any], secrets: dict[str, str]) -> bytes | str | pd.DataFrame:
    """The raw data named by config["data"]["url"]."""
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


def download(url: str, timeout: float, api_key: str, api_key_header: str) -> bytes:
    """GET the URL and return the body; the API key (if any) goes in `api_key_header`.

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
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"HTTP {exc.code} {exc.reason} from {shown}") from None
    except urllib.error.URLError as exc:
        raise RuntimeError(f"cannot reach {shown}: {exc.reason}") from None
    except TimeoutError:
        raise RuntimeError(f"no answer from {shown} within {timeout:g} seconds") from None


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


def read_local(path: str) -> bytes:
    """The bytes of a local file; relative paths are relative to the project directory."""
    file = Path(path).expanduser()
    if not file.is_absolute():
        file = Path.cwd() / file
    if not file.exists():
        raise FileNotFoundError(f"data file not found: {file}")
    if file.is_dir():
        raise ValueError(f"data source {file} is a directory: point data.url at a file")
    return file.read_bytes()
