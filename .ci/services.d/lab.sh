# Sourced by .ci/test (bash, set -euo pipefail) before the tests: the test-host lab, a
# Docker Swarm of 3 hosts in network namespaces (1 manager, 2 workers), for the docker
# driver's tests of hosts that really die (examples/agent/driver/docker/lab_test.go).
# See .ci/docker/lab.sh for what it does.
#
# Exports SELFHEAL_LAB_MANAGER (the tests fail without it when the CI services are
# configured), SELFHEAL_LAB_SCRIPT and friends; registers the lab's clean-up, which
# removes every namespace, process, mount, cgroup and file of the lab however the
# tests ended.
#
# The lab's names (namespaces, directory, subnet) are fixed, so a run holds an
# exclusive lock for as long as it uses the lab; a second run waits (at most 30 min).
# The lock is an open file descriptor of this shell, released when .ci/test exits;
# lab.sh closes it before it starts daemons.

_selfheal_lab_lock="${SELFHEAL_LAB_LOCK:-/tmp/selfheal-lab.lock}"
exec {SELFHEAL_LAB_LOCK_FD}>>"$_selfheal_lab_lock"
export SELFHEAL_LAB_LOCK_FD
if ! flock -n "$SELFHEAL_LAB_LOCK_FD"; then
	echo "lab: another CI run uses the test-host lab; waiting for $_selfheal_lab_lock (up to 30 min)"
	flock -w 1800 "$SELFHEAL_LAB_LOCK_FD" || {
		echo "lab: timed out waiting for $_selfheal_lab_lock" >&2
		return 1
	}
fi
ci_cleanup "bash '$root/.ci/docker/lab.sh' stop"
_selfheal_lab_env="$(bash "$root/.ci/docker/lab.sh" start 3)"
eval "$_selfheal_lab_env"
unset _selfheal_lab_env _selfheal_lab_lock
