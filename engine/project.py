"""One project on disk: its paths, its config.toml and its .env secrets.

Reads use the stdlib's tomllib (fast, for `haj list`); writes use tomlkit so the user's comments
and layout survive, and go through an atomic rename. Secrets live only in .env (mode 0600).
"""

from __future__ import annotations

import re
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, UsageError
from engine.fsutil import atomic_write_text

PREDICTION_TYPES = ("classification", "regression")
CODE_FILES = ("retriever", "processor", "model")

DEFAULTS: dict[str, dict[str, Any]] = {
    "project": {"title": "", "prediction": "classification"},
    "data": {
        "url": "",
        "target": "target",
        "api_key_header": "X-API-Key",
        "timeout": 60,
        "dedupe": False,
    },
    "training": {
        "test_size": 0.2,
        "random_state": 42,
        "n_jobs": -1,
        "metric": "",
        "backend": "local",  # or "dask": fits as tasks of a Dask cluster (engine.cluster)
        "scheduler": "",  # the Dask scheduler's address; "" = $HAJ_DASK_SCHEDULER
    },
    "serving": {
        "host": "127.0.0.1",
        "port": 8000,
        "max_body_mb": 10,
        "prediction_log_mb": 50,
        "prediction_log_files": 5,
        "unknown_categories": "accept",
    },
    "monitoring": {
        "tolerance": 0.05,
        "drift_share": 0.5,
        "min_rows": 100,
        "method": "auto",
        "live": True,
    },
    # `haj pipeline run` (engine.pipeline validates it)
    "pipeline": {
        "steps": ["retrieve", "process", "check", "retrain", "monitor"],
        "when": "new-data",
        "min_improvement": 0.0,
        "redeploy": "server",
        "models": [],
        "backoff_seconds": 10.0,
        "retries": {"retrieve": 3},
        "keep_reports": 10,  # the report step keeps the last N reports/report-*.pdf
        "schedule": "",  # when it runs by itself: a cron expression (engine.cron), "" = never
    },
}


def default_metric(prediction: str) -> str:
    return "acc" if prediction == "classification" else "rmse"


_PROJECT_ID = re.compile(r"^[0-9a-z]{8,64}$")
_ID_COMMENT = "unique and stable: names this project's containers and cloud resources"


def new_project_id() -> str:
    """A project's unique id ([project] id in config.toml): 32 lowercase hex digits."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Project:
    """A project directory. Cheap to make; reads nothing until asked."""

    name: str
    path: Path

    # ---- paths -------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def env_path(self) -> Path:
        return self.path / ".env"

    @property
    def requirements_path(self) -> Path:
        return self.path / "requirements.txt"

    @property
    def db_path(self) -> Path:
        return self.path / "haj.db"

    @property
    def processed_dir(self) -> Path:
        return self.path / "data" / "processed"

    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    @property
    def champion_path(self) -> Path:
        """The stable path of the champion's model file: a symlink to the champion run's file,
        swapped atomically at each crowning."""
        return self.models_dir / "champion.joblib"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def venv_dir(self) -> Path:
        return self.path / ".venv"

    @property
    def uid(self) -> str:
        """The project's stable unique id, `[project] id` in config.toml (so a rename keeps it).

        Why: two workspaces may hold projects of the same name; everything haj creates outside
        the project directory (images, containers, AWS resources) is named and found by this id.
        A read never writes: a project created before ids existed has none recorded, and gets
        `derived_uid()` here; the commands that create something outside the project (build,
        container start, deploy) call ensure_uid() first, which records that same id, so a
        `deploy --dry-run` shows the names the real deploy will use.
        """
        return self._recorded_uid() or self.derived_uid()

    def ensure_uid(self) -> str:
        """The project's id, recorded in config.toml first if it has none (an explicit write,
        for the commands that name resources outside the project after it)."""
        recorded = self._recorded_uid()
        if recorded:
            return recorded
        import tomlkit

        made = self.derived_uid()
        self.update_config({"project": {"id": tomlkit.string(made).comment(_ID_COMMENT)}})
        if self._recorded_uid() != made:
            raise ConfigError(f"{self.config_path}: could not record the project's id")
        return made

    def derived_uid(self) -> str:
        """The id a project without a recorded one gets: derived from its absolute path, so it
        is the same at every read until ensure_uid() records it (then a rename keeps it)."""
        return uuid.uuid5(uuid.NAMESPACE_URL, self.path.absolute().as_uri()).hex

    def _recorded_uid(self) -> str | None:
        """`[project] id` from config.toml, validated; None when absent."""
        section = self._read_toml().get("project")
        value = section.get("id") if isinstance(section, dict) else None
        if not value:
            return None
        if not isinstance(value, str) or not _PROJECT_ID.match(value):
            raise ConfigError(
                f"{self.config_path}: project.id must be 8 to 64 lowercase letters or "
                "digits (delete the line to get a new id)"
            )
        return value

    def code_path(self, which: str) -> Path:
        if which not in CODE_FILES:
            raise UsageError(f"unknown file {which!r}: choose from {', '.join(CODE_FILES)}")
        return self.path / f"{which}.py"

    # ---- config ------------------------------------------------------------------------------
    def _read_toml(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"project {self.name!r} has no config.toml") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.config_path} is not valid TOML: {exc}") from None

    def read_config(self) -> dict[str, Any]:
        """The config merged over the defaults, validated. Raises ConfigError when corrupt."""
        raw = self._read_toml()
        config: dict[str, Any] = {}
        for section, values in DEFAULTS.items():
            given = raw.get(section, {})
            if not isinstance(given, dict):
                raise ConfigError(f"{self.config_path}: [{section}] must be a table")
            config[section] = {**values, **given}
        for section, values in raw.items():
            config.setdefault(section, values)
        validate_config(config, where=str(self.config_path))
        if not config["project"]["title"]:
            config["project"]["title"] = self.name
        if not config["training"]["metric"]:
            config["training"]["metric"] = default_metric(config["project"]["prediction"])
        return config

    def update_config(self, changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Set keys (section -> key -> value), keeping comments; validated before writing."""
        import tomlkit

        try:
            document = tomlkit.parse(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"project {self.name!r} has no config.toml") from None
        except Exception as exc:
            raise ConfigError(f"{self.config_path} is not valid TOML: {exc}") from None
        for section, values in changes.items():
            if section not in document:
                document[section] = tomlkit.table()
            for key, value in values.items():
                document[section][key] = value
        text = tomlkit.dumps(document)
        merged = {s: {**DEFAULTS.get(s, {}), **dict(v)} for s, v in tomllib.loads(text).items()}
        validate_config(merged, where=str(self.config_path))
        atomic_write_text(self.config_path, text)
        return self.read_config()

    # ---- secrets -----------------------------------------------------------------------------
    def read_secrets(self) -> dict[str, str]:
        if not self.env_path.exists():
            return {}
        from dotenv import dotenv_values

        return {k: v for k, v in dotenv_values(self.env_path).items() if v is not None}

    def set_secret(self, key: str, value: str) -> None:
        """Write one secret to .env (0600, atomic). The value is never logged or echoed."""
        if not value or "\n" in value:
            raise UsageError("the API key must be one non-empty line")
        import re

        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        line = f"{key}='{escaped}'\n"
        try:
            lines = self.env_path.read_text(encoding="utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            lines = ["# Secrets for this project: never commit this file.\n"]
        # Replace the key's line (a commented-out `# KEY=` placeholder counts), keep the rest:
        # comments and other secrets survive.
        assignment = re.compile(rf"^\s*(export\s+)?{re.escape(key)}\s*=")
        placeholder = re.compile(rf"^\s*#\s*{re.escape(key)}\s*=\s*$")
        for i, old in enumerate(lines):
            if assignment.match(old):
                lines[i] = line
                break
        else:
            for i, old in enumerate(lines):
                if placeholder.match(old):
                    lines[i] = line
                    break
            else:
                if lines and not lines[-1].endswith("\n"):
                    lines[-1] += "\n"
                lines.append(line)
        atomic_write_text(self.env_path, "".join(lines), mode=0o600)


def validate_config(config: dict[str, Any], where: str) -> None:
    """Raise ConfigError naming the first invalid value."""
    prediction = config["project"].get("prediction")
    if prediction not in PREDICTION_TYPES:
        raise ConfigError(f"{where}: prediction must be one of {', '.join(PREDICTION_TYPES)}")
    training = config["training"]
    test_size = training.get("test_size")
    if not isinstance(test_size, int | float) or not 0 < float(test_size) < 1:
        raise ConfigError(f"{where}: training.test_size must be a number between 0 and 1")
    if not isinstance(training.get("random_state"), int):
        raise ConfigError(f"{where}: training.random_state must be an integer")
    n_jobs = training.get("n_jobs")
    if not isinstance(n_jobs, int) or n_jobs == 0:
        raise ConfigError(f"{where}: training.n_jobs must be a non-zero integer (-1 = all cores)")
    _validate_backend(training, where)
    metric = training.get("metric")
    if metric:
        from engine.metrics import check_metric

        try:
            check_metric(metric, prediction)
        except UsageError as exc:
            raise ConfigError(f"{where}: training.metric: {exc}") from None
    if not isinstance(config["data"].get("target"), str) or not config["data"]["target"]:
        raise ConfigError(f"{where}: data.target must be a column name")
    if not isinstance(config["data"].get("url"), str):
        raise ConfigError(f"{where}: data.url must be a string")
    timeout = config["data"].get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigError(f"{where}: data.timeout must be a number of seconds above 0")
    if not isinstance(config["data"].get("dedupe"), bool):
        raise ConfigError(f"{where}: data.dedupe must be true or false")
    from engine.ingest import declared_reading  # stdlib only: cheap

    declared_reading(config["data"], where)  # [data] encoding, sep, decimal
    serving = config["serving"]
    port = serving.get("port")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}: serving.port must be an integer from 1 to 65535")
    if not isinstance(serving.get("host"), str) or not serving["host"]:
        raise ConfigError(f"{where}: serving.host must be an address such as 127.0.0.1")
    for key in ("max_body_mb", "prediction_log_mb"):
        value = serving.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(f"{where}: serving.{key} must be a number above 0 (megabytes)")
    files = serving.get("prediction_log_files")
    if isinstance(files, bool) or not isinstance(files, int) or files < 0:
        raise ConfigError(f"{where}: serving.prediction_log_files must be an integer, 0 or more")
    if serving.get("unknown_categories") not in ("accept", "reject"):
        raise ConfigError(f'{where}: serving.unknown_categories must be "accept" or "reject"')
    tolerance = config["monitoring"].get("tolerance")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
        raise ConfigError(
            f"{where}: monitoring.tolerance must be a number, 0 or more (0.05: 5 % worse)"
        )
    share = config["monitoring"].get("drift_share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise ConfigError(
            f"{where}: monitoring.drift_share must be a number above 0 and at most 1 (0.5: half "
            "of the features)"
        )
    min_rows = config["monitoring"].get("min_rows")
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise ConfigError(f"{where}: monitoring.min_rows must be an integer, 1 or more")
    from engine import pipeline_config
    from engine.drift import METHODS  # no heavy import at module level

    pipeline_config.validate(pipeline_config.settings(config, DEFAULTS["pipeline"]), where)
    _validate_schedule(config, where)
    if not isinstance(config["monitoring"].get("live"), bool):
        raise ConfigError(f"{where}: monitoring.live must be true or false")
    if config["monitoring"].get("method") not in METHODS:
        raise ConfigError(f"{where}: monitoring.method must be one of {', '.join(METHODS)}")


def _validate_backend(training: dict[str, Any], where: str) -> None:
    """[training] backend ("local" or "dask") and scheduler (a Dask scheduler's address, or
    empty); engine.cluster reads them."""
    if training.get("backend", "local") not in ("local", "dask"):
        raise ConfigError(f'{where}: training.backend must be "local" or "dask"')
    scheduler = training.get("scheduler", "")
    address = r"((tcp|tls)://)?(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+)(:\d{1,5})?"
    if not isinstance(scheduler, str) or (scheduler and not re.fullmatch(address, scheduler)):
        raise ConfigError(
            f'{where}: training.scheduler must be a Dask scheduler address ("tcp://HOST:8786")'
        )


def _validate_schedule(config: dict[str, Any], where: str) -> None:
    """[pipeline] schedule: empty (none) or a cron expression cron itself understands."""
    section = config.get("pipeline")
    schedule = section.get("schedule", "") if isinstance(section, dict) else ""
    if not isinstance(schedule, str):
        raise ConfigError(f'{where}: pipeline.schedule must be a cron expression ("0 3 * * *")')
    from engine.cron import check, is_off  # cronsim is imported only when a schedule is set

    if not is_off(schedule):
        try:
            check(schedule)
        except UsageError as exc:
            raise ConfigError(f"{where}: pipeline.schedule: {exc}") from None


def mask(value: str) -> str:
    """Show that a secret is set without showing it."""
    return "" if not value else "•" * 8
