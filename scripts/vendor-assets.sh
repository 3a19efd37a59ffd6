#!/usr/bin/env bash
# Refresh the vendored front-end assets from the npm registry (the product never loads them from a CDN).
# Pinned: htmx 2.0.x (later majors change CSRF header inheritance), Leaflet 1.9.4.
set -euo pipefail
cd "$(dirname "$0")/.."
out=src/linli/web/static/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent htmx.org@2.0 leaflet@1.9.4 >/dev/null)
for f in "$tmp"/*.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
htmx=$(ls -d "$tmp"/htmx.org-*/package)
leaflet=$(ls -d "$tmp"/leaflet-*/package)
mkdir -p "$out/htmx" "$out/leaflet/images"
cp "$htmx/dist/htmx.min.js" "$htmx/LICENSE" "$out/htmx/"
cp "$leaflet/dist/leaflet.js" "$leaflet/dist/leaflet.css" "$leaflet/LICENSE" "$out/leaflet/"
cp "$leaflet"/dist/images/*.png "$out/leaflet/images/"
echo "htmx $(node -p "require('$htmx/package.json').version"), leaflet $(node -p "require('$leaflet/package.json').version")"
