# Sourced by tools/dev, tools/lock and tools/envs/*.sh: the Python this project
# supports and the virtual environments made with it. The version has one home,
# pyproject.toml's requires-python (">=3.11,<3.12" -> 3.11).

supported_python_version() {
  sed -n 's/^requires-python = ">=\([0-9]*\.[0-9]*\),.*/\1/p' "$1/pyproject.toml"
}

python_version_of() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "none"
}

# The interpreter to build virtual environments with: IDENTITY_PYTHON, else
# python<version> on PATH. Fails with one clear line when it is missing or is
# another version (never falls back to whatever `python3` is).
supported_python() {
  local root="$1" want found version
  want="$(supported_python_version "$root")"
  found="${IDENTITY_PYTHON:-python$want}"
  if ! command -v "$found" >/dev/null 2>&1; then
    echo "error: this project needs Python $want and '$found' was not found: install" \
      "python$want and python$want-venv, or set IDENTITY_PYTHON to a Python $want interpreter" >&2
    return 1
  fi
  version="$(python_version_of "$found")"
  if [[ "$version" != "$want" ]]; then
    echo "error: $found is Python $version but this project supports Python $want only" \
      "(pyproject.toml): install python$want or set IDENTITY_PYTHON to one" >&2
    return 1
  fi
  command -v "$found"
}

# Create the virtual environment at $2 with interpreter $1, rebuilding one that
# was made with another Python version (or whose interpreter is gone).
ensure_venv() {
  local python="$1" venv="$2" want have
  want="$(python_version_of "$python")"
  if [[ -e "$venv" ]]; then
    have="$(python_version_of "$venv/bin/python")"
    if [[ "$have" == "$want" ]]; then
      return 0
    fi
    printf '==> %s was made with Python %s, not %s: rebuilding it\n' "$venv" "$have" "$want" >&2
    rm -rf "$venv"
  fi
  printf '==> creating %s with Python %s\n' "$venv" "$want" >&2
  "$python" -m venv "$venv"
}

# pip install "$@" into the venv at $1, with a progress line while pip works
# (it is silent for a minute or more otherwise) and its log shown on failure.
pip_install() {
  local venv="$1" label="$2" log pid started elapsed collected last=0
  shift 2
  log="$venv/pip-install.log"
  started=$SECONDS
  "$venv/bin/python" -m pip install --progress-bar off "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    elapsed=$((SECONDS - started))
    collected="$(grep -c '^Collecting ' "$log" || true)"
    if [[ -t 2 ]]; then
      printf '\r==> %s: %ds, %s packages resolved ' "$label" "$elapsed" "$collected" >&2
    elif ((elapsed - last >= 15)); then
      last=$elapsed
      printf '==> %s: %ds, %s packages resolved\n' "$label" "$elapsed" "$collected" >&2
    fi
  done
  if [[ -t 2 ]]; then printf '\n' >&2; fi
  if ! wait "$pid"; then
    tail -n 25 "$log" >&2
    echo "error: $label failed (full log: $log)" >&2
    return 1
  fi
  printf '==> %s: done in %ds\n' "$label" "$((SECONDS - started))" >&2
}
