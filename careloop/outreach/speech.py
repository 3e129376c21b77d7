"""Numbers, dates and times as a Chinese speaker says them, for text-to-speech prompts.

eSpeak NG reads "2026-11-25 09:30" digit by digit or in English order; prompts are therefore
written out the way a nurse would say them: ``say_date(date(2026, 11, 25))`` → "11月25日" is
not enough for TTS, so everything becomes characters: "十一月二十五日，星期三",
``say_time(time(9, 30))`` → "上午九点半", ``say_number(37.5)`` → "三十七点五".
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

DIGITS = "零一二三四五六七八九"
_UNITS = ["", "十", "百", "千"]
_WEEKDAYS = ["一", "二", "三", "四", "五", "六", "日"]


def _below_10000(n: int) -> str:
    """0 < n < 10000 in characters, with 零 for gaps: 1005 → 一千零五, 10 → 十 (when leading)."""
    out: list[str] = []
    digits = [int(d) for d in str(n)]
    length = len(digits)
    zero = False
    for i, d in enumerate(digits):
        unit = _UNITS[length - i - 1]
        if d == 0:
            zero = True
            continue
        if zero and out:
            out.append("零")
        zero = False
        out.append(DIGITS[d] + unit)
    text = "".join(out)
    return text


def say_integer(n: int) -> str:
    """Cardinal number: 0 → 零, 12 → 十二, 105 → 一百零五, 23456 → 两万三千四百五十六."""
    if n < 0:
        return "负" + say_integer(-n)
    if n == 0:
        return "零"
    parts: list[str] = []
    for unit, size in (("亿", 100_000_000), ("万", 10_000)):
        if n >= size:
            high, n = divmod(n, size)
            parts.append(say_integer(high) + unit)
            if 0 < n < size // 10:
                parts.append("零")
    if n:
        parts.append(_below_10000(n))
    text = "".join(parts)
    if text.startswith("一十"):
        text = text[1:]  # 十二, not 一十二
    if text.startswith("二") and len(text) > 1 and text[1] in "百千万亿":
        text = "两" + text[1:]
    return text


def say_number(value: int | float | Decimal | str) -> str:
    """A number with an optional decimal part read digit by digit: 37.5 → 三十七点五."""
    text = str(value).strip()
    if text.startswith("-"):
        return "负" + say_number(text[1:])
    whole, _dot, fraction = text.partition(".")
    fraction = fraction.rstrip("0") if _dot else ""
    spoken = say_integer(int(whole or "0"))
    if fraction:
        spoken += "点" + "".join(DIGITS[int(d)] for d in fraction)
    return spoken


def say_digits(value: str) -> str:
    """Read digit by digit (numbers, codes): 120 → 幺二零 is for radio; hospitals say 一二零."""
    return "".join(DIGITS[int(c)] if c.isdigit() else c for c in str(value))


def say_date(day: dt.date, *, today: dt.date | None = None, weekday: bool = True) -> str:
    """十一月二十五日，星期三; 今天/明天/后天 in front when ``today`` is given and close."""
    text = f"{say_integer(day.month)}月{say_integer(day.day)}日"
    if today is not None and day.year != today.year:
        text = f"{say_digits(str(day.year))}年" + text
    if weekday:
        text += f"，星期{_WEEKDAYS[day.weekday()]}"
    if today is not None:
        relative = {0: "今天", 1: "明天", 2: "后天"}.get((day - today).days)
        if relative:
            text = f"{relative}，{text}"
    return text


def say_time(moment: dt.time) -> str:
    """上午九点半, 下午两点十五分, 中午十二点, 晚上八点."""
    hour, minute = moment.hour, moment.minute
    if hour < 6:
        period, shown = "凌晨", hour
    elif hour < 12:
        period, shown = "上午", hour
    elif hour < 13:
        period, shown = "中午", hour
    elif hour < 18:
        period, shown = "下午", hour - 12
    else:
        period, shown = "晚上", hour - 12
    hours = "两" if shown == 2 else say_integer(shown)
    if minute == 0:
        return f"{period}{hours}点"
    if minute == 30:
        return f"{period}{hours}点半"
    minutes = say_integer(minute) if minute >= 10 else "零" + say_integer(minute)
    return f"{period}{hours}点{minutes}分"


def say_datetime(moment: dt.datetime, *, today: dt.date | None = None) -> str:
    """A local moment: 明天，十一月二十五日，星期三，上午九点半 (pass aware local times)."""
    return f"{say_date(moment.date(), today=today)}，{say_time(moment.time())}"
