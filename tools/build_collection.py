"""Build the collection lync2fa.twofactor with the engine's wheel inside it.

The collection's modules decide on the controller with the engine, the lync2fa Python package,
which is not on a package index. The tarball therefore carries the engine as a wheel,
``engine/lync2fa-<version>-py3-none-any.whl``, and the collection's README (and every task, when
the engine is missing) says to install it from there:

    python3 -m pip install <collections path>/ansible_collections/lync2fa/twofactor/engine/lync2fa-0.1.0-py3-none-any.whl

The engine's source (core/, the tier packages under plugins/, pyproject.toml) stays out of the
tarball (galaxy.yml build_ignore): Galaxy's checks (ansible-test sanity) see the collection only.

    .venv/bin/python tools/build_collection.py [--output-path dist] [--galaxy PATH/ansible-galaxy]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE_DIR = ROOT / "engine"


def build_engine_wheel(python: str = sys.executable) -> Path:
    """engine/lync2fa-<version>-py3-none-any.whl from this checkout (the caller holds engine/.lock)."""
    if True:
        for old in ENGINE_DIR.glob("*.whl"):
            old.unlink()
        scratch = ENGINE_DIR / ".build"
        shutil.rmtree(scratch, ignore_errors=True)
        built = subprocess.run(
            [
                python,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--wheel-dir",
                str(scratch),
                str(ROOT),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if built.returncode != 0:
            raise SystemExit(f"cannot build the engine's wheel:\n{built.stdout}{built.stderr}")
        (wheel,) = scratch.glob("lync2fa-*.whl")
        target = ENGINE_DIR / wheel.name
        wheel.replace(target)
        shutil.rmtree(scratch, ignore_errors=True)
        return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-path", type=Path, default=ROOT / "dist")
    parser.add_argument(
        "--galaxy",
        default=str(Path(sys.executable).parent / "ansible-galaxy"),
        help="the ansible-galaxy command to build with",
    )
    args = parser.parse_args(argv)
    ENGINE_DIR.mkdir(exist_ok=True)
    with open(ENGINE_DIR / ".lock", "w") as lock:  # one build at a time: the wheel, then the tarball
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(args)


def _build(args) -> int:
    wheel = build_engine_wheel()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_HOME"] = str(args.output_path / ".ansible")
    done = subprocess.run(
        [args.galaxy, "collection", "build", "--force", "--output-path", str(args.output_path), str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    if done.returncode == 0:
        print(f"engine: {wheel.relative_to(ROOT)} (inside the collection)")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
