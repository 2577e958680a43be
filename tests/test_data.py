"""Data: format sniffing, content-addressed versions, the template retriever against a real HTTP
server (the API key arrives, and goes nowhere else), local files, and the template processor on a
messy real-world table that is then trained on."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import random
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.data import sniff
from engine.templates import templates_root
from tests.support import Result, as_json

SECRET = "hk-live-7Q2w9Zx4Lm"


# ---- sniffing ----
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a,b,c\n1,2,3\n4,5,6\n", ("csv", 2, 3)),
        ("\ufeffname;price\nx;1,5\ny;2,5\n".encode(), ("csv", 2, 2)),  # BOM, semicolons
        (b"a\tb\n1\t2\n", ("csv", 1, 2)),
        (b'[{"a": 1, "b": 2}, {"a": 3, "c": 4}]', ("json", 2, 3)),
        (b'{"data": [{"a": 1}, {"a": 2}], "next": null}', ("json", 2, 1)),
        (b'{"a": 1}\n{"a": 2, "b": 3}\n', ("json", 2, 2)),  # JSON lines
        (b'{"status": "ok"}', ("json", None, None)),  # JSON, but not a table
        (b"just some words\nand more words\n", ("txt", None, None)),
        (b"single\ncolumn\nvalues\n", ("txt", None, None)),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ("binary", None, None)),  # refused by retrieve
        (b'{"a": 1, "b": [1, 2\n', ("txt", None, None)),  # looks like JSON, is not
        (b"a,b\n1,2,3,4\n5\n6,7,8\n", ("txt", None, None)),  # ragged rows are not a table
        # prose that splits evenly at its commas is not a table
        (b"Hello there, my friend.\nThis is fine, thanks!\n", ("txt", None, None)),
        (b"Quarterly notes,first draft\nNothing to add,really\n", ("txt", None, None)),
        (b"I came, I saw\nhe ran, she hid\nwe ate, they drank\n", ("txt", None, None)),
        (b"name,city\nAda Lovelace,London\nAlan Turing,Wilmslow\n", ("csv", 2, 2)),
        # one column: a column name over numbers
        (b"x\n1\n2\n3\n", ("csv", 3, 1)),
        (b"price\n1.5\n-2e3\n\n4\n", ("csv", 3, 1)),
        (b"1\n2\n3\n", ("txt", None, None)),  # no header
        (b"x\n1\n", ("txt", None, None)),  # a single value
    ],
)
def test_sniff_names_csv_and_json_only_when_they_parse(content: bytes, expected: tuple) -> None:
    assert sniff(content) == expected


# ---- a real HTTP server ----
CSV_BODY = "f1,f2,label\n" + "".join(
    f"{i * 3 + 10},{i % 7},{'a' if i % 3 else 'b'}\n" for i in range(60)
)


class Server:
    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.key_header = "X-API-Key"
        self.expected = SECRET
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.startswith("/broken"):
                    self.send_error(500, "Internal Server Error")
                    return
                if self.headers.get(server.key_header) != server.expected:
                    self.send_error(401, "Unauthorized")
                    return
                body = CSV_BODY.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def server() -> Iterator[Server]:
    served = Server()
    served.thread.start()
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


def test_http_retrieval_sends_the_api_key_and_never_shows_it(
    haj: Callable[..., Result], home: Path, server: Server
) -> None:
    url = f"{server.url}/data.csv?token=querysecret&page=1"
    outputs = [haj("init", "web", "-p", "classification", "--url", url, "--target", "label")]
    outputs.append(haj("config", "web", "--api-key", input=SECRET + "\n"))
    retrieved = haj("retrieve", "web")
    outputs.append(retrieved)
    assert retrieved.code == 0, retrieved.text
    assert server.requests[-1]["x-api-key"] == SECRET
    assert "new raw version raw-0001" in retrieved.out
    (version,) = as_json(haj("data", "web", "--json"))  # type: ignore[misc]
    assert version["format"] == "csv" and (version["rows"], version["columns"]) == (60, 3)
    assert "token=%2A%2A%2A" in version["source"] or "token=***" in version["source"]
    assert "querysecret" not in version["source"] and "page=1" in version["source"]

    # the key as "Authorization: Bearer ..." when the header is named so in config.toml
    config = home / "web" / "config.toml"
    config.write_text(config.read_text().replace('"X-API-Key"', '"Authorization"', 1))
    server.key_header, server.expected = "Authorization", f"Bearer {SECRET}"
    outputs.append(haj("retrieve", "web"))
    assert outputs[-1].code == 0 and "unchanged" in outputs[-1].out
    assert server.requests[-1]["authorization"] == f"Bearer {SECRET}"

    # failures are one line, without the key
    server.expected = "another key"
    refused = haj("retrieve", "web")
    assert refused.code == 6
    assert "HTTP 401 Unauthorized" in refused.err and refused.err.count("\n") == 1
    outputs.append(refused)
    haj("config", "web", "--url", f"{server.url}/broken")
    broken = haj("retrieve", "web")
    assert broken.code != 0 and "HTTP 500" in broken.err
    outputs.append(broken)
    outputs.append(haj("status", "web"))
    outputs.append(haj("config", "web"))

    for result in outputs:
        assert SECRET not in result.text
    project = home / "web"
    assert SECRET not in config.read_text()
    for path in project.rglob("*"):
        if path.is_file() and path.name != ".env":
            assert SECRET.encode() not in path.read_bytes(), path
            assert b"querysecret" not in path.read_bytes() or path.name == "config.toml", path


def test_local_paths_file_urls_and_formats(
    haj: Callable[..., Result], home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "exports" / "data set.csv"
    outside.parent.mkdir()
    outside.write_text(CSV_BODY)
    assert (
        haj(
            "init", "local", "-p", "classification", "--url", outside.as_uri(), "--target", "label"
        ).code
        == 0
    )
    assert "new raw version raw-0001" in haj("retrieve", "local").out

    # the same content from another file: no new version
    project = home / "local"
    (project / "incoming").mkdir()
    (project / "incoming" / "copy.csv").write_text(CSV_BODY)
    haj("config", "local", "--url", str(project / "incoming" / "copy.csv"))
    again = haj("retrieve", "local")
    assert again.code == 0 and "unchanged: same content as raw-0001" in again.out

    # JSON and plain text become .json and .txt versions. Run in this process as the runner runs
    # them (in the project directory): a runner per format would only repeat the path above.
    from engine.data import retrieve_in_process
    from engine.project import Project

    (project / "incoming" / "rows.json").write_text(json.dumps([{"f1": 1, "label": "a"}] * 3))
    (project / "incoming" / "notes").write_text("not a table\n")
    monkeypatch.chdir(project)
    local = Project("local", project)
    for url in ("incoming/rows.json", str(project / "incoming" / "notes")):
        local.update_config({"data": {"url": url}})
        assert retrieve_in_process(local, lambda event: None)["created"]
    versions = as_json(haj("data", "local", "--json"))
    assert [(v["id"], v["format"], Path(v["path"]).suffix) for v in versions] == [  # type: ignore[union-attr]
        ("raw-0001", "csv", ".csv"),
        ("raw-0002", "json", ".json"),
        ("raw-0003", "txt", ".txt"),
    ]
    assert versions[0]["source"] == outside.as_uri()  # type: ignore[index]
    stored = [p for p in (project / "data" / "raw").iterdir() if not p.name.endswith(".meta.json")]
    assert len(stored) == 3  # beside each, only its record (how long retrieving took)
    table = haj("data", "local").out
    assert "raw-0003" in table and "txt" in table

    # an older version can be processed on purpose
    chosen = as_json(haj("process", "local", "--version", "raw-0001", "--json"))
    assert chosen["parent"] == "raw-0001"  # type: ignore[index]
    # f1 (10, 13, ... 187) is distinct on every row, but a number that neither counts the rows
    # (1, 2, 3, ...) nor is named like an id: kept
    assert chosen["version"]["columns"] == 3  # type: ignore[index]

    missing = haj("retrieve", "local") if haj("config", "local", "--url", "nope.csv") else None
    assert missing is not None and missing.code == 6 and "data file not found" in missing.err


# ---- the template processor on messy data ----
def messy_rows(count: int = 150) -> list[dict[str, str]]:
    """Customer records as they come out of a CRM export: an id and an email, dates, categories
    with gaps and stray spaces, numbers written as text (thousands separators, currency on a
    value distinct on every row, percentages with "-" for missing), a free-text note, a constant
    column, a label with stray spaces."""
    rng = random.Random(7)
    rows = []
    for i in range(count):
        spend = rng.uniform(10, 3000)
        plan = rng.choice(["basic", "pro", "team", ""])
        churn = "yes" if (spend < 800 and plan != "team") or rng.random() < 0.1 else "no"
        rows.append(
            {
                "customer_id": f"C{1000 + i}",
                "email": f"user{i}@example.com",
                "signup_date": f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "plan": rng.choice([plan, f" {plan}", f"{plan} "]) if plan else "",
                "monthly_spend": f"{spend:,.2f}" if i % 11 else "",
                "income": f"${30000 + 1013 * i + rng.randint(0, 999):,}",  # distinct per row
                "discount": f"{rng.randint(0, 50)}%" if i % 9 else "-",
                "visits": str(rng.randint(0, 40)),
                "region": rng.choice(["north", "south", "east", "west"]),
                "notes": f"called on day {i} about order {rng.randint(10000, 99999)}",
                "source": "crm",
                "churn": f" {churn} " if i % 5 else ("" if i % 10 == 0 else churn),
            }
        )
    return rows


def to_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_template_processor_makes_a_messy_table_trainable(
    haj: Callable[..., Result], home: Path, tmp_path: Path
) -> None:
    source = tmp_path / "crm.csv"
    source.write_text(to_csv(messy_rows()))
    assert (
        haj("init", "crm", "-p", "classification", "--url", str(source), "--target", "churn").code
        == 0
    )
    config = home / "crm" / "config.toml"
    config.write_text(config.read_text().replace("n_jobs = -1", "n_jobs = 1", 1))
    assert haj("retrieve", "crm").code == 0
    processed = haj("process", "crm")
    assert processed.code == 0, processed.text
    # distinct on every row and id-like (a code, an email): identifiers; a note: free text
    assert "processor: dropped identifier columns: customer_id, email" in processed.out
    assert "processor: dropped free-text columns: notes" in processed.out
    # "1,234.56", "$145,309" (distinct on every row, yet a number: kept), "5%" with "-" gaps
    assert "processor: read as numbers: monthly_spend, income, discount" in processed.out
    assert "processor: stripped spaces around values: plan" in processed.out
    assert "dropped 15 rows without a 'churn' value" in processed.out
    assert "constant columns: signup_date_year, source" in processed.out  # all 2023, all "crm"

    version = as_json(haj("process", "crm", "--json"))["version"]  # type: ignore[index]
    assert version["parent"] == "raw-0001"
    import pandas as pd

    frame = pd.read_csv(home / "crm" / version["path"])
    assert set(frame.columns) == {
        "signup_date_month",
        "signup_date_day",
        "signup_date_dayofweek",
        "plan",
        "monthly_spend",
        "income",
        "discount",
        "visits",
        "region",
        "churn",
    }
    assert set(frame["churn"]) == {"yes", "no"}
    assert set(frame["plan"].dropna()) == {"basic", "pro", "team"}  # " pro" and "pro " are pro
    raw = pd.read_csv(io.StringIO(to_csv(messy_rows())))
    first = raw[raw["churn"].notna()].iloc[0]  # the first row that has a label
    assert frame["income"].iloc[0] == float(first["income"].strip("$").replace(",", ""))
    assert frame["income"].is_unique and frame["income"].min() >= 30000
    assert frame["discount"].between(0, 50).sum() + frame["discount"].isna().sum() == len(frame)
    assert frame["discount"].isna().any() and frame["discount"].nunique() > 40
    assert len(frame) == 150 - 15  # every tenth row has no label
    assert frame["monthly_spend"].dtype.kind == "f" and frame["monthly_spend"].isna().any()
    assert frame["plan"].isna().any()  # missing categories are left to the training pipeline

    trained = haj("train", "crm", "-m", "logistic_regression", "decision_tree")
    assert trained.code == 0, trained.text
    runs = as_json(haj("runs", "crm", "--json"))["runs"]  # type: ignore[index]
    assert [r["status"] for r in runs] == ["finished", "finished"]
    assert runs[0]["metrics"]["acc"] > 0.6


def load_template_processor():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "template_processor", templates_root() / "common" / "processor.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regression_template_processor_reads_a_numeric_target_written_as_text() -> None:
    import pandas as pd

    rows = messy_rows(80)
    for row in rows:
        row["spend_next_month"] = row.pop("monthly_spend") or "n/a"
    frame = pd.read_csv(io.StringIO(to_csv(rows)))
    result = load_template_processor().process(frame, "spend_next_month", "regression")
    assert result["spend_next_month"].dtype.kind == "f"
    assert len(result) == 80 - len([r for r in rows if r["spend_next_month"] == "n/a"])
    assert "customer_id" not in result.columns and "notes" not in result.columns


def test_processor_rejects_a_missing_target_clearly() -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": range(20), "b": range(20)})
    with pytest.raises(ValueError, match="target column 'churn' not found"):
        load_template_processor().process(frame, "churn", "classification")


def test_processor_reads_numbers_as_people_write_them() -> None:
    import pandas as pd

    processor = load_template_processor()
    written = pd.Series(
        ["$145,309", "-€5.50", "(300)", "5%", " 1,234 ", "12 $", "£ 7", "abc", None]
    )
    parsed = processor.as_numbers(written).tolist()
    assert parsed[:7] == [145309.0, -5.5, -300.0, 5.0, 1234.0, 12.0, 7.0]
    assert all(value != value for value in parsed[7:])  # NaN: not a number, missing


def test_processor_drops_only_real_identifiers() -> None:
    import pandas as pd

    rows = 40
    frame = pd.DataFrame(
        {
            "PassengerId": range(1, rows + 1),  # a number, but named like an id
            "ticket_uuid": [f"{i:08x}-1c2d-4e5f-8a9b-0c1d2e3f4a5b" for i in range(rows)],
            "contact": [f"user{i}@example.com" for i in range(rows)],
            "income": [30000.5 + 997 * i for i in range(rows)],  # distinct on every row: a number
            "year": range(1980, 1980 + rows),  # counts rows, yet a feature
            "store_id": [f"S{i % 4}" for i in range(rows)],  # named like an id, but repeats
            "label": ["a", "b"] * (rows // 2),
        }
    )
    result = load_template_processor().process(frame, "label", "classification")
    assert list(result.columns) == ["income", "year", "store_id", "label"]
