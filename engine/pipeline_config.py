"""[pipeline] in config.toml: its steps and options, merged over the defaults and validated.

A leaf (it imports only engine.errors): engine.project validates every config with it without
importing engine.pipeline, which runs what it describes (and imports engine.project).
"""

from __future__ import annotations

from typing import Any

from engine.errors import ConfigError

STEPS = ("retrieve", "process", "check", "retrain", "monitor", "report")
WHEN = ("new-data", "degraded", "drift", "always")
REDEPLOY = ("none", "server", "container", "sagemaker")


def settings(config: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """[pipeline] over its defaults (engine.project.DEFAULTS["pipeline"]), [pipeline.retries]
    merged key by key."""
    section = {**defaults, **config.get("pipeline", {})}
    section["retries"] = {**defaults["retries"], **dict(section.get("retries") or {})}
    return section


def validate(section: dict[str, Any], where: str) -> None:
    """[pipeline] (ConfigError naming the first bad value): called with the rest of the config,
    so a step haj cannot run is refused when the config is written, not at 3 a.m."""
    steps = section.get("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise ConfigError(f"{where}: pipeline.steps must be a non-empty list of step names")
    for step in steps:
        if step not in STEPS:
            raise ConfigError(
                f"{where}: pipeline.steps: unknown step {step!r} (steps: {', '.join(STEPS)})"
            )
    if len(set(steps)) != len(steps):
        raise ConfigError(f"{where}: pipeline.steps names a step twice")
    if section.get("when") not in WHEN:
        raise ConfigError(f"{where}: pipeline.when must be one of {', '.join(WHEN)}")
    if section.get("redeploy") not in REDEPLOY:
        raise ConfigError(f"{where}: pipeline.redeploy must be one of {', '.join(REDEPLOY)}")
    for key in ("min_improvement", "backoff_seconds"):
        value = section.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{where}: pipeline.{key} must be a number, 0 or more")
    keep = section.get("keep_reports", 10)
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= 1000:
        raise ConfigError(f"{where}: pipeline.keep_reports must be 1 to 1000 reports")
    schedule = section.get("schedule", "")
    if not isinstance(schedule, str):
        raise ConfigError(f"{where}: pipeline.schedule must be a cron line in quotes, or empty")
    models = section.get("models")
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ConfigError(f"{where}: pipeline.models must be a list of model names ([]: all)")
    retries = section.get("retries")
    if not isinstance(retries, dict):
        raise ConfigError(f"{where}: pipeline.retries must be a table of step = attempts")
    for step, attempts in retries.items():
        if step not in STEPS:
            raise ConfigError(f"{where}: pipeline.retries: unknown step {step!r}")
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
            raise ConfigError(f"{where}: pipeline.retries.{step} must be 1 to 10 attempts")
