#!/usr/bin/env bash
# The Debian packages some tests use, installed when we can (root with apt-get);
# otherwise those tests are skipped and pytest prints why (make test runs pytest -rs).
#   chromium                  the widget's browser test (tests/test_widget_browser.py)
#   postgresql, redis-server  the production profile's two-server test (tests/test_scaling.py)
set -uo pipefail

wanted=()
[ -x /usr/bin/chromium ] || wanted+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || wanted+=(postgresql)
command -v redis-server >/dev/null || wanted+=(redis-server)
[ ${#wanted[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "Not installed: ${wanted[*]} (installing needs root and apt-get): the tests that use them will be skipped."
  exit 0
fi
echo "Installing Debian's ${wanted[*]} for the tests that use them ..."
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; }
for package in "${wanted[@]}"; do
  install "$package" || { apt-get update -q >/dev/null 2>&1 && install "$package"; } ||
    echo "Could not install $package: the tests that use it will be skipped."
done
# Debian's packages may start their servers; the tests start their own on free ports.
for service in postgresql redis-server; do
  command -v service >/dev/null && service "$service" stop >/dev/null 2>&1
done
exit 0
