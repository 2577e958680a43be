"""Data intake that says what it sees (engine.ingest, engine.data.retrieve_in_process, the template
retriever): downloads stream to disk with progress and bounded memory, an HTML page or binary
data is refused in one line without touching stored versions, and a latin-1, `;`-separated,
decimal-comma CSV is read as the table it is (or as [data] encoding/sep/decimal say), the same way
every time. Most tests run the runner's side in this process against a real 127.0.0.1 server."""

from __future__ import annotations

import io
import json
import threading
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from engine import data, events, workspace
from engine.errors import ConfigError, DataError
from engine.project import Project
from tests.fs_snapshot import snapshot
from tests.support import Result, as_json

LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html lang='en'><head><title>Sign in</title></head>\n"
    b"<body><form>Email, password</form></body></html>\n"
)


class Files:
    """A 127.0.0.1 HTTP server answering GET /NAME with files[NAME] (with a Content-Length)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                view = memoryview(body)
                for start in range(0, len(body), 1 << 16):
                    self.wfile.write(view[start : start + (1 << 16)])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def files() -> Iterator[Files]:
    served = Files()
    thread = threading.Thread(target=served.httpd.serve_forever, daemon=True)
    thread.start()
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A new project from the templates; the current directory is the project's, as in the
    runner (the template retriever writes its downloads under data/.incoming/)."""
    made = workspace.create_project(tmp_path / "ws", "shop", "classification", target="label")
    monkeypatch.chdir(made.path)
    return made


def retrieve(project: Project, url: str | None = None) -> tuple[dict, list[events.Event]]:
    """`haj retrieve` as the runner runs it; (result, events)."""
    if url is not None:
        project.update_config({"data": {"url": url}})
    seen: list[events.Event] = []
    return data.retrieve_in_process(project, seen.append), seen


def messages(seen: list[events.Event]) -> str:
    return "\n".join(e.message for e in seen if isinstance(e, events.Log))


def customers_csv(rows: int) -> bytes:
    """A table with a quoted free-text column whose values hold commas and line breaks."""
    lines = ["id,spend,plan,note,label"]
    for i in range(rows):
        note = f'"called, day {i % 365}\nsaid ""fine"""' if i % 5 == 0 else f"day {i}"
        lines.append(f"{i},{i * 1.5:.2f},{('basic', 'pro')[i % 2]},{note},{'ab'[i % 3 == 0]}")
    return ("\n".join(lines) + "\n").encode()


def stored_files(project: Project) -> dict[str, str]:
    return snapshot(project.path / "data")


# ---- streaming and progress ----------------------------------------------------------------------
def test_a_download_streams_to_disk_with_byte_progress_and_bounded_memory(
    project: Project, files: Files
) -> None:
    """The body never sits whole in Python memory (the old retrieve held it several times),
    progress reports bytes of the Content-Length with a rate, and rows are counted right across
    quoted line breaks without parsing the file into rows."""
    body = customers_csv(600_000)  # ~23 MB
    files.files["customers.csv"] = body
    tracemalloc.start()
    try:
        result, seen = retrieve(project, f"{files.url}/customers.csv")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < len(body) / 2, f"peak Python allocations {peak:,} for a {len(body):,} byte file"

    version = result["version"]
    assert (version["format"], version["rows"], version["columns"]) == ("csv", 600_000, 5)
    assert len(pd.read_csv(io.BytesIO(body))) == 600_000
    assert (project.path / version["path"]).read_bytes() == body
    assert not (project.path / "data" / ".incoming").exists()

    progress = [e for e in seen if isinstance(e, events.Progress)]
    downloads = [e for e in progress if e.label == "downloading"]
    assert downloads and all(e.unit == "bytes" and e.total == len(body) for e in downloads)
    assert downloads[-1].done == len(body) and downloads[-1].rate
    # events cross the runner's pipe as JSON: the new fields survive it
    assert events.from_json(json.loads(json.dumps(downloads[-1].to_json()))) == downloads[-1]


def test_the_retriever_may_return_a_path_a_file_object_or_an_iterator_of_bytes(
    project: Project, tmp_path: Path
) -> None:
    """The extended contract, each streamed and hashed to the same version; bytes, str and a
    DataFrame (what existing retriever.py files return) still work; a Path outside the project
    is copied and left alone, one under data/.incoming/ is moved."""
    body = customers_csv(50)
    outside = tmp_path / "export.csv"
    outside.write_bytes(body)
    code = project.code_path("retriever")
    variants = {
        "path": f"return Path({str(outside)!r})",
        "file": f"return open({str(outside)!r}, 'rb')",
        "iterator": f"return iter([Path({str(outside)!r}).read_bytes()[:7], "
        f"Path({str(outside)!r}).read_bytes()[7:]])",
        "bytes": f"return Path({str(outside)!r}).read_bytes()",
        "str": f"return Path({str(outside)!r}).read_text()",
        "incoming": "p = Path('data/.incoming'); p.mkdir(parents=True, exist_ok=True)\n"
        f"    (p / 'mine.csv').write_bytes(Path({str(outside)!r}).read_bytes())\n"
        "    return p / 'mine.csv'",
    }
    ids = set()
    for name, statement in variants.items():
        code.write_text(
            f"from pathlib import Path\n\ndef retrieve(config, secrets):\n    {statement}\n"
        )
        result, _ = retrieve(project)
        ids.add(result["version"]["id"])
        assert result["version"]["rows"] == 50, name
    assert ids == {"raw-0001"}  # the same content every time: one version
    assert outside.read_bytes() == body  # the user's file is untouched
    assert not (project.path / "data" / ".incoming").exists()

    code.write_text(
        "import pandas as pd\n\ndef retrieve(config, secrets):\n"
        "    return pd.DataFrame({'x': [1.5, 2.5, 3.5], 'label': ['a', 'b', 'a']})\n"
    )
    frame_version = retrieve(project)[0]["version"]
    assert (frame_version["format"], frame_version["rows"]) == ("csv", 3)


def test_template_retriever_reports_download_progress_through_a_callback(
    project: Project, files: Files
) -> None:
    """templates/common/retriever.py streams an http(s) source to data/.incoming/ and calls
    progress(done, total) as it goes; a source that stops early is an error, and no partial
    file stays behind."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("retriever", project.code_path("retriever"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    body = customers_csv(40_000)
    files.files["c.csv"] = body
    calls: list[tuple[int, int | None]] = []
    path = module.download(
        f"{files.url}/c.csv", 10, "", "X-API-Key", progress=lambda *a: calls.append(a)
    )
    assert path.parent == project.path / "data" / ".incoming"
    assert path.read_bytes() == body
    assert calls[-1] == (len(body), len(body)) and len(calls) > 2
    with pytest.raises(RuntimeError, match="HTTP 404"):
        module.download(f"{files.url}/missing.csv", 10, "", "X-API-Key")
    assert [p.name for p in path.parent.iterdir()] == [path.name]


# ---- refusing what is not data -------------------------------------------------------------------
def test_an_html_page_or_binary_data_is_refused_in_one_line_and_stored_versions_stay(
    project: Project, files: Files
) -> None:
    files.files["data.csv"] = customers_csv(30)
    files.files["login"] = LOGIN_PAGE
    workbook = io.BytesIO()
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    files.files["book.xlsx"] = workbook.getvalue()
    files.files["random.bin"] = bytes(range(256)) * 64
    retrieve(project, f"{files.url}/data.csv")
    before = stored_files(project)
    db_before = (project.path / "haj.db").read_bytes()

    for name, said in [
        ("login", "returned an HTML page, not data (a login or error page is the usual cause"),
        ("book.xlsx", "returned a zip archive (an Excel .xlsx workbook is one), not CSV"),
        ("random.bin", "returned binary data, not CSV, JSON or text"),
    ]:
        with pytest.raises(DataError) as refused:
            retrieve(project, f"{files.url}/{name}")
        assert said in refused.value.message and "\n" not in refused.value.message
        assert stored_files(project) == before  # no file added, no .incoming left
    assert (project.path / "haj.db").read_bytes() == db_before
    assert [v["id"] for v in data.versions(project)] == ["raw-0001"]


# ---- encodings, separators, decimal marks --------------------------------------------------------
GERMAN = "name;preis;menge;label\n" + "".join(
    f"Müller {i};{i},5;{i + 1}.{i:03d},25;{'ja' if i % 2 else 'nein'}\n" for i in range(30)
)


def test_a_latin1_semicolon_csv_with_decimal_commas_is_read_as_the_table_it_is(
    project: Project, files: Files
) -> None:
    """Before, such a file became a .txt version with one 'line' column."""
    files.files["export.csv"] = GERMAN.encode("latin-1")
    result, seen = retrieve(project, f"{files.url}/export.csv")
    version = result["version"]
    assert (version["format"], version["rows"], version["columns"]) == ("csv", 30, 4)
    assert "detected encoding cp1252 (not UTF-8), separator ';', decimal comma and thousands " in (
        messages(seen)
    )
    listed = data.versions(project)[0]
    assert listed["reading"] == {"encoding": "cp1252", "sep": ";", "decimal": ",", "thousands": "."}
    frame = data.preview(project, version["id"])["head"]
    assert list(frame.columns) == ["name", "preis", "menge", "label"]
    assert frame["name"][1] == "Müller 1"
    assert frame["preis"].tolist()[:3] == [0.5, 1.5, 2.5]
    assert frame["menge"].tolist()[:2] == [1000.25, 2001.25]


def test_declared_encoding_sep_and_decimal_win_and_a_version_keeps_its_reading(
    project: Project, files: Files
) -> None:
    """A cp1251 (Cyrillic) export is detected as cp1252, wrongly; [data] encoding fixes it.
    The same bytes read another way are another version; the version keeps loading the way it
    was retrieved after config.toml changes again."""
    rows = "имя;цена;label\nИван;1,5;a\nПётр;2,5;b\nОля;3,5;a\n"  # noqa: RUF001
    files.files["ru.csv"] = rows.encode("cp1251")
    retrieve(project, f"{files.url}/ru.csv")
    assert "имя" not in data.preview(project, "raw-0001")["head"].columns  # read as cp1252

    project.update_config({"data": {"encoding": "cp1251"}})
    second, _ = retrieve(project)
    assert second["created"] and second["version"]["id"] == "raw-0002"
    assert data.preview(project, "raw-0002")["head"]["имя"].tolist() == ["Иван", "Пётр", "Оля"]

    project.update_config({"data": {"encoding": "", "decimal": "."}})
    third, _ = retrieve(project)  # read with a decimal point: "1,5" stays text
    assert third["version"]["id"] == "raw-0003"
    assert data.preview(project, "raw-0003")["head"].iloc[:, 1].tolist()[0] == "1,5"
    # raw-0002 still loads as cp1251 with decimal commas, whatever config.toml says now
    again = data.preview(project, "raw-0002")["head"]
    assert again["имя"].tolist()[0] == "Иван" and again["цена"].tolist()[0] == 1.5

    project.update_config({"data": {"decimal": ""}})
    fourth, _ = retrieve(project)
    assert (fourth["created"], fourth["version"]["id"]) == (False, "raw-0001")  # as detected


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("encoding", "klingon", "data.encoding 'klingon' is not an encoding Python knows"),
        ("sep", "ab", "data.sep must be one separator character"),
        ("decimal", ";", 'data.decimal must be "." or ","'),
    ],
)
def test_bad_intake_options_are_one_line_config_errors(
    project: Project, key: str, value: str, said: str
) -> None:
    config = project.config_path
    config.write_text(config.read_text().replace(f'{key} = ""', f'{key} = "{value}"', 1))
    with pytest.raises(ConfigError, match=said) as error:
        project.read_config()
    assert "\n" not in error.value.message


def test_tab_separator_can_be_declared_by_name(project: Project) -> None:
    config = project.config_path
    config.write_text(config.read_text().replace('sep = ""', 'sep = "tab"', 1))
    project.read_config()
    assert data.sniff(b"a b\tc\n1\t2\n3\t4\n", {"sep": "\t"}) == ("csv", 2, 2)


# ---- the CLI and the app -------------------------------------------------------------------------
@pytest.mark.integration
def test_cli_retrieve_shows_download_progress_and_refuses_html_in_one_line(
    haj: Callable[..., Result], home: Path, files: Files
) -> None:
    body = customers_csv(80_000)
    files.files["c.csv"] = body
    files.files["login"] = LOGIN_PAGE
    made = haj(
        "init", "web", "-p", "classification", "--url", f"{files.url}/c.csv", "--target", "label"
    )
    assert made.code == 0, made.text
    retrieved = haj("retrieve", "web")
    assert retrieved.code == 0, retrieved.text
    size = f"{len(body) / 1e6:.3g} MB"
    assert f"downloading {size} of {size} (100%), " in retrieved.out and "MB/s" in retrieved.out
    assert "new raw version raw-0001" in retrieved.out

    haj("config", "web", "--url", f"{files.url}/login")
    refused = haj("retrieve", "web")
    assert refused.code != 0 and refused.err.count("\n") == 1
    assert "returned an HTML page, not data" in refused.err and "Traceback" not in refused.text
    assert [v["id"] for v in as_json(haj("data", "web", "--json"))] == ["raw-0001"]  # type: ignore[union-attr]


@pytest.mark.integration  # the app (Textual), on the fake engine
async def test_data_tab_shows_a_downloads_bytes_and_rate_while_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textual.widgets import Label, ProgressBar

    from haj_tui.app import HajApp
    from haj_tui.screens.project import ProjectScreen
    from tests.tui_fake import FakeWorkspace
    from tests.tui_support import no_cursor_blink, wait_for, workers_done

    no_cursor_blink(monkeypatch)
    cancer = FakeWorkspace.populated().project("cancer")
    gate = threading.Event()

    def downloading(on_event: events.Callback = events.ignore, cancel: object = None) -> dict:
        on_event(events.Log("retrieving from https://example.com/big.csv"))
        on_event(events.Progress(52_400_000, 200_000_000, "downloading", "bytes", 31_200_000.0))
        gate.wait(20)
        return {"version": cancer.data[0], "created": False}

    monkeypatch.setattr(cancer, "retrieve", downloading)
    app = HajApp(cancer.workspace)  # type: ignore[arg-type]
    async with app.run_test(size=(110, 32)) as pilot:
        await app.push_screen(ProjectScreen(cancer))  # type: ignore[arg-type]
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        screen.action_show_tab("data")
        await wait_for(pilot, lambda: screen.shown_tab == "data", what="the data tab")
        await workers_done(app)
        tab = screen.tab("data")
        bar = tab.query_one("#data-progress", ProgressBar)
        state = tab.query_one("#data-state", Label)
        assert not bar.display  # nothing moving: no bar
        await pilot.press("r")
        said = "Downloading 52.4 MB of 200 MB (26%), 31.2 MB/s (x to cancel)"
        await wait_for(pilot, lambda: said in str(state.render()), what="the download's progress")
        assert bar.display and (bar.progress, bar.total) == (52_400_000, 200_000_000)
        gate.set()
        await wait_for(pilot, lambda: not bar.display, what="the bar to go when retrieve ends")
        assert "Unchanged" in str(state.render())
