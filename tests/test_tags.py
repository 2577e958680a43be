"""Finding, comparing and reproducing runs: tags (`haj tag`, and haj's automatic ones at
training), `haj runs --filter`, `haj runs --compare` and `haj rerun`.

The parsers and the verdicts are unit tests; the rest runs on the trained example workspace
(tests/conftest.py: cancer trained on the fast models, copied per test), and only the rerun test
trains (once)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import rerun as reruns
from engine import run_filter, tags
from engine.api import Workspace
from engine.errors import UsageError
from engine.store import Store
from tests.support import Result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- parsers (unit) ----------------------------------------------------------------------------
def test_tag_assignments_set_remove_and_refuse_haj_keys() -> None:
    assert tags.parse_assignments(["owner=ana", "note=two words", "gone="]) == {
        "owner": "ana",
        "note": "two words",
        "gone": "",
    }
    for bad, said in [
        (["owner"], "is not key=value"),
        (["Owner=x"], "is not valid"),
        (["own er=x"], "is not valid"),
        (["user=bob"], "set by haj"),
        (["code.model=x"], "set by haj"),
        (["train.seed=1"], "set by haj"),  # haj's namespaces are reserved, not only its keys
        (["rerun_of=abc"], "set by haj"),
        (["note=a\nb"], "one line"),
        ([], "at least one"),
    ]:
        with pytest.raises(UsageError, match=said):
            tags.parse_assignments(bad)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("random_forest", "bad filter term 'random_forest'"),
        ("acc>>0.9", "one operator per term"),
        ("=knn", "names no field"),
        ("acc>", "has no value"),
        ("acc>high", "'high' is not a number"),
        ("acc=high", "'high' is not a number"),
        ("model>knn", "model takes = != or ~"),
        ("status=finishd", "one of running, finished, failed, cancelled"),
        ("duration=3", "duration takes > >= < <="),
        ("tag.=x", "tag.NAME needs a name"),
        ('tag.note="open', "unclosed quote"),
    ],
)
def test_a_bad_filter_term_is_one_line_naming_it(text: str, said: str) -> None:
    with pytest.raises(UsageError) as caught:
        run_filter.parse(text)
    assert said in caught.value.message
    assert "\n" not in caught.value.message


def test_filter_terms_match_as_documented() -> None:
    run = {
        "id": "abc123",
        "label": "knn-3",
        "model": "knn",
        "status": "finished",
        "data_version": "proc-0002",
        "duration_seconds": 1.5,
        "metrics": {"acc": 0.95, "f1": 0.9},
        "params": {"n_neighbors": 5, "weights": "uniform", "fit_prior": True, "p": None},
        "tags": {"owner": "ana", "note": "two words"},
    }

    def hit(text: str) -> bool:
        return run_filter.parse(text).matches(run)

    assert hit("model=knn acc>0.9 data=proc-0002 status=finished")  # ANDed
    assert not hit("model=knn acc>0.96")
    assert hit("acc>=0.95") and hit("acc<=0.95") and hit("acc=0.95") and not hit("acc!=0.95")
    assert hit("f1<0.95") and not hit("f1>0.95")
    assert hit("run=knn-3") and hit("run=abc123") and hit("run~KNN")  # id or label, ~ any case
    assert hit("param.n_neighbors=5") and hit("param.n_neighbors>=5.0")
    assert hit("param.weights~unif") and hit("param.fit_prior=true") and hit("param.p=None")
    assert hit("tag.owner=ana") and not hit("tag.owner=bob") and hit("tag.owner!=bob")
    assert hit('"tag.note=two words"') and hit("tag.note~WORDS")
    # a run without the field matches only !=; `tag.KEY=` is "without the tag"
    assert not hit("roc_auc>0") and hit("roc_auc!=0.5")
    assert not hit("tag.team=ml") and hit("tag.team!=ml")
    assert hit("tag.team=") and not hit("tag.owner=") and hit("tag.owner!=")
    assert hit("duration<2") and not hit("duration>2")
    assert run_filter.parse("  ").apply([run]) == [run]  # no filter: everything


def test_a_metric_the_runs_cannot_have_is_said() -> None:
    parsed = run_filter.parse("acx>0.9")
    with pytest.raises(UsageError, match=r"no metric or field 'acx'.*metrics: acc, f1"):
        parsed.check_metrics(["acc", "f1"])


def test_restoring_recorded_parameters_on_a_fresh_estimator() -> None:
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier()
    reruns.restore_params(
        {"knn": knn}, {"n_neighbors": 9, "weights": "distance", "metric_params": None}
    )
    assert knn.n_neighbors == 9 and knn.weights == "distance"
    # a parameter recorded as a repr cannot be rebuilt: the current object stays
    wrapped = OneVsRestClassifier(KNeighborsClassifier(n_neighbors=2))
    reruns.restore_params(
        {"w": wrapped}, {"estimator": "KNeighborsClassifier(n_neighbors=1)", "n_jobs": 2}
    )
    assert wrapped.estimator.n_neighbors == 2 and wrapped.n_jobs == 2


def test_the_verdict_says_what_differs_or_that_nothing_does() -> None:
    moved = [reruns.MetricCheck("acc", 0.95, 0.90, -0.05, False)]
    base = {"source": {"label": "tree-1"}, "run": {"label": "tree-2", "status": "finished"}}
    changed = reruns.RerunResult(
        **base,
        matches=False,
        metrics=moved,
        differences=[reruns.Difference("model.py", "a" * 64, "b" * 64)],
    )
    assert changed.verdict() == (
        "NOT reproduced: acc 0.9500 -> 0.9000 (-0.0500); what differs: model.py"
    )
    nothing = reruns.RerunResult(**base, matches=False, metrics=moved)
    assert "nothing haj records differs" in nothing.verdict()
    assert "not deterministic" in nothing.verdict()
    assert nothing.to_dict()["verdict"] == nothing.verdict()


def test_package_changes_between_two_listings() -> None:
    before = "numpy==2.1.0\nPandas==2.2.0\nscikit-learn==1.5.0\n"
    after = "numpy==2.1.3\npandas==2.2.0\nscikit_learn==1.5.0\nxgboost==2.1.1\n"
    assert tags.freeze_changes(before, after) == ["numpy 2.1.0 -> 2.1.3", "+ xgboost 2.1.1"]


# ---- on the trained example ---------------------------------------------------------------------
def cancer_runs(home: Path) -> dict[str, str]:
    """label -> run id of the trained 'cancer' project."""
    with Store(home / "cancer" / "haj.db") as store:
        return {run.label: run.id for run in store.runs()}


def test_automatic_tags_at_training(trained_home: Path) -> None:
    """Every run of a training session carries the session's tags: who, where, versions, the
    sha256 of each code file and of the package list kept with the session, seed and split."""
    project = trained_home / "cancer"
    with Store(project / "haj.db") as store:
        runs = store.runs()
        recorded = store.tags([r.id for r in runs])
        artifacts = store.artifacts(runs[0].id)
    assert len(runs) == 4 and set(recorded) == {r.id for r in runs}
    first = recorded[runs[0].id]
    assert all(recorded[r.id] == first for r in runs)  # one session: the same tags
    for key, name in tags.CODE_TAGS.items():
        assert first[key] == sha256(project / name), key
    freeze = project / "models" / "sessions" / runs[0].session / "pip-freeze.txt"
    assert first["env.sha256"] == sha256(freeze)
    assert "scikit-learn==" in freeze.read_text().lower().replace("scikit_learn", "scikit-learn")
    assert {"name": "pip-freeze.txt", "kind": "environment"}.items() <= next(
        a for a in artifacts if a["name"] == "pip-freeze.txt"
    ).items()
    import sklearn

    from engine import __version__

    assert first["haj.version"] == __version__ and first["sklearn.version"] == sklearn.__version__
    assert first["train.random_state"] == "42" and first["train.test_size"] == "0.2"
    assert first["user"] and first["host"]
    assert "git.commit" not in first  # a temporary folder is no git repository


def test_haj_tag_sets_removes_and_refuses(trained_home: Path, haj: Callable[..., Result]) -> None:
    done = haj("tag", "cancer", "knn-1", "owner=ana", "stage=baseline")
    assert done.code == 0, done.text
    assert "knn-1" in done.out and "set owner=ana" in done.out
    listed = json.loads(haj("tag", "cancer", "knn-1", "stage=", "--json").out)
    assert listed["tags"] == {"owner": "ana"} and listed["removed"] == ["stage"]
    assert listed["automatic"]["code.model"] == sha256(trained_home / "cancer" / "model.py")
    refused = haj("tag", "cancer", "knn-1", "host=elsewhere")
    assert refused.code == 2 and refused.err.startswith("haj: error: tag 'host' is set by haj")
    assert haj("tag", "cancer", "knn-9", "a=b").code == 2
    with Store(trained_home / "cancer" / "haj.db") as store:
        mine = store.tags([cancer_runs(trained_home)["knn-1"]])
    assert next(iter(mine.values()))["host"] != "elsewhere"


def test_filter_on_the_trained_example(trained_home: Path, haj: Callable[..., Result]) -> None:
    project = Workspace(trained_home).project("cancer")
    assert haj("tag", "cancer", "knn-1", "owner=ana").code == 0
    everything = project.leaderboard()
    best = everything.finished()[0]

    def labels(where: str) -> list[str]:
        return [run["label"] for run in project.leaderboard(where=where).runs]

    assert labels("model=knn") == ["knn-1"]
    assert labels("tag.owner=ana") == ["knn-1"]
    tied = [
        r["label"] for r in everything.finished() if r["metrics"]["acc"] == best["metrics"]["acc"]
    ]
    assert labels(f"acc>={best['metrics']['acc']}") == tied
    assert set(labels("model~tree model!=knn")) == {"decision_tree-1"}
    assert labels("param.n_neighbors=5") == ["knn-1"]
    assert len(labels("data=proc-0001 status=finished")) == 4
    assert labels("data=proc-0999") == []
    board = project.leaderboard(where="model=knn")
    assert board.filter == "model=knn" and board.filtered_out == 3
    assert board.runs[0]["tags"]["owner"] == "ana"  # tags come with the leaderboard's runs
    # the CLI says it in the title, and a bad term in one line
    shown = haj("runs", "cancer", "--filter", "tag.owner=ana acc>0.5")
    assert shown.code == 0 and 'matching "tag.owner=ana' in shown.out
    assert "knn-1" in shown.out and "gaussian_nb" not in shown.out
    bad = haj("runs", "cancer", "--filter", "acc>>1")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "acc>>1" in bad.err
    none = haj("runs", "cancer", "--filter", "model=svc")
    assert none.code == 0 and 'match "model=svc" (4 do not)' in none.out


def add_knn_run(home: Path, n_neighbors: int, acc_shift: float) -> str:
    """A second knn run, straight into the store: knn-1's parameters but `n_neighbors`, its
    metrics moved by `acc_shift`, knn-1's tags but a different model.py hash. Returns its id."""
    with Store(home / "cancer" / "haj.db") as store:
        source = store.find_run("knn-1")
        assert source is not None
        (run,) = store.start_runs(
            session="handmade",
            models=[("knn", {**source.params, "n_neighbors": n_neighbors})],
            prediction="classification",
            data_version=source.data_version,
        )
        store.finish_run(
            run.id,
            status="finished",
            metrics={k: v + acc_shift if k == "acc" else v for k, v in source.metrics.items()},
        )
        recorded = store.tags([source.id])[source.id]
        store.set_tags(run.id, {**recorded, "code.model": "0" * 64}, source="auto")
        store.set_tags(run.id, {"owner": "bob"})
    return run.id


def test_compare_shows_only_differing_parameters_and_the_deltas(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    add_knn_run(trained_home, n_neighbors=9, acc_shift=-0.02)
    project = Workspace(trained_home).project("cancer")
    compared = project.compare(["knn-1", "knn-2"])
    assert [row.name for row in compared.params] == ["n_neighbors"]
    assert compared.params[0].values == [5, 9]
    assert compared.same_params == len(project.run("knn-1").params) - 1
    acc = next(m for m in compared.metrics if m.name == "acc")
    assert acc.deltas[0] == 0 and acc.deltas[1] == pytest.approx(-0.02)
    assert acc.delta_texts[1] == "-0.0200" and acc.better == [None, False]
    f1 = next(m for m in compared.metrics if m.name == "f1")
    assert f1.delta_texts[1] == "=" and not f1.differs
    assert compared.differences() == ["model.py"]
    assert not compared.data.differs
    assert [(row.name, row.values, row.differs) for row in compared.tags] == [
        ("owner", [None, "bob"], True)
    ]
    # the CLI side by side, and --json
    shown = haj("runs", "cancer", "--compare", "knn-1", "knn-2")
    assert shown.code == 0, shown.text
    assert "n_neighbors" in shown.out and "leaf_size" not in shown.out
    assert f"{compared.same_params} the same, not shown" in shown.out
    assert "(-0.0200)" in shown.out and "model.py differ" in shown.out
    data = json.loads(haj("runs", "cancer", "--compare", "knn-1", "knn-2", "--json").out)
    assert [p["name"] for p in data["params"]] == ["n_neighbors"]
    assert [r["label"] for r in data["runs"]] == ["knn-1", "knn-2"]
    # two or more runs, each once
    for args, said in [
        (["knn-1"], "two or more runs"),
        (["knn-1", "knn-1"], "given twice"),
        (["knn-1", "nope-3"], "no run 'nope-3'"),
    ]:
        refused = haj("runs", "cancer", "--compare", *args)
        assert refused.code == 2 and said in refused.err, refused.text


def git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


def test_rerun_reproduces_and_names_the_code_that_changed(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    """decision_tree-1 trained again after edits to processor.py and model.py that change no
    score: reproduced, and the changed hashes are named. The project is now a git repository:
    the rerun records its commit, dirty after the edits."""
    project = trained_home / "cancer"
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    for name in ("processor.py", "model.py"):
        with open(project / name, "a") as handle:
            handle.write("\n# edited after training\n")
    done = haj("rerun", "cancer", "decision_tree-1", "--json")
    assert done.code == 0, done.text
    result = json.loads(done.out)
    assert result["matches"] is True
    assert [d["what"] for d in result["differences"]] == ["processor.py", "model.py"]
    assert result["differences"][1]["after"] == sha256(project / "model.py")
    assert result["verdict"].startswith("reproduced: decision_tree-2 matches decision_tree-1")
    assert "differs in processor.py, model.py, without effect on the scores" in result["verdict"]
    assert all(m["same"] for m in result["metrics"]) and len(result["metrics"]) == 5
    with Store(project / "haj.db") as store:
        source, new = store.find_run("decision_tree-1"), store.find_run("decision_tree-2")
        assert source is not None and new is not None
        recorded = store.tags([new.id])[new.id]
    assert new.params == source.params and new.data_version == source.data_version
    assert recorded["rerun_of"] == source.id
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    )
    assert recorded["git.commit"] == head.stdout.strip() and recorded["git.dirty"] == "true"
    # the terminal's words, from the same record
    shown = haj("runs", "cancer", "--compare", "decision_tree-1", "decision_tree-2")
    assert "rerun of" in shown.out and "training: processor.py, model.py, git commit" in shown.out


def test_rerun_refuses_what_cannot_be_reproduced(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    with Store(trained_home / "cancer" / "haj.db") as store:
        (failed,) = store.start_runs(
            session="s", models=[("knn", {})], prediction="classification", data_version=None
        )
        store.finish_run(failed.id, status="failed", error="boom")
    refused = haj("rerun", "cancer", failed.id)
    assert refused.code == 2 and "only a finished run" in refused.err
    assert haj("rerun", "cancer", "nope-1").code == 2
