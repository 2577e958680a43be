"""A raw table shaped like the penguins data that ships with public packages: a row counter, an
id-like code, categories in upper case with stray spaces, dates, a year written as a date,
numbers written as text, free-text comments, missing values written as "NA"."""

from __future__ import annotations

import csv
import io
import random

SPECIES = ("Adelie", "Chinstrap", "Gentoo")
ISLANDS = {
    "Adelie": ("Torgersen", "Biscoe", "Dream"),
    "Chinstrap": ("Dream",),
    "Gentoo": ("Biscoe",),
}


def penguin_rows(count: int = 240, seed: int = 3) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        species = SPECIES[i % 3]
        sex = rng.choice(["MALE", "FEMALE"])
        base = {"Adelie": 3700, "Chinstrap": 3730, "Gentoo": 5080}[species]
        mass = base + (350 if sex == "MALE" else -300) + rng.gauss(0, 180)
        flipper = {"Adelie": 190, "Chinstrap": 196, "Gentoo": 217}[species] + rng.gauss(0, 5)
        bill = {"Adelie": 38.8, "Chinstrap": 48.8, "Gentoo": 47.5}[species] + rng.gauss(0, 1.5)
        rows.append(
            {
                "Sample Number": str(i + 1),
                "Individual ID": f"N{i // 2 + 1}A{i % 2 + 1}",
                "Species": species,
                "Island": rng.choice(ISLANDS[species]),
                "Date Egg": f"2008-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "Year": f"{rng.choice([2007, 2008, 2009])}-01-01",
                "Culmen Length (mm)": f"{bill:.1f}" if i % 17 else "NA",
                "Flipper Length (mm)": f"{flipper:.0f}",
                "Body Mass (g)": f"{mass:,.0f}",
                "Sex": sex if i % 13 else f" {sex.lower()} ",
                "Comments": f"nest {rng.randint(1, 10_000)} observed on day {i}",
            }
        )
    return rows


def to_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
