#!/usr/bin/env bash
# Small upload-artifact, download-artifact and cache actions on GitHub's own clients of the results service
# (@actions/artifact, @actions/cache from npm), bundled as GitHub's actions are, for the tests that run them
# against Conveyor's. Needs Node.js 20 or later with npm, and the npm registry. Built once per content of
# tests/actions-toolkit/; the last line names the folder of the bundles.
#
# Environment:
#   CONVEYOR_TOOLKIT_CACHE  where the builds are kept (default /var/cache/conveyor/actions-toolkit)
set -euo pipefail
source "$(dirname "$0")/common.sh"

sources="$(cd "$(dirname "$0")/.." && pwd)/tests/actions-toolkit"
files=("$sources/package.json" "$sources/package-lock.json" "$sources"/*.mjs)
cache="${CONVEYOR_TOOLKIT_CACHE:-/var/cache/conveyor/actions-toolkit}"
target="$cache/$(cat "${files[@]}" | sha256sum | cut -c1-16)"

if [ ! -f "$target/.built" ]; then
    command -v npm >/dev/null || fail "npm is not installed (Node.js 20 or later is needed)"
    say "installing GitHub's toolkit clients and bundling the actions into $target"
    mkdir -p "$cache"
    # Built aside and moved into place whole: a test run that starts this at the same time finds it built or not.
    building=$(mktemp -d "$cache/.building.XXXXXX")
    trap 'rm -rf "$building"' EXIT
    cp "${files[@]}" "$building/"
    (cd "$building" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || fail "npm ci in $building failed"
    for entry in "$building"/*.mjs; do
        name=$(basename "$entry" .mjs)
        # One CommonJS file, as GitHub's actions ship; the ESM packages' `import.meta.url` becomes the bundle's.
        "$building/node_modules/.bin/esbuild" "$entry" --bundle --platform=node --target=node20 --format=cjs \
            --banner:js="const bundleUrl = require('url').pathToFileURL(__filename).href;" \
            --define:import.meta.url=bundleUrl --log-level=warning --outfile="$building/dist/$name.js" \
            || fail "bundling $name failed"
    done
    touch "$building/.built"
    mv -T "$building" "$target" 2>/dev/null || [ -f "$target/.built" ] || fail "could not move the build to $target"
fi
say "ready: $target/dist"
