"""Fail when one msgid (and context) is translated differently in two catalogues.

Django merges every catalogue of a language into one: the project's (LOCALE_PATHS) wins, then
the apps in INSTALLED_APPS order. The same English word with two Chinese translations in two
apps therefore shows only one of them everywhere; give such words a context (pgettext).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(line: str) -> str:
    body = line[line.index('"') + 1 : line.rindex('"')]
    out, chars = [], iter(body)
    for char in chars:
        out.append(_ESCAPES.get(next(chars, ""), "") if char == "\\" else char)
    return "".join(out)


def entries(path: Path) -> list[tuple[str, str, str, bool]]:
    """(msgctxt, msgid, msgstr, fuzzy) of a .po file, obsolete entries left out."""
    out: list[tuple[str, str, str, bool]] = []
    fields: dict[str, str] = {}
    current = ""
    fuzzy = False

    def flush() -> None:
        nonlocal fields, fuzzy
        if fields.get("msgid"):
            out.append(
                (fields.get("msgctxt", ""), fields["msgid"], fields.get("msgstr", ""), fuzzy)
            )
        fields, fuzzy = {}, False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
            current = ""
        elif line.startswith("#~"):
            continue
        elif line.startswith("#,"):
            fuzzy = fuzzy or "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if current:
                fields[current] += _unquote(line)
        else:
            key = line.split(" ", 1)[0]
            if key == "msgctxt" and "msgid" in fields:
                flush()
            current = {"msgstr[0]": "msgstr"}.get(key, key)
            fields[current] = _unquote(line)
    flush()
    return out


def main() -> int:
    seen: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for po_path in sorted(ROOT.glob("careloop/**/locale/zh_Hans/LC_MESSAGES/django.po")):
        for context, msgid, msgstr, fuzzy in entries(po_path):
            if not msgstr or fuzzy:
                continue
            seen[(context, msgid)][msgstr].append(
                str(po_path.relative_to(ROOT)).split("/locale/")[0]
            )
    conflicts = {key: value for key, value in seen.items() if len(value) > 1}
    for (context, msgid), translations in sorted(conflicts.items()):
        where = "; ".join(f"{text!r} in {', '.join(paths)}" for text, paths in translations.items())
        label = f"{context}|{msgid}" if context else msgid
        print(f"msgid {label!r} has {len(translations)} translations: {where}")
    return 1 if conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
