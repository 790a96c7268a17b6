#!/usr/bin/env bash
# ansible-test sanity on lync2fa.twofactor as Galaxy sees it: the collection built with the engine's
# wheel (tools/build_collection.py), unpacked under <dir>/ansible_collections/lync2fa/twofactor
# outside this checkout (ansible-test lists a collection's files with git when it is in a repository).
#
#   tools/sanity.sh prime   # install time: ansible-test's per-test venvs (pip from the package index)
#   tools/sanity.sh         # make sanity: the tests, with those venvs; nothing is downloaded
#
# Without pwsh (PowerShell 7) ansible-test cannot read a PowerShell module's argument spec nor
# run PSScriptAnalyzer: the PowerShell module host_request (.ps1 and its .py documentation) is
# then left out, and the run says so. With pwsh on PATH it is checked like the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${SANITY_PYTHON:-$ROOT/.venvs/sanity/bin/python}
DIR=${SANITY_DIR:-${TMPDIR:-/tmp}/lync2fa-sanity-$(id -u)}
TREE=$DIR/ansible_collections/lync2fa/twofactor

rm -rf "$DIR"
mkdir -p "$TREE"
"$ROOT/.venv/bin/python" tools/build_collection.py --output-path "$DIR/dist" --galaxy "$(dirname "$PY")/ansible-galaxy" >/dev/null
tar -xzf "$DIR"/dist/lync2fa-twofactor-*.tar.gz -C "$TREE"

args=(sanity --python 3.11 --color no)
if ! command -v pwsh >/dev/null 2>&1; then
    echo "sanity: pwsh not found: plugins/modules/host_request.ps1 (and its .py documentation) left out"
    args+=(--exclude plugins/modules/host_request.ps1 --exclude plugins/modules/host_request.py)
fi
if [ "${1:-}" = prime ]; then
    # ansible-test bootstraps pip in each venv with get-pip.py from its own download host; where
    # that host is out of reach, a stand-in installs pip from the interpreter's ensurepip.
    version=$("$PY" -c 'import ansible_test._internal.python_requirements as r, inspect, re
print(re.search(r"pip=.(\d+(?:\.\d+)*)", inspect.getsource(r.get_venv_packages)).group(1))')
    cache=$HOME/.ansible/test/cache
    mkdir -p "$cache"
    [ -f "$cache/get_pip_${version//./_}.py" ] || cp tools/get_pip_standin.py "$cache/get_pip_${version//./_}.py"
    args+=(--prime-venvs)
fi
cd "$TREE"
if ! command -v pwsh >/dev/null 2>&1; then
    # the left-out module's ignore entries would be reported as unused
    sed -i '/^plugins\/modules\/host_request\./d' tests/sanity/ignore-*.txt
fi
exec "$(dirname "$PY")/ansible-test" "${args[@]}"
