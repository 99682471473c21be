#!/usr/bin/env bash
# Make Debian's headless Chromium and its WebDriver available for the browser tests of the XCom
# pages (tests/proxy/test_ui_browser.py), the way ensure-redis.sh provides redis-server.
#
# Selenium drives /usr/bin/chromium through /usr/bin/chromedriver; it never downloads a
# browser or a driver itself. Without root or apt, say what to do and carry on: the browser
# tests then fail loudly, naming the missing program.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: installing Debian's chromium and chromium-driver" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_install() {
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  }
  if ! apt_install 2>/dev/null; then
    apt-get -o DPkg::Lock::Timeout=900 update -qq >/dev/null
    apt_install
  fi
  exit 0
fi
echo "ensure-chromium: chromium/chromedriver not found and cannot install them (not root or no apt)." >&2
echo "ensure-chromium: install them (e.g. 'sudo apt-get install chromium chromium-driver'):" >&2
echo "ensure-chromium: the XCom browser page tests need a real headless Chromium." >&2
