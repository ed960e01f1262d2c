#!/usr/bin/env bash
# Small upload-artifact, download-artifact and cache actions on GitHub's own clients of the results service
# (@actions/artifact, @actions/cache from npm), bundled as GitHub's actions are, for the tests that run them
# against Conveyor's. Built once per tests/actions-toolkit/ under $CONVEYOR_TOOLKIT_DIR (default
# /var/cache/conveyor-tests/actions-toolkit); the last line names the folder of the bundles.
set -euo pipefail
source "$(dirname "$0")/common.sh"

sources="$(cd "$(dirname "$0")/.." && pwd)/tests/actions-toolkit"
stamp=$(cat "$sources"/* | sha256sum | cut -c1-16)
target="${CONVEYOR_TOOLKIT_DIR:-/var/cache/conveyor-tests/actions-toolkit}/$stamp"

if [ ! -f "$target/.built" ]; then
    command -v npm >/dev/null || fail "npm is not installed (Node.js 20 or later is needed)"
    say "installing GitHub's toolkit clients and bundling the actions into $target"
    mkdir -p "$target"
    cp "$sources"/* "$target/"
    (cd "$target" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || fail "npm ci in $target failed"
    for entry in "$target"/*.mjs; do
        name=$(basename "$entry" .mjs)
        # One CommonJS file, as GitHub's actions ship; the ESM packages' `import.meta.url` becomes the bundle's.
        "$target/node_modules/.bin/esbuild" "$entry" --bundle --platform=node --target=node20 --format=cjs \
            --banner:js="const bundleUrl = require('url').pathToFileURL(__filename).href;" \
            --define:import.meta.url=bundleUrl --log-level=warning --outfile="$target/dist/$name.js" \
            || fail "bundling $name failed"
    done
    touch "$target/.built"
fi
say "ready: $target/dist"
