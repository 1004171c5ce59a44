#!/usr/bin/env bash
# A private Docker engine (Debian's docker.io, containerd, runc, tini) for the docker
# driver's integration tests, in single-node swarm mode, on loopback only.
#
#   engine.sh start            fetch (cached), start containerd and dockerd, init the swarm;
#                              prints the environment the tests read as export lines
#   engine.sh stop             remove services, leave the swarm, stop dockerd and containerd
#                              by their pids, remove docker_gwbridge and netns mounts, wipe state
#   engine.sh stop-dockerd     stop dockerd only (containerd keeps running)
#   engine.sh start-dockerd    start dockerd again with the same arguments and wait for the swarm
#   engine.sh restart-dockerd  both of the above
#   engine.sh env              print the export lines again
#   engine.sh status           exit 0 if the engine answers
#
# Nothing leaves loopback: the engine listens on a unix socket, the swarm on 127.0.0.1,
# containers use host networking, and dockerd's proxy points at a closed loopback port so
# that any registry access fails at once instead of reaching the network. Only `start`
# uses the network, once, to fetch the packages with apt-get into the cache.
#
# Environment (all optional):
#   SELFHEAL_DOCKER_CACHE      package cache, default $HOME/.cache/selfheal-docker
#   SELFHEAL_DOCKER_STATE      runtime state (data-root, exec-root, sockets, pids, logs),
#                              default /tmp/selfheal-docker (kept short: it holds sockets)
#   SELFHEAL_DOCKER_SWARM_PORT swarm listen port on 127.0.0.1, default 2377
#   SELFHEAL_DOCKER_LOCK_FD    a file descriptor holding the run lock (set by
#                              .ci/services.d/docker.sh); closed before daemons start so
#                              they never hold the lock themselves
set -euo pipefail

if [ -n "${SELFHEAL_DOCKER_LOCK_FD:-}" ]; then
	eval "exec ${SELFHEAL_DOCKER_LOCK_FD}>&-" 2>/dev/null || true
fi

CACHE="${SELFHEAL_DOCKER_CACHE:-${HOME:-/root}/.cache/selfheal-docker}"
STATE="${SELFHEAL_DOCKER_STATE:-/tmp/selfheal-docker}"
SWARM_PORT="${SELFHEAL_DOCKER_SWARM_PORT:-2377}"
PKGS=(docker.io containerd runc tini)
# Runtime libraries the binaries link against; fetched only when not installed.
LIBPKGS=(libdevmapper1.02.1 libseccomp2 libsystemd0)

ROOT="$CACHE/root"
SOCK="$STATE/docker.sock"
CTRD_DIR="$STATE/containerd"
CTRD_SOCK="$CTRD_DIR/containerd.sock"
DOCKERD_PID="$STATE/dockerd.pid"
CTRD_PID="$STATE/containerd.pid"
MARK="$STATE/.selfheal-docker" # marks a state dir this script owns

log() { printf 'docker-engine: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

engine_env() {
	export PATH="$ROOT/usr/bin:$ROOT/usr/sbin:$PATH"
	if [ -d "$ROOT/usr/lib/x86_64-linux-gnu" ] || [ -d "$ROOT/lib/x86_64-linux-gnu" ]; then
		export LD_LIBRARY_PATH="$ROOT/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	fi
}

dk() { "$ROOT/usr/bin/docker" -H "unix://$SOCK" "$@"; }

# --- packages ---------------------------------------------------------------------------

install_pkgs() {
	if [ -f "$ROOT/.complete" ] && [ -x "$ROOT/usr/sbin/dockerd" ]; then
		return 0
	fi
	command -v apt-get >/dev/null || die "apt-get not found: this script needs a Debian-like system"
	command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
	local want=("${PKGS[@]}") p
	for p in "${LIBPKGS[@]}"; do
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
			want+=("$p")
		fi
	done
	local policy
	policy="$(apt-cache policy docker.io 2>/dev/null || true)"
	if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
		log "apt-get update (no candidate for docker.io yet)"
		apt-get update -qq >&2 || die "apt-get update failed"
	fi
	local dl="$CACHE/debs"
	rm -rf "$dl" "$ROOT.tmp"
	mkdir -p "$dl" "$ROOT.tmp"
	log "fetching ${want[*]}"
	(cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "${want[@]}" >&2) ||
		die "apt-get download ${want[*]} failed"
	local f
	for f in "$dl"/*.deb; do
		dpkg-deb -x "$f" "$ROOT.tmp"
	done
	rm -rf "$ROOT"
	mv "$ROOT.tmp" "$ROOT"
	(cd "$dl" && ls ./*.deb) >"$ROOT/.complete"
	rm -rf "$dl"
	# Every binary must find its libraries.
	engine_env
	local b missing=""
	for b in dockerd docker containerd containerd-shim-runc-v2 runc; do
		missing+="$(ldd "$(command -v "$b")" 2>/dev/null | grep 'not found' || true)"
	done
	[ -z "$missing" ] || die "libraries not found: $missing"
}

# --- processes --------------------------------------------------------------------------

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

readpid() { [ -f "$1" ] && tr -dc '0-9' <"$1" || true; }

# stop_pid PIDFILE EXE-NAME: SIGTERM, wait up to 20 s, then SIGKILL; only if the pid still
# runs the expected binary from our root.
stop_pid() {
	local pid exe i
	pid="$(readpid "$1")"
	if pid_alive "$pid"; then
		exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
		case "$exe" in
		"$ROOT"/*"$2"*) ;;
		*)
			log "pid $pid in $1 is not our $2 ($exe); leaving it"
			rm -f "$1"
			return 0
			;;
		esac
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 200; i++)); do
			pid_alive "$pid" || break
			sleep 0.1
		done
		if pid_alive "$pid"; then
			log "$2 (pid $pid) did not stop in 20s; SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				pid_alive "$pid" || break
				sleep 0.1
			done
		fi
	fi
	rm -f "$1"
}

# Shims outlive containerd when containers still run; stop ours (their -address names our
# containerd socket) by pid.
stop_shims() {
	local p
	for p in /proc/[0-9]*; do
		[ -r "$p/cmdline" ] || continue
		if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "-address $CTRD_SOCK"; then
			kill -KILL "${p#/proc/}" 2>/dev/null || true
		fi
	done
}

wait_socket() { # wait_socket SOCKET PIDFILE NAME SECONDS
	local i pid
	for ((i = 0; i < $4 * 10; i++)); do
		[ -S "$1" ] && return 0
		pid="$(readpid "$2")"
		if [ -n "$pid" ] && ! pid_alive "$pid"; then
			break
		fi
		sleep 0.1
	done
	return 1
}

start_containerd() {
	mkdir -p "$CTRD_DIR/root" "$CTRD_DIR/state"
	cat >"$CTRD_DIR/config.toml" <<EOF
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = "$CTRD_DIR/debug.sock"
[metrics]
  address = ""
EOF
	(
		engine_env
		exec setsid containerd --config "$CTRD_DIR/config.toml" --log-level warn \
			</dev/null >>"$STATE/containerd.log" 2>&1
	) &
	echo $! >"$CTRD_PID"
	wait_socket "$CTRD_SOCK" "$CTRD_PID" containerd 30 ||
		die "containerd did not start; log: $(tail -20 "$STATE/containerd.log")"
}

start_dockerd() {
	mkdir -p "$STATE/data" "$STATE/exec"
	[ -f "$STATE/daemon.json" ] || echo '{}' >"$STATE/daemon.json"
	rm -f "$SOCK"
	(
		engine_env
		export DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1
		# Registry access (a pull, a digest look-up) goes to a closed loopback port and fails
		# fast: nothing leaves loopback even if a caller asks for it.
		export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=
		export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=
		exec setsid dockerd \
			--host "unix://$SOCK" \
			--containerd "$CTRD_SOCK" \
			--config-file "$STATE/daemon.json" \
			--data-root "$STATE/data" \
			--exec-root "$STATE/exec" \
			--pidfile "$DOCKERD_PID" \
			--iptables=false --ip6tables=false --bridge=none --ip-masq=false --ip-forward=false \
			--userland-proxy=false \
			--log-level warn \
			</dev/null >>"$STATE/dockerd.log" 2>&1
	) &
	local launcher=$! # dockerd itself (exec), which also writes --pidfile
	local i
	for ((i = 0; i < 600; i++)); do
		if [ -S "$SOCK" ] && dk version >/dev/null 2>&1; then
			return 0
		fi
		pid_alive "$launcher" || break
		sleep 0.1
	done
	die "dockerd did not start in 60s; log: $(tail -30 "$STATE/dockerd.log")"
}

# wait_swarm SECONDS: until this node is an active, reachable manager.
wait_swarm() {
	local i s
	for ((i = 0; i < $1 * 10; i++)); do
		s="$(dk info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null || true)"
		if [ "$s" = "active true" ] && dk node ls >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

init_swarm() {
	local s port="$SWARM_PORT"
	s="$(dk info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)"
	if [ "$s" != "active" ]; then
		# Another swarm on this machine (a system engine) may hold the port already.
		while port_busy "$port"; do
			[ -n "${SELFHEAL_DOCKER_SWARM_PORT:-}" ] && die "127.0.0.1:$port is in use (SELFHEAL_DOCKER_SWARM_PORT)"
			port=$((port + 1))
			[ "$port" -lt $((SWARM_PORT + 50)) ] || die "no free swarm port in 127.0.0.1:$SWARM_PORT..$port"
		done
		dk swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port" \
			--task-history-limit 2 >/dev/null ||
			die "docker swarm init failed; log: $(tail -20 "$STATE/dockerd.log")"
	fi
	wait_swarm 60 || die "the swarm did not become active in 60s"
}

# --- clean-up ---------------------------------------------------------------------------

unmount_under() {
	local m
	# deepest first
	{ awk '{print $2}' /proc/self/mounts | sed 's/\\040/ /g' | grep -F "$1/" || true; } | sort -r |
		while IFS= read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done
}

stop_all() {
	[ -d "$STATE" ] || return 0
	if [ ! -f "$MARK" ]; then
		log "refusing to clean $STATE: it has no $MARK marker"
		return 1
	fi
	engine_env 2>/dev/null || true
	local pid
	pid="$(readpid "$DOCKERD_PID")"
	if pid_alive "$pid" && [ -x "$ROOT/usr/bin/docker" ] && timeout 10 "$ROOT/usr/bin/docker" -H "unix://$SOCK" version >/dev/null 2>&1; then
		local svcs
		svcs="$(timeout 20 "$ROOT/usr/bin/docker" -H "unix://$SOCK" service ls -q 2>/dev/null || true)"
		if [ -n "$svcs" ]; then
			# shellcheck disable=SC2086
			timeout 30 "$ROOT/usr/bin/docker" -H "unix://$SOCK" service rm $svcs >/dev/null 2>&1 || true
			local i
			for ((i = 0; i < 150; i++)); do
				[ -z "$(timeout 10 "$ROOT/usr/bin/docker" -H "unix://$SOCK" ps -q 2>/dev/null)" ] && break
				sleep 0.1
			done
		fi
		timeout 30 "$ROOT/usr/bin/docker" -H "unix://$SOCK" swarm leave --force >/dev/null 2>&1 || true
	fi
	stop_pid "$DOCKERD_PID" dockerd
	stop_shims
	stop_pid "$CTRD_PID" containerd
	stop_shims
	if [ -f "$STATE/gwbridge.ours" ] && ip link show docker_gwbridge >/dev/null 2>&1; then
		ip link del docker_gwbridge 2>/dev/null || true
	fi
	# netns bind mounts the engine made (under its exec-root; never /run/docker/netns,
	# which belongs to a system engine), then anything else mounted under the state dir.
	local n
	for n in "$STATE/exec/netns"/*; do
		[ -e "$n" ] || continue
		umount "$n" 2>/dev/null || umount -l "$n" 2>/dev/null || true
	done
	unmount_under "$STATE"
	rm -rf "$STATE" 2>/dev/null || {
		unmount_under "$STATE"
		rm -rf "$STATE"
	}
}

print_env() {
	printf 'export SELFHEAL_DOCKER_HOST=%q\n' "unix://$SOCK"
	printf 'export SELFHEAL_DOCKER_ENGINE=%q\n' "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/engine.sh"
	printf 'export SELFHEAL_DOCKER_STATE=%q\n' "$STATE"
	printf 'export SELFHEAL_DOCKER_CACHE=%q\n' "$CACHE"
	printf 'export SELFHEAL_DOCKER_CLI=%q\n' "$ROOT/usr/bin/docker"
}

start_all() {
	local t0=$SECONDS
	install_pkgs
	engine_env
	if [ -d "$STATE" ]; then
		log "cleaning up a previous engine in $STATE"
		stop_all
	fi
	mkdir -p "$STATE"
	touch "$MARK"
	if ! ip link show docker_gwbridge >/dev/null 2>&1; then
		touch "$STATE/gwbridge.ours"
	fi
	start_containerd
	start_dockerd
	init_swarm
	log "engine $(dk version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') in swarm mode on unix://$SOCK, ready in $((SECONDS - t0))s"
	print_env
}

# Sourced (by lab.sh, for the package cache and its functions): define, do not run.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
	return 0
fi

cmd="${1:-}"
case "$cmd" in
start) start_all ;;
stop) stop_all ;;
stop-dockerd)
	engine_env
	stop_pid "$DOCKERD_PID" dockerd
	;;
start-dockerd)
	engine_env
	[ -f "$MARK" ] || die "no engine state in $STATE: run '$0 start' first"
	pid_alive "$(readpid "$DOCKERD_PID")" || start_dockerd
	wait_swarm 90 || die "the swarm did not become active again in 90s"
	;;
restart-dockerd)
	engine_env
	[ -f "$MARK" ] || die "no engine state in $STATE: run '$0 start' first"
	stop_pid "$DOCKERD_PID" dockerd
	start_dockerd
	wait_swarm 90 || die "the swarm did not become active again in 90s"
	;;
env) print_env ;;
status)
	engine_env
	dk version >/dev/null 2>&1
	;;
*)
	echo "usage: $0 start|stop|stop-dockerd|start-dockerd|restart-dockerd|env|status" >&2
	exit 2
	;;
esac
