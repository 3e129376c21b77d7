"""Deterministic Chinese names, ID-card numbers, phones and addresses for the demo hospital."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import TypeVar

from careloop.core.formats import id_check_digit
from careloop.demo import data

T = TypeVar("T")


def weighted(rng: random.Random, items: Sequence[tuple[T, int]]) -> T:
    return rng.choices([item for item, _w in items], weights=[w for _i, w in items])[0]


def generation(birth_year: int) -> str:
    if birth_year < 1960:
        return "old"
    if birth_year < 1985:
        return "mid"
    return "young"


def surname(rng: random.Random) -> str:
    return weighted(rng, data.SURNAMES)


def given_name(rng: random.Random, sex: str, birth_year: int) -> str:
    """A name typical of the generation: a common whole name, or two characters of its style."""
    era = generation(birth_year)
    if rng.random() < 0.35:
        return rng.choice(data.GIVEN_NAMES[(sex, era)])
    firsts, seconds = data.GIVEN_CHARS[(sex, era)]
    first, second = rng.choice(firsts), rng.choice(seconds)
    if first == second or (era != "old" and rng.random() < 0.12):
        return second  # one-character given names were popular from the 1960s on
    return first + second


def full_name(rng: random.Random, sex: str, birth_year: int, family: str = "") -> str:
    return (family or surname(rng)) + given_name(rng, sex, birth_year)


def birth_date(rng: random.Random, first_year: int, last_year: int) -> dt.date:
    start = dt.date(max(first_year, 1935), 1, 1)
    end = dt.date(min(last_year, 2005), 12, 31)
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


def id_number(rng: random.Random, region: str, born: dt.date, sex: str) -> str:
    """An 18-digit resident ID number (GB 11643): region, birth date, sequence, check digit.

    The 17th digit is odd for men and even for women.
    """
    sequence = rng.randrange(0, 100) * 10 + rng.choice(
        (1, 3, 5, 7, 9) if sex == "M" else (0, 2, 4, 6, 8)
    )
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + id_check_digit(first17)


def mobile(rng: random.Random, taken: set[str]) -> str:
    """A mobile number not handed out before in this run."""
    while True:
        number = rng.choice(data.MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if number not in taken:
            taken.add(number)
            return number


def region(rng: random.Random) -> data.Region:
    return rng.choices(data.REGIONS, weights=[r.weight for r in data.REGIONS])[0]


def address(rng: random.Random, place: data.Region) -> str:
    street = rng.choice(place.streets)
    if rng.random() < 0.7:
        return (
            f"{place.place}{street}{rng.randrange(1, 400)}号"
            f"{rng.randrange(1, 30)}幢{rng.randrange(1, 5)}单元{rng.randrange(1, 25)}0{rng.randrange(1, 5)}室"
        )
    return f"{place.place}{street}{rng.randrange(1, 200)}弄{rng.randrange(1, 80)}号"
