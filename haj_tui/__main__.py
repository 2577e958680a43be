"""`python -m haj_tui [--home DIR]`: open the app on a workspace."""

from __future__ import annotations

import argparse

from engine.api import Workspace
from haj_tui.app import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m haj_tui", description=__doc__)
    parser.add_argument("--home", metavar="DIR", help="the workspace (default: $HAJ_HOME)")
    args = parser.parse_args()
    run(Workspace.open(args.home))


if __name__ == "__main__":
    main()
