"""The real app in a real terminal (tmux): hand retriever.py to vim, type in vim, :wq, and come
back to the app with the file reloaded. Nothing is simulated: a pseudo-terminal, the terminal
driver, App.suspend, vim."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine import workspace

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None or shutil.which("vim") is None,
    reason="needs tmux and vim (apt-get install -y tmux vim)",
)


class Tmux:
    """One tmux server of our own (-L), so nothing else's sessions are touched."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "app")

    def keys(self, *keys: str) -> None:
        for key in keys:
            self("send-keys", "-t", "app", key)

    def text(self, text: str) -> None:
        self("send-keys", "-t", "app", "-l", text)

    def wait(self, condition: Callable[[str], bool], what: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the terminal shows:\n{screen}")
            time.sleep(0.1)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(f"haj-test-{os.getpid()}-{tmp_path.name}")
    yield server
    server("kill-server")


def test_retriever_in_vim_and_back(tmux: Tmux, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    project = workspace.create_project(root, "flowers", "classification", example="iris")
    retriever = project.code_path("retriever")
    before = retriever.read_text()
    editor = "vim -u NONE -i NONE -n -N"  # no vimrc, no viminfo, no swap file
    command = (
        f"cd {shlex.quote(str(ROOT))} && env HAJ_HOME={shlex.quote(str(root))} "
        f"EDITOR={shlex.quote(editor)} VISUAL= TEXTUAL_ANIMATIONS=none TERM=xterm-256color "
        f"{shlex.quote(sys.executable)} -m haj_tui; echo APP-EXITED; sleep 60"
    )
    tmux("new-session", "-d", "-s", "app", "-x", "100", "-y", "30", command)

    tmux.wait(lambda s: "flowers" in s and "haj — projects" in s, "the Projects screen")
    tmux.keys("Enter")
    tmux.wait(lambda s: "haj — flowers" in s, "the project")
    tmux.keys("2")
    tmux.wait(lambda s: "retriever.py saved" in s, "the Code tab")
    tmux.keys("C-o")
    tmux.wait(lambda s: "haj — flowers" not in s and "~" in s, "vim")
    tmux.keys("G", "o")
    tmux.text("# typed in vim")
    tmux.keys("Escape")
    tmux.text(":wq")
    tmux.keys("Enter")
    screen = tmux.wait(lambda s: "Reloaded retriever.py" in s, "the app to come back")
    assert "haj — flowers" in screen
    assert "APP-EXITED" not in screen
    assert retriever.read_text() == before + "# typed in vim\n"

    tmux.keys("C-q")
    tmux.wait(lambda s: "APP-EXITED" in s, "the app to quit")
