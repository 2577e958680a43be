"""haj's headless engine: everything the product does, with no user interface.

The CLI (engine.cli) and the TUI (haj_tui) both call these modules; nothing here imports textual,
and heavy libraries (scikit-learn, pandas, fastapi) are imported inside the functions that need
them, so `import engine` and `haj list` stay fast.
"""

__version__ = "0.1.0"
