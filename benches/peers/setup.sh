#!/usr/bin/env bash
# Installs the benchmark peers' dependencies. Idempotent: re-running is cheap
# (each step is skipped while its lock/requirements file is unchanged).
#   node:   benches/peers/node/node_modules      (npm ci from package-lock.json)
#   python: benches/peers/python/.venv           (pip install -r requirements.txt)
# Needs Node >= 20 with npm, and Python >= 3.11. On Debian, as root, installs
# python3-venv when the venv module is missing.
# Usage: bash benches/peers/setup.sh [node|python]...   (default: both)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
want=("$@")
[ ${#want[@]} -eq 0 ] && want=(node python)

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

setup_node() {
  command -v node >/dev/null || { echo "setup.sh: node not found (need Node >= 20)" >&2; exit 1; }
  command -v npm >/dev/null || { echo "setup.sh: npm not found" >&2; exit 1; }
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || { echo "setup.sh: Node $(node --version) is too old (need >= 20)" >&2; exit 1; }
  local dir="$here/node" stamp="$here/node/node_modules/.setup-stamp"
  local want_hash
  want_hash="$(hash_of "$dir/package-lock.json" "$dir/package.json")-$(node --version)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_hash" ]; then
    echo "setup.sh: node deps up to date"
    return
  fi
  echo "setup.sh: npm ci in $dir"
  # --ignore-scripts: no dependency needs an install script (protobufjs's only
  # prints a version-scheme warning).
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund)
  echo "$want_hash" >"$stamp"
}

setup_python() {
  local py="${PYTHON:-python3}"
  command -v "$py" >/dev/null || { echo "setup.sh: $py not found (need Python >= 3.11)" >&2; exit 1; }
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "setup.sh: $($py --version) is too old (need >= 3.11)" >&2; exit 1; }
  local dir="$here/python" venv="$here/python/.venv"
  local want_hash
  want_hash="$(hash_of "$dir/requirements.txt")-$("$py" --version 2>&1)"
  if [ -x "$venv/bin/python" ] && [ -f "$venv/.setup-stamp" ] && [ "$(cat "$venv/.setup-stamp")" = "$want_hash" ]; then
    echo "setup.sh: python venv up to date"
    return
  fi
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"
    if ! "$py" -m venv "$venv" 2>/dev/null; then
      # Debian splits ensurepip out of the interpreter.
      rm -rf "$venv"
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        local ver
        ver="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        echo "setup.sh: installing python${ver}-venv"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${ver}-venv" ||
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        "$py" -m venv "$venv"
      else
        echo "setup.sh: '$py -m venv' failed; install python3-venv" >&2
        exit 1
      fi
    fi
  fi
  echo "setup.sh: pip install -r $dir/requirements.txt"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
  echo "$want_hash" >"$venv/.setup-stamp"
}

for w in "${want[@]}"; do
  case "$w" in
    node) setup_node ;;
    python) setup_python ;;
    *) echo "setup.sh: unknown target '$w' (node|python)" >&2; exit 2 ;;
  esac
done
echo "setup.sh: done"
