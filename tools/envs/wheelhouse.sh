#!/usr/bin/env bash
# Wheels for the tests that install a package into a fresh, empty virtualenv
# (tests/e2e/test_stubs_package.py: the gRPC stubs package with nothing but its
# own dependencies). Downloaded
# once, at the versions requirements.lock pins, into .build/wheelhouse, so the
# tests install with --no-index: nothing is fetched at run time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WHEELHOUSE="$ROOT/.build/wheelhouse"
# The three dependencies of the stubs package and what they pull in themselves.
PACKAGES=(grpcio typing_extensions protobuf googleapis-common-protos)
pins=()
for name in "${PACKAGES[@]}"; do
  pin="$(grep -i "^${name}==" "$ROOT/requirements.lock")" || {
    echo "error: $name is not pinned in requirements.lock" >&2
    exit 1
  }
  pins+=("$pin")
done
stamp="$WHEELHOUSE/.downloaded"
want="$(printf '%s\n' "${pins[@]}" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
printf '==> %s\n' "downloading wheels for the fresh-venv tests into .build/wheelhouse" >&2
mkdir -p "$WHEELHOUSE"
"$ROOT/.venv/bin/python" -m pip download --quiet --only-binary=:all: --no-deps \
  -d "$WHEELHOUSE" "${pins[@]}"
echo "$want" >"$stamp"
