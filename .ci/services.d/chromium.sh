# Sourced by .ci/test (bash, set -euo pipefail) before the tests: Debian's chromium for
# the agent's status page test in a real browser (examples/agent/core/browser_test.go,
# driven by chromedp). Installs it once (apt-get, quietly); a warm run only checks it is
# there. The test fails in CI when /usr/bin/chromium is missing.

if [ ! -x /usr/bin/chromium ]; then
	echo "chromium: installing Debian's chromium (apt-get install -y chromium)"
	_selfheal_chromium_log="$(mktemp)"
	if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >"$_selfheal_chromium_log" 2>&1 ||
		{ apt-get update -q >>"$_selfheal_chromium_log" 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >>"$_selfheal_chromium_log" 2>&1; }; }; then
		tail -20 "$_selfheal_chromium_log" >&2
		rm -f "$_selfheal_chromium_log"
		echo "chromium: apt-get install chromium failed; the browser test will fail" >&2
		return 1
	fi
	rm -f "$_selfheal_chromium_log"
	unset _selfheal_chromium_log
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo '/usr/bin/chromium present')"
# The test fails, rather than skips, without the browser when this is set.
export SELFHEAL_CHROMIUM=/usr/bin/chromium
