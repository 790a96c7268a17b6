"""A stand-in for get-pip.py, which ansible-test downloads to bootstrap pip in its sanity venvs.

`make sanity-venvs` copies it to ~/.ansible/test/cache/get_pip_<version>.py when that file is
missing (the download host may be unreachable from CI): pip comes from the interpreter's own
ensurepip, then pip installs what ansible-test asked for (its pinned pip, from the package index
pip is configured with). Used only while priming the venvs, never while testing.
"""

import ensurepip
import subprocess
import sys

if __name__ == "__main__":
    ensurepip.bootstrap(upgrade=True)
    # get-pip.py's own options (--no-setuptools, --no-wheel) mean: do not add them; pip never does.
    # The pinned pip itself may be missing from the index pip uses: ensurepip's pip is kept then.
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    packages = [a for a in args if not a.startswith("-")]
    options = [a for a in args if a.startswith("-")]
    if packages and subprocess.call([sys.executable, "-m", "pip", "install", *options, *packages]) != 0:
        others = [p for p in packages if not p.lower().startswith("pip")]
        sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *options, *others]) if others else 0)
