"""`haj build NAME` and `haj container start|stop|status|logs|images NAME`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from engine.cli.command import ProjectCommand
from engine.units import human_size

if TYPE_CHECKING:
    from engine.api import ContainerStatus


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "build",
        parents=[common],
        help="build a Docker image serving the champion",
        description="Write a build context in PROJECT/build/context (Dockerfile, haj's serving "
        "code, the project's code and requirements, the champion and its sha256) and build it "
        "with the Docker engine ($DOCKER_HOST). The image answers /predict, /health, and "
        "SageMaker's `serve` contract (/ping, /invocations on port 8080).",
    )
    p.add_argument("name")
    p.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="a Debian-like image with Python 3.11 (default: as the last build, else "
        "$HAJ_BASE_IMAGE, else python:3.11-slim)",
    )
    p.add_argument(
        "--tag",
        help="image name[:tag], lowercase as Docker requires (default haj/NAME:RUN_ID, also "
        "haj/NAME:latest)",
    )
    p.add_argument(
        "--wheelhouse",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="download every wheel on the host and install offline inside the build "
        "(reproducible, air-gapped builds; default: as the last build, else on when "
        "$HAJ_BASE_IMAGE is set)",
    )
    p.add_argument(
        "--network",
        choices=("bridge", "host"),
        default=None,
        help="network for the build's RUN steps and for --run (host: engines without a bridge; "
        "default: as the last build, else host when $HAJ_BASE_IMAGE is set, else bridge)",
    )
    p.add_argument("--run", action="store_true", help="start the image when it is built")
    p.add_argument("--port", type=int, default=8080, help="host port for --run (default 8080)")
    p.add_argument("-q", "--quiet", action="store_true", help="show steps only, not the build log")
    p.set_defaults(func=CmdBuild)

    p = subparsers.add_parser(
        "container",
        parents=[common],
        help="run the project's image: start, stop, status, logs, images",
        description="Manage the container of a project's image (found again by its labels).",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser(
        "start",
        parents=[common],
        help="run the image and wait for /health",
        description=(
            "Run the project's image detached, wait until /health answers, print the URL."
        ),
    )
    a.add_argument("name")
    a.add_argument("--image", help="image to run (default: the one `haj build` made last)")
    a.add_argument("--port", type=int, default=8080, help="host port (default 8080)")
    a.add_argument(
        "--network",
        choices=("bridge", "host"),
        default="bridge",
        help="bridge publishes the port on 127.0.0.1; host shares the host network "
        "(for engines without a bridge)",
    )
    a.add_argument("--timeout", type=float, default=120, help="seconds to wait for /health")
    a.set_defaults(func=CmdStart)
    a = actions.add_parser("stop", parents=[common], help="stop and remove the container")
    a.add_argument("name")
    a.set_defaults(func=CmdStop)
    a = actions.add_parser("status", parents=[common], help="containers and the last image")
    a.add_argument("name")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=CmdStatus)
    a = actions.add_parser("logs", parents=[common], help="the container's log")
    a.add_argument("name")
    a.add_argument("-n", "--tail", type=int, default=100, help="last N lines (default 100)")
    a.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    a.set_defaults(func=CmdLogs)
    a = actions.add_parser("images", parents=[common], help="the project's images")
    a.add_argument("name")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=CmdImages)


class ProgressPrinter:
    """Prints the events of long Docker and AWS work (build, start, push, deploy).

    Log lines always; the build log (dimmed) unless `quiet`; every build step as `[N/M] step`.
    Pushes and waits (engine.container.PUSHING / WAITING progress) are a live progress bar on a
    terminal; otherwise plain lines: when their label changes (a layer is done, an endpoint's
    state changes) and at least every PLAIN_EVERY seconds, so a log shows the work is moving.
    Use it as a context manager around the work."""

    PLAIN_EVERY = 10.0

    def __init__(self, quiet: bool = False) -> None:
        from engine.cli import output

        self.quiet = quiet
        self.console = output.console()
        self.live: Any = None
        self.task: Any = None
        self.kind = ""
        self.last_label = ""
        self.last_printed = 0.0

    def __enter__(self) -> ProgressPrinter:
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.live = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def __call__(self, event: Any) -> None:
        import time

        from engine import events
        from engine.container import PUSHING, WAITING, progress_text

        if isinstance(event, events.Log):
            style = {"error": "red", "warning": "yellow"}.get(event.level, "")
            self.console.print(event.message, style=style, markup=False, soft_wrap=True)
        elif isinstance(event, events.Output):
            if not self.quiet and event.line.strip() and not event.line.startswith("Step "):
                self.console.print(event.line, style="dim", markup=False, soft_wrap=True)
        elif isinstance(event, events.Progress) and event.label:
            text = progress_text(event)
            if not event.label.startswith((PUSHING, WAITING)):  # a build step: a line each
                self.console.print(text, style="bold", markup=False, soft_wrap=True)
            elif self.live is not None:
                kind = PUSHING if event.label.startswith(PUSHING) else WAITING
                total = event.total if kind == PUSHING else None
                if self.task is None:
                    self.task = self.live.add_task(text, total=total)
                elif kind != self.kind:  # a new phase: its own bar and clock
                    self.live.reset(self.task)
                self.kind = kind
                self.live.update(self.task, description=text, total=total, completed=event.done)
            else:
                now = time.monotonic()
                if event.label != self.last_label or now - self.last_printed >= self.PLAIN_EVERY:
                    self.console.print(f"  {text}", markup=False, soft_wrap=True)
                    self.last_label, self.last_printed = event.label, now


def describe(settings: Any) -> str:
    """Build settings in words: `python:3.11-slim (wheelhouse, network host)`."""
    said = (["wheelhouse"] if settings.wheelhouse else []) + [f"network {settings.network}"]
    return f"{settings.base_image} ({', '.join(said)})"


class CmdBuild(ProjectCommand):
    def run(self) -> int:
        args = self.args
        settings = self.project.build_settings(
            base_image=args.base_image, wheelhouse=args.wheelhouse, network=args.network
        )
        console = self.console
        console.print(f"Building from {describe(settings)}", markup=False, highlight=False)
        with ProgressPrinter(quiet=args.quiet) as printer:
            record = self.project.build(settings, tag=args.tag, on_event=printer)
        console.print(
            f"Built [bold]{record.image}[/] ({human_size(record.size)}, champion "
            f"{record.model} run {record.run_id}) in {record.seconds:.0f}s.",
            highlight=False,
        )
        if not args.run:
            console.print(
                f"Run it with `haj container start {self.project.name}"
                + (
                    " --network host`."
                    if settings.network == "host"
                    else "` (add `--network host` on engines without a bridge)."
                ),
                markup=False,
            )
            return 0
        return _start(self.project, record.image, args.port, settings.network, 120)


def _start(project: Any, image: str | None, port: int, network: str, timeout: float) -> int:
    from engine.cli import output

    with ProgressPrinter(quiet=True) as printer:
        record = project.start_container(
            image=image, port=port, network=network, timeout=timeout, on_event=printer
        )
    output.console().print(
        f"Serving at {record.url} (try `curl {record.url}/health`). "
        f"Stop with `haj container stop {project.name}`.",
        markup=False,
        highlight=False,
    )
    return 0


class CmdStart(ProjectCommand):
    def run(self) -> int:
        args = self.args
        return _start(self.project, args.image, args.port, args.network, args.timeout)


class CmdStop(ProjectCommand):
    def run(self) -> int:
        name = self.project.name
        count = self.project.stop_container()
        self.console.print(
            f"Stopped {name}'s container." if count else f"No container of {name} ran."
        )
        return 0


class CmdStatus(ProjectCommand):
    def result(self) -> ContainerStatus:
        return self.project.container_status()

    def show(self, info: ContainerStatus) -> None:
        console = self.console
        image = info.image
        console.print(
            "image      "
            + (
                f"{image.image} ({human_size(image.size)}, run {image.run_id}, "
                f"built {image.built_at[:19]})"
                if image
                else f"none: build one with `haj build {self.project.name}`"
            ),
            markup=False,
        )
        if not info.containers:
            console.print("container  not running", markup=False)
        for row in info.containers:
            health = f", {row.health}" if row.health else ""
            console.print(
                f"container  {row.name} {row.status}{health} {row.url} ({row.image})",
                markup=False,
            )


class CmdLogs(ProjectCommand):
    def run(self) -> int:
        import sys

        for line in self.project.container_logs(tail=self.args.tail, follow=self.args.follow):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        return 0


class CmdImages(ProjectCommand):
    def result(self) -> list[dict[str, Any]]:
        return self.project.images()

    def show(self, rows: list[dict[str, Any]]) -> None:
        from engine.cli import output

        output.table(
            f"Images of {self.project.name}",
            ["Tags", "ID", "Size", "Run", "Model", "Created"],
            [
                [
                    ", ".join(r["tags"]) or "<none>",
                    r["id"],
                    human_size(r["size"]),
                    r["run_id"] or "-",
                    r["model"] or "-",
                    r["created"][:19],
                ]
                for r in rows
            ],
        )
