"""Figures as people read them, the same in the CLI, the app and the messages."""

from __future__ import annotations


def human_size(size: int | float | None) -> str:
    """Bytes in decimal units, as Docker and most tools print them (580 MB = 580 x 10^6 bytes)."""
    if size is None:
        return "-"
    if not size:
        return "0 B"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if round(value) < 1000 or unit == "GB":
            break
        value /= 1000
    if unit == "B":
        return f"{value:.0f} B"
    return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"


def transfer_text(label: str, done: int, total: int | None, rate: float | None) -> str:
    """Byte progress in one line: `downloading 52.4 MB of 200 MB (26%), 31.2 MB/s`."""
    text = f"{label} {human_size(done)}"
    if total:
        text += f" of {human_size(total)} ({min(100, int(100 * done / total))}%)"
    if rate:
        text += f", {human_size(rate)}/s"
    return text
