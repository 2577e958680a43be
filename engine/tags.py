"""Run tags: the user's own (`haj tag NAME RUN key=value ...`) and haj's automatic ones.

Automatic tags are computed once per training session, in the runner (so with the project's own
interpreter and packages), and set on every run of the session:

- who and where: `user`, `host`, `haj.version`, `python.version`, `sklearn.version`;
- the project's git commit (`git.commit`, and `git.dirty` true/false) when the project folder is
  in a git repository (git asked in a subprocess; no git, or no repository, is no tag);
- the code: the sha256 of retriever.py, processor.py, model.py and requirements.txt
  (`code.retriever`, `code.processor`, `code.model`, `code.requirements`);
- the environment: its package list (`pip freeze` of the project's virtualenv, or haj's own
  interpreter's distributions when the project has none) kept once per session as
  `models/sessions/SESSION/pip-freeze.txt`, with its sha256 as `env.sha256`;
- how the data was split: `train.random_state` and `train.test_size` (what `haj rerun` needs).

The keys haj sets are reserved: `haj tag` refuses them, so a tag read back always means what
haj measured.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import UsageError

if TYPE_CHECKING:
    from engine.project import Project
    from engine.store import Store

KEY = re.compile(r"^[a-z0-9_.-]+$")
MAX_KEY = 64
MAX_VALUE = 500
CODE_TAGS = {
    "code.retriever": "retriever.py",
    "code.processor": "processor.py",
    "code.model": "model.py",
    "code.requirements": "requirements.txt",
}
ENV_TAG = "env.sha256"
VERSION_TAGS = ("haj.version", "sklearn.version", "python.version")
SPLIT_TAGS = ("train.random_state", "train.test_size")
RERUN_TAG = "rerun_of"
# the keys haj sets itself (and the names the tuning and export work will set): refused by
# `haj tag`, and grouped apart from the user's tags wherever tags are shown
AUTOMATIC = frozenset(
    {
        "user",
        "host",
        *VERSION_TAGS,
        "git.commit",
        "git.dirty",
        *CODE_TAGS,
        ENV_TAG,
        *SPLIT_TAGS,
        RERUN_TAG,
        "study",
        "trial",
    }
)
RESERVED_PREFIXES = ("code.", "env.", "git.", "haj.", "train.")
FREEZE_NAME = "pip-freeze.txt"


def is_automatic(key: str) -> bool:
    return key in AUTOMATIC or key.startswith(RESERVED_PREFIXES)


def check_key(key: str) -> str:
    """`key` when it is a valid tag key (lowercase letters, digits, _ . -), else UsageError."""
    if not key:
        raise UsageError("a tag needs a key: write key=value")
    if len(key) > MAX_KEY or not KEY.match(key):
        raise UsageError(
            f"tag key {key!r} is not valid: use at most {MAX_KEY} lowercase letters, digits "
            "and _ . -"
        )
    return key


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`["owner=ana", "note="]` -> {"owner": "ana", "note": ""} (an empty value removes the
    tag). Every item is checked before anything is written; a key haj sets is refused."""
    if not items:
        raise UsageError("give at least one key=value (key= removes the tag)")
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"{item!r} is not key=value (key= removes the tag)")
        key = check_key(key.strip())
        if is_automatic(key):
            raise UsageError(
                f"tag {key!r} is set by haj at training and cannot be changed: choose another key"
            )
        value = value.strip()
        if "\n" in value or "\r" in value or len(value) > MAX_VALUE:
            raise UsageError(f"tag {key!r}: the value must be one line of at most {MAX_VALUE} "
                             "characters")  # fmt: skip
        tags[key] = value
    return tags


@dataclass
class Tagged:
    """What `haj tag` did: the run, the tags set and removed, and all its tags now (the user's
    and haj's, apart)."""

    run_id: str
    label: str
    set: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # asked to remove, but not set
    tags: dict[str, str] = field(default_factory=dict)  # the user's
    automatic: dict[str, str] = field(default_factory=dict)  # haj's

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_tags(tags: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(the user's tags, haj's automatic ones)."""
    user = {k: v for k, v in tags.items() if not is_automatic(k)}
    auto = {k: v for k, v in tags.items() if is_automatic(k)}
    return user, auto


def tag_run(project: Project, ref: str, items: list[str] | tuple[str, ...]) -> Tagged:
    """Set (key=value) or remove (key=) user tags of run `ref` (an id or MODEL-#); with no item,
    only read them."""
    from engine.store import Store

    wanted = parse_assignments(items) if items else {}
    if not project.db_path.exists():
        raise UsageError(f"no run {ref!r}: the project has no runs yet")
    with Store(project.db_path) as store:
        run = store.find_run(ref)
        if run is None:
            raise UsageError(f"no run {ref!r} (see `haj runs {project.name}`)")
        before = store.tags([run.id]).get(run.id, {})
        if wanted:
            store.set_tags(run.id, wanted, source="user")
        now = store.tags([run.id]).get(run.id, {})
    user, auto = split_tags(now)
    return Tagged(
        run_id=run.id,
        label=run.label,
        set={k: v for k, v in wanted.items() if v},
        removed=[k for k, v in wanted.items() if not v and k in before],
        absent=[k for k, v in wanted.items() if not v and k not in before],
        tags=user,
        automatic=auto,
    )


# ---- automatic tags, in the runner ---------------------------------------------------------------
def session_tags(project: Project, config: dict[str, Any], session: str) -> dict[str, str]:
    """The automatic tags of one training session (see the module's docstring); writes the
    session's package list. Never fails training: what cannot be measured is left out."""
    import getpass
    import platform
    import socket

    from engine import __version__
    from engine.fsutil import sha256_file

    tags: dict[str, str] = {}
    try:
        tags["user"] = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        tags["user"] = str(os.getuid())
    tags["host"] = socket.gethostname()
    tags["haj.version"] = __version__
    tags["python.version"] = platform.python_version()
    sklearn = _distribution_version("scikit-learn")
    if sklearn:
        tags["sklearn.version"] = sklearn
    tags.update(git_tags(project.path))
    for key, name in CODE_TAGS.items():
        path = project.path / name
        tags[key] = sha256_file(path) if path.exists() else "missing"
    training = config.get("training", {})
    for key in SPLIT_TAGS:
        value = training.get(key.split(".", 1)[1])
        if value is not None:
            tags[key] = str(value)
    freeze = environment_listing(project)
    path = freeze_path(project, session)
    from engine.fsutil import atomic_write_text, sha256_bytes

    atomic_write_text(path, freeze, sync=False)
    tags[ENV_TAG] = sha256_bytes(freeze.encode("utf-8"))
    return tags


def record(
    store: Store, project: Project, session: str, run_ids: list[str], tags: dict[str, str] | None
) -> None:
    """Set a session's automatic tags on its runs, and list the session's package file among
    each run's artifacts."""
    if not tags:
        return
    freeze = freeze_path(project, session)
    for run_id in run_ids:
        store.set_tags(run_id, tags, source="auto")
        if freeze.exists():
            path = str(freeze.relative_to(project.path))
            store.add_artifact(run_id, FREEZE_NAME, "environment", path)


def freeze_path(project: Project, session: str) -> Path:
    return project.models_dir / "sessions" / session / FREEZE_NAME


def git_tags(folder: Path) -> dict[str, str]:
    """{"git.commit": SHA, "git.dirty": "true"|"false"} when `folder` is in a git repository
    with a commit; {} otherwise (no git, no repository, git too slow). Dirty: a tracked file of
    the folder is modified, or a file in it is untracked and not ignored."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # a read: no index.lock

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=10,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--verify", "--quiet", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--", ".")
    tags = {"git.commit": commit}
    if status is not None:
        tags["git.dirty"] = "true" if status else "false"
    return tags


def environment_listing(project: Project) -> str:
    """The project environment's packages, one `name==version` a line: `pip freeze` run for
    the project's virtualenv when it has one (its own packages and the ones it shares with
    haj), else the distributions haj's own interpreter sees (importlib.metadata: no process)."""
    from engine.deps import venv_python

    python = venv_python(project)
    if python.exists():
        listing = _pip_freeze(python)
        if listing is not None:
            return listing
    return metadata_listing()


def _pip_freeze(python: Path) -> str | None:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python), "freeze",
             "--disable-pip-version-check"],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    lines = [line.rstrip() for line in done.stdout.splitlines() if line.strip()]
    return "\n".join(lines) + "\n"  # pip's own order (a comment stays above its line)


def metadata_listing() -> str:
    """`name==version` of every distribution this interpreter sees (the first of a name on
    sys.path, as imports find it), sorted."""
    from importlib.metadata import distributions

    seen: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata.get("Name") if dist.metadata else None
        if not name:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        seen.setdefault(key, f"{name}=={dist.version}")
    return "".join(f"{line}\n" for line in sorted(seen.values(), key=str.lower))


def _distribution_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def freeze_changes(before: str, after: str, most: int = 5) -> list[str]:
    """What changed between two package listings, a line each (`numpy 2.1.0 -> 2.1.3`, `+ xgboost
    2.1.1`, `- lightgbm 4.5.0`), at most `most` of them and a count of the rest."""

    def parse(text: str) -> dict[str, str]:
        out = {}
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            name, sep, version = line.partition("==")
            if not sep:
                name, _, version = line.partition(" @ ")
            out[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.strip()
        return out

    old, new = parse(before), parse(after)
    changes = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            changes.append(f"+ {name} {new[name]}")
        elif name not in new:
            changes.append(f"- {name} {old[name]}")
        elif old[name] != new[name]:
            changes.append(f"{name} {old[name]} -> {new[name]}")
    if len(changes) > most:
        changes = [*changes[:most], f"... and {len(changes) - most} more"]
    return changes
