#!/usr/bin/env bash
# Fetch the GraphiQL page's third-party assets from the npm registry and copy
# them into static/vendor/, so the page never loads anything from a CDN.
# Versions are pinned in package.json / package-lock.json; `npm ci` also checks
# the lock file's integrity hashes. Safe to run repeatedly: it does nothing when
# every file is already in place and came from the current package-lock.json.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

VENDOR_DIR="static/vendor"
# Records which package-lock.json the vendored files came from, so a version
# bump in package.json/package-lock.json triggers a re-fetch.
STAMP="$VENDOR_DIR/.package-lock.sha256"
if command -v sha256sum >/dev/null 2>&1; then
  LOCK_SUM="$(sha256sum package-lock.json | cut -d' ' -f1)"
else
  LOCK_SUM="$(shasum -a 256 package-lock.json | cut -d' ' -f1)"
fi

# "<file under node_modules/>  <flat name in static/vendor/>"
ASSETS=(
  "react/umd/react.production.min.js            react.production.min.js"
  "react-dom/umd/react-dom.production.min.js    react-dom.production.min.js"
  "graphiql/graphiql.min.js                     graphiql.min.js"
  "graphiql/graphiql.min.css                    graphiql.min.css"
)

all_present() {
  local entry dest
  for entry in "${ASSETS[@]}"; do
    dest="${entry##* }"
    [[ -s "$VENDOR_DIR/$dest" ]] || return 1
  done
  [[ -f "$STAMP" && "$(<"$STAMP")" == "$LOCK_SUM" ]]
}

if all_present; then
  echo "fetch-assets: $VENDOR_DIR/ already complete, nothing to do."
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-assets: npm not found; install Node.js (20+) first." >&2
  exit 1
fi

echo "fetch-assets: $VENDOR_DIR/ is missing files or is stale; installing pinned packages with npm ci ..."
npm ci --no-audit --no-fund

mkdir -p "$VENDOR_DIR"
for entry in "${ASSETS[@]}"; do
  read -r src dest <<<"$entry"
  if [[ ! -s "node_modules/$src" ]]; then
    echo "fetch-assets: missing node_modules/$src after npm ci" >&2
    exit 1
  fi
  # Copy to a temporary name first so an interrupted run never leaves a
  # truncated file that all_present() would accept.
  cp "node_modules/$src" "$VENDOR_DIR/$dest.tmp"
  mv -f "$VENDOR_DIR/$dest.tmp" "$VENDOR_DIR/$dest"
done
echo "$LOCK_SUM" >"$STAMP"

echo "fetch-assets: fetched into $VENDOR_DIR/:"
for entry in "${ASSETS[@]}"; do
  read -r src dest <<<"$entry"
  pkg="${src%%/*}"
  version="$(node -p "require('./node_modules/$pkg/package.json').version" 2>/dev/null || echo '?')"
  printf '  %-30s %9s bytes  (%s@%s)\n' "$dest" "$(wc -c <"$VENDOR_DIR/$dest" | tr -d ' ')" "$pkg" "$version"
done
