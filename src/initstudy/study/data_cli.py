"""``python -m initstudy data {check,fetch} [NAME ...]``: is the data here, and get it if not.

``fetch`` uses Debian's package when it can (``apt-get install -y dataset-fashion-mnist``,
as root on a Debian-like system), else torchvision's download into ``$INITSTUDY_DATA`` or
``./data``. Exit status 0 when everything asked for is available, 3 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from initstudy.core import data

DEBIAN_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}


def _apt_install(package: str) -> bool:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", package]
    if subprocess.run(cmd, env=env).returncode == 0:
        return True
    # A fresh machine may have no package lists yet.
    subprocess.run(["apt-get", "update", "-q"], env=env)
    return subprocess.run(cmd, env=env).returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m initstudy data")
    parser.add_argument("action", choices=("check", "fetch"))
    parser.add_argument("names", nargs="*", default=["fashion-mnist", "mnist-5k", "digits"])
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in data.DATASETS]
    if unknown:
        print(f"initstudy data: error: unknown data set '{unknown[0]}'; allowed: {', '.join(data.DATASETS)}",
              file=sys.stderr)
        return 2
    status = 0
    for name in args.names:
        message = data.available(name)
        if message is None:
            print(f"{name}: available")
            continue
        if args.action == "check":
            print(f"{name}: {message}", file=sys.stderr)
            status = 3
            continue
        if name in DEBIAN_PACKAGES and _apt_install(DEBIAN_PACKAGES[name]) and data.available(name) is None:
            print(f"{name}: installed the Debian package {DEBIAN_PACKAGES[name]}")
            continue
        try:
            print(data.fetch(name))
        except Exception as err:  # a download that fails: say so, and how else to get it
            print(f"{name}: could not be fetched ({err}); to get it: {data.HOW_TO_GET[name]}", file=sys.stderr)
            status = 3
    return status


if __name__ == "__main__":
    sys.exit(main())
