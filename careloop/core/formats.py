"""Chinese formats: phone numbers, resident ID-card numbers, masking, text clean-up.

Used by imports, forms, the API and the UI so every place agrees on what a valid number is.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def to_halfwidth(text: str) -> str:
    """Full-width digits, letters and punctuation (０-９, Ａ, －) become their ASCII forms."""
    return unicodedata.normalize("NFKC", text)


def normalize_phone(raw: str | None) -> str:
    """Return a canonical phone number or raise ValueError with a reason.

    Accepts '+86 138 0013 8000', '0086-13800138000', full-width digits and landlines
    such as '010-12345678'. Mobile numbers come back as 11 digits, landlines as 0AA(A)-NNNNNNN(N).
    """
    if raw is None:
        raise ValueError("empty phone number")
    text = to_halfwidth(str(raw)).strip()
    if text.endswith(".0") and text[:-2].isdigit():  # Excel numeric cell
        text = text[:-2]
    text = re.sub(r"[\s()（）\u00a0]", "", text)
    if not text:
        raise ValueError("empty phone number")
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif text.startswith("86") and len(re.sub(r"\D", "", text)) == 13:
        text = text[2:]
    text = text.lstrip("-")
    digits = re.sub(r"\D", "", text)
    if _MOBILE.match(digits):
        return digits
    if _LANDLINE.match(text):
        if "-" in text:
            return text
        area = 3 if text[1] in "12" else 4
        return f"{text[:area]}-{text[area:]}"
    raise ValueError(f"not a valid Chinese phone number: {mask_phone(digits)}")


def mask_phone(phone: str | None) -> str:
    """138****1234 (F7.8). Landlines keep the area code and the last four digits."""
    if not phone:
        return ""
    if "-" in phone:
        area, _, rest = phone.partition("-")
        return f"{area}-{'*' * max(len(rest) - 4, 0)}{rest[-4:]}"
    if len(phone) <= 7:
        return "*" * (len(phone) - 2) + phone[-2:]
    return f"{phone[:3]}****{phone[-4:]}"


def id_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def normalize_id_number(raw: str | None) -> str:
    """Validate an 18-digit resident ID number (GB 11643) and return it upper-cased.

    Raises ValueError with the reason (length, check digit, birth date).
    """
    if raw is None:
        raise ValueError("empty ID number")
    text = to_halfwidth(str(raw)).strip().replace(" ", "").upper()
    if not re.fullmatch(r"\d{17}[\dX]", text):
        raise ValueError("ID number must be 18 characters: 17 digits and a digit or X")
    try:
        dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError as exc:
        raise ValueError("ID number contains an invalid birth date") from exc
    if id_check_digit(text[:17]) != text[17]:
        raise ValueError("ID number check digit is wrong")
    return text


def id_birth_date(id_number: str) -> dt.date:
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def id_sex(id_number: str) -> str:
    """'M' or 'F' from the 17th digit (odd = male)."""
    return "M" if int(id_number[16]) % 2 else "F"


def mask_id_number(id_number: str | None) -> str:
    """110101********123X — region kept, birth date and sequence hidden."""
    if not id_number:
        return ""
    return f"{id_number[:6]}{'*' * 8}{id_number[-4:]}"


def pinyin_initials(name: str) -> str:
    """'张三丰' → 'zsf'. Used for search by initials (F1.6)."""
    from pypinyin import Style, lazy_pinyin

    return "".join(p[0] for p in lazy_pinyin(name, style=Style.FIRST_LETTER) if p).lower()
