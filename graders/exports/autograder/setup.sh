#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image; the zip is unpacked
# in /autograder/source. It installs Python, bubblewrap (the grading sandbox) and the course's
# pinned environment with the repository's own bootstrap.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q python3 python3-venv python3-pip bubblewrap
scripts/bootstrap
.venv/bin/course doctor || true  # printed in the build log: what this image can grade
