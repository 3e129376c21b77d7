#!/usr/bin/env bash
# Fails when a UI string has no Simplified Chinese translation (or only a fuzzy one).
# Regenerates the catalogues from the source first, so a new msgid without translation is caught.
# The project catalogue is careloop/locale; an app with its own locale/ directory keeps its strings there.
set -euo pipefail
cd "$(dirname "$0")/.."
uv run python manage.py makemessages -l zh_Hans --no-obsolete --no-location --ignore=.venv --ignore=var --ignore=bench --ignore=tests -v0
status=0
for PO in $(find careloop -path '*/locale/zh_Hans/LC_MESSAGES/django.po' | sort); do
  # msgattrib prints the header entry (msgid "") when anything is listed.
  untranslated=$(msgattrib --untranslated --no-obsolete "$PO" | grep -c '^msgid ' || true)
  fuzzy=$(msgattrib --only-fuzzy --no-obsolete "$PO" | grep -c '^msgid ' || true)
  if [ "$untranslated" -gt 1 ] || [ "$fuzzy" -gt 1 ]; then
    echo "$PO incomplete: $((untranslated > 0 ? untranslated - 1 : 0)) untranslated, $((fuzzy > 0 ? fuzzy - 1 : 0)) fuzzy:"
    msgattrib --untranslated --no-obsolete "$PO" | grep '^msgid ' | head -40
    msgattrib --only-fuzzy --no-obsolete "$PO" | grep '^msgid ' | head -20
    status=1
  fi
done
# Django merges the catalogues: one msgid must not mean two things in two apps.
uv run python scripts/check_catalogue_conflicts.py || status=1
[ "$status" -eq 0 ] || exit 1
uv run python manage.py compilemessages -v0 --ignore=.venv
echo "zh_Hans catalogues complete"
