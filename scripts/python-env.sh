#!/usr/bin/env bash
# Makes sure uv is present and the project's virtual environment matches uv.lock.
set -euo pipefail
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet --break-system-packages --user uv
  export PATH="$HOME/.local/bin:$PATH"
fi
uv sync --frozen --quiet
