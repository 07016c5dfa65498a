#!/usr/bin/env bash
# Build the dashboard's partial plotly.js: the core (scatter) plus the bar and candlestick
# traces, the only ones the pages draw (1.1 MB instead of the full 4.8 MB bundle, which the
# browser spends most of a first Market page load compiling). Same plotly.js version as the
# full bundle inside the pinned `plotly` Python package; esbuild bundles it once.
#
# Usage: scripts/plotly-partial.sh OUT.js PYTHON
# Needs node and npm (from the npm registry at install time); without them it exits 1 and
# the server keeps serving the full bundle.
set -euo pipefail
out=$1
python=${2:-python3}
ESBUILD=0.28.2
command -v npm >/dev/null 2>&1 || { echo "npm not found"; exit 1; }
full=$("$python" -c "import importlib.util, pathlib; s = importlib.util.find_spec('plotly'); print(pathlib.Path(s.submodule_search_locations[0], 'package_data', 'plotly.min.js'))")
version=$(head -c 400 "$full" | sed -n 's/.*plotly\.js v\([0-9][0-9.]*\).*/\1/p' | head -1)
[ -n "$version" ] || { echo "cannot read the plotly.js version of $full"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
echo '{"name": "tickerlake-plotly-partial", "private": true}' > package.json
npm install --silent --no-audit --no-fund --ignore-scripts "plotly.js@$version" "esbuild@$ESBUILD" >/dev/null
cat > entry.js <<'JS'
// Core (with scatter) plus the trace types the dashboard draws.
var Plotly = require("plotly.js/lib/core");
Plotly.register([require("plotly.js/lib/bar"), require("plotly.js/lib/candlestick")]);
module.exports = Plotly;
JS
./node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --global-name=Plotly \
  --define:global=window --banner:js="/* plotly.js v$version (partial: scatter, bar, candlestick) */" --outfile=plotly.js --log-level=warning
cd - >/dev/null
mkdir -p "$(dirname "$out")"
mv "$work/plotly.js" "$out"
echo "built $out (plotly.js $version, $(wc -c < "$out") bytes)"
