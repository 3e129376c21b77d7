#!/usr/bin/env bash
# Fails when a UI string has no Simplified Chinese translation (or only a fuzzy one).
# Regenerates the catalogue from the source first, so a new msgid without translation is caught.
set -euo pipefail
cd "$(dirname "$0")/.."
PO=careloop/locale/zh_Hans/LC_MESSAGES/django.po
uv run python manage.py makemessages -l zh_Hans --no-obsolete --no-location --ignore=.venv --ignore=var --ignore=bench --ignore=tests -v0
untranslated=$(msgattrib --untranslated --no-obsolete "$PO" | grep -c '^msgid ' || true)
fuzzy=$(msgattrib --only-fuzzy --no-obsolete "$PO" | grep -c '^msgid ' || true)
# msgattrib prints the header entry (msgid "") when anything is listed.
if [ "$untranslated" -gt 1 ] || [ "$fuzzy" -gt 1 ]; then
  echo "zh_Hans catalogue incomplete: $((untranslated > 0 ? untranslated - 1 : 0)) untranslated, $((fuzzy > 0 ? fuzzy - 1 : 0)) fuzzy:"
  msgattrib --untranslated --no-obsolete "$PO" | grep '^msgid ' | head -40
  msgattrib --only-fuzzy --no-obsolete "$PO" | grep '^msgid ' | head -20
  exit 1
fi
uv run python manage.py compilemessages -v0 --ignore=.venv
echo "zh_Hans catalogue complete"
