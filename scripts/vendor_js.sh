#!/usr/bin/env bash
# Vendors the JavaScript the HTML view embeds: @viz-js/viz, Graphviz compiled to WebAssembly, as its
# single-file global build (the wasm inlined), so that a drawn page lays itself out with no network.
#   bash scripts/vendor_js.sh [VERSION]
# Fetches the package with npm, copies dist/viz-global.js into caffeconf/inspect/view_assets/ and
# records name, version, license and sha256 in vendored.json beside it. Commit both.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:-3.31.0}
DEST=caffeconf/inspect/view_assets
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@viz-js/viz@$VERSION" >/dev/null && tar xzf viz-js-viz-"$VERSION".tgz)
pkg="$work/package"
license=$(node -p "require('$pkg/package.json').license")
mkdir -p "$DEST"
cp "$pkg/dist/viz-global.js" "$DEST/viz-global.js"
sum=$(sha256sum "$DEST/viz-global.js" | cut -d' ' -f1)
cat > "$DEST/vendored.json" <<JSON
{
  "viz-global.js": {
    "package": "@viz-js/viz",
    "version": "$VERSION",
    "file": "dist/viz-global.js",
    "license": "$license (the wrapper); Graphviz itself is EPL-1.0",
    "source": "https://github.com/mdaines/viz-js",
    "sha256": "$sum"
  }
}
JSON
echo "vendored @viz-js/viz $VERSION -> $DEST/viz-global.js ($sum)"
