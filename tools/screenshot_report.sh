#!/usr/bin/env bash
# Screenshot an HTML run report with headless Chromium (Debian's `chromium` package), e.g. the
# report of `make demo`:
#
#   tools/screenshot_report.sh [REPORT.html] [OUT.png]
#
# Defaults: .lync2fa/demo-reports/report.html -> docs/report.png. Installs chromium with apt-get
# when it is missing (needs root, as in CI and the dev machines). The test suite never needs it.
set -euo pipefail
report="${1:-.lync2fa/demo-reports/report.html}"
out="${2:-docs/report.png}"
[ -f "$report" ] || { echo "no report at $report (run: make demo)" >&2; exit 2; }
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (apt-get) ..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
mkdir -p "$(dirname "$out")"
url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
    --disable-sync --no-first-run --hide-scrollbars --screenshot="$out" --window-size=1280,3200 "$url" \
    2> >(grep -v -e "dbus" -e "Fontconfig" >&2 || true)
echo "$out"
