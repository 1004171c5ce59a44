# Sourced by .ci/test (bash, set -euo pipefail) before the tests: a private Docker engine in
# single-node swarm mode for the docker driver's integration tests
# (examples/agent/driver/docker). See .ci/docker/engine.sh for what it does.
#
# Exports SELFHEAL_DOCKER_HOST (the tests skip only without it), SELFHEAL_DOCKER_ENGINE (the
# script the tests call to restart dockerd) and friends; registers the engine's clean-up.
#
# Concurrent CI runs on one machine would fight over the swarm port and the docker_gwbridge
# link, so a run holds an exclusive lock for as long as it uses the engine; a second run
# waits for it (at most 30 minutes). The lock is an open file descriptor of this shell, so
# it is released when .ci/test exits, however it exits; the daemons never inherit it.

_selfheal_docker_lock="${SELFHEAL_DOCKER_LOCK:-/tmp/selfheal-docker.lock}"
exec {SELFHEAL_DOCKER_LOCK_FD}>>"$_selfheal_docker_lock"
export SELFHEAL_DOCKER_LOCK_FD
if ! flock -n "$SELFHEAL_DOCKER_LOCK_FD"; then
	echo "docker-engine: another CI run uses the engine; waiting for $_selfheal_docker_lock (up to 30 min)"
	flock -w 1800 "$SELFHEAL_DOCKER_LOCK_FD" || {
		echo "docker-engine: timed out waiting for $_selfheal_docker_lock" >&2
		return 1
	}
fi
ci_cleanup "bash '$root/.ci/docker/engine.sh' stop"
_selfheal_docker_env="$(bash "$root/.ci/docker/engine.sh" start)"
eval "$_selfheal_docker_env"
unset _selfheal_docker_env _selfheal_docker_lock
