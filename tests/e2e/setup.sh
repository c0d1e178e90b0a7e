#!/usr/bin/env bash
# What the browser tests (tests/test_ui_e2e.py) need beyond the Python test extras: Debian's
# chromium. Playwright drives it through executable_path; `playwright install` (a browser download)
# is never used. Idempotent; needs root (CI runs as root), otherwise says what to run.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "tests/e2e/setup.sh: /usr/bin/chromium is missing and this is not root;" \
         "run: sudo apt-get install -y chromium (the browser tests skip until then)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
/usr/bin/chromium --version
