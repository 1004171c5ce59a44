#!/usr/bin/env bash
# A lab of test hosts on one machine: N "hosts" (network namespaces, each with its own
# UTS and mount namespace) joined by a bridge that lives in a namespace of its own, each
# running its own containerd and dockerd, joined as one Docker Swarm (host 1 the manager,
# the others workers). For the docker driver's tests of nodes that really die.
#
#   lab.sh start [N]       N hosts (default 3), the test image loaded into each before it
#                          joins; prints the environment the tests read as export lines
#   lab.sh stop            kill every process, delete every namespace, cgroup, mount and
#                          file the lab made; idempotent, and works after a crash (all
#                          state is recorded under the lab directory)
#   lab.sh env             print the export lines again
#   lab.sh status          the hosts and the swarm's nodes; exit 0 if the manager answers
#   lab.sh kill-host NAME  "terminate the VM": cut the host's link and SIGKILL every
#                          process of it (engine, containerd, shims, containers); prints
#                          the time of the cut in Unix nanoseconds
#   lab.sh add-host        a new host (namespace, engine, images loaded, joined as a
#                          worker); prints its name
#   lab.sh revive-host NAME  a killed host comes back: its link up, its engine started
#                          again on its old state; a node the swarm removed meanwhile
#                          leaves and joins again (as a new node)
#   lab.sh pressure NAME RESOURCE PERCENT|-  the host reports its use of RESOURCE (disk,
#                          memory) as the node label selfheal.pressure.RESOURCE, written
#                          through the manager (what a host's exporter would do); - removes it
#   lab.sh dk NAME ARGS    the docker CLI against host NAME's engine
#   lab.sh leftovers       print whatever of a lab is still on the machine; exit 1 if any
#
# Hosts are named <prefix><i> (shlab1, shlab2, ...), host i has address <net>.<i>/24 on
# its eth0; the bridge namespace is <prefix>-br. Nothing is added to the machine's own
# network namespace (no address, route or interface): the namespaces have no default
# route and no link out, so the engines can reach only each other; dockerd's proxy
# points at a closed loopback port, so a registry pull fails at once. Images are built
# locally on host 1 (FROM scratch, classic builder) and loaded into every other host.
#
# Environment (all optional):
#   SELFHEAL_LAB_DIR        lab directory (state, sockets, logs), default /tmp/selfheal-lab
#   SELFHEAL_LAB_PREFIX     prefix of namespace, host and cgroup names, default shlab
#   SELFHEAL_LAB_NET        first three octets of the private /24, default 10.213.0
#   SELFHEAL_LAB_HEARTBEAT  Swarm's dispatcher heartbeat, default 5s (Swarm's default)
#   SELFHEAL_DOCKER_CACHE   the package cache shared with engine.sh
# Needs root, iproute2, util-linux (unshare) and Go (to build the test image).
set -euo pipefail

# The CI run's lock on the lab (.ci/services.d/lab.sh): never inherited by the daemons.
if [ -n "${SELFHEAL_LAB_LOCK_FD:-}" ]; then
	eval "exec ${SELFHEAL_LAB_LOCK_FD}>&-" 2>/dev/null || true
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# engine.sh's package cache (CACHE, ROOT), install_pkgs, engine_env, unmount_under.
# shellcheck source=engine.sh
source "$here/engine.sh"

LAB="${SELFHEAL_LAB_DIR:-/tmp/selfheal-lab}"
PFX="${SELFHEAL_LAB_PREFIX:-shlab}"
NET="${SELFHEAL_LAB_NET:-10.213.0}"
HEARTBEAT="${SELFHEAL_LAB_HEARTBEAT:-5s}"
BR="$PFX-br"
IMAGE=selfheal-testsvc:lab
LMARK="$LAB/.selfheal-lab"

t0="$(date +%s%N)"
log() { printf 'lab: %6.2fs %s\n' "$(($(date +%s%N) - t0))e-9" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
hdir() { echo "$LAB/hosts/$1"; }
dk() {
	local h=$1
	shift
	"$ROOT/usr/bin/docker" -H "unix://$(hdir "$h")/docker.sock" "$@"
}
has_netns() { [ -e "/run/netns/$1" ]; }
hosts() { # the lab's hosts, in order of their index
	local d
	[ -d "$LAB/hosts" ] || return 0
	for d in "$LAB/hosts"/*/; do
		[ -f "$d/index" ] && printf '%s %s\n' "$(cat "$d/index")" "$(basename "$d")"
	done | sort -n | awk '{print $2}'
}
host_of() { # NAME or index -> NAME
	case "$1" in
	[0-9]*) echo "$PFX$1" ;;
	*) echo "$1" ;;
	esac
}

# --- network ----------------------------------------------------------------------------

record_netns() { echo "$1" >>"$LAB/netns"; }

bridge_up() {
	has_netns "$BR" && return 0
	# `ip netns add` makes /run/netns a shared bind mount the first time: if that is us,
	# stop unmounts it again.
	mountpoint -q /run/netns 2>/dev/null || touch "$LAB/netns-mount.ours"
	record_netns "$BR"
	ip netns add "$BR"
	ip -n "$BR" link set lo up
	ip -n "$BR" link add br0 type bridge
	ip -n "$BR" link set br0 up
}

host_net() { # host NAME with index I: eth0 = NET.I/24, its peer pI on the bridge
	local h=$1 i=$2
	record_netns "$h"
	ip netns add "$h"
	ip -n "$h" link set lo up
	ip link add "${PFX}v$i" netns "$h" type veth peer name "p$i" netns "$BR"
	ip -n "$h" link set "${PFX}v$i" name eth0
	ip -n "$h" addr add "$NET.$i/24" dev eth0
	ip -n "$h" link set eth0 up
	ip -n "$BR" link set "p$i" master br0
	ip -n "$BR" link set "p$i" up
}

# --- engines ----------------------------------------------------------------------------

# host_engine NAME: containerd and dockerd in the host's namespaces, started from ONE
# `ip netns exec` (one mount namespace: runc must see dockerd's overlay mounts). Returns
# at once; wait_engine waits for it.
host_engine() {
	local h=$1 s
	s="$(hdir "$h")"
	mkdir -p "$s/ctrd/root" "$s/ctrd/state" "$s/data" "$s/exec"
	cat >"$s/ctrd/config.toml" <<EOF
version = 2
root = "$s/ctrd/root"
state = "$s/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$s/ctrd/c.sock"
[ttrpc]
  address = "$s/ctrd/c.sock.ttrpc"
[debug]
  address = "$s/ctrd/debug.sock"
[metrics]
  address = ""
EOF
	echo '{}' >"$s/daemon.json"
	grep -E '^cgroup2? /sys/fs/cgroup' /proc/self/mounts >"$s/cgroup-mounts" || true
	echo "/$PFX/$h" >"$s/cgroup-parent"
	if [ ! -e /etc/docker ]; then # the mount point of each host's private /etc/docker
		touch "$LAB/etc-docker.ours"
		mkdir -p /etc/docker
	fi
	# `ip netns exec` gives the host a mount namespace of its own (/ made rslave: nothing
	# propagates back) and mounts a /sys that hides the cgroup hierarchies: remount them
	# (dockerd fails with "Devices cgroup isn't mounted" otherwise). A private /run holds
	# the shims' sockets (/run/containerd) and /run/docker, and a private /etc/docker
	# dockerd's key.json (its engine ID), like a VM's; they vanish with the host's last
	# process. Containers' cgroups go under /$PFX/<host>, which
	# stop removes.
	S="$s" H="$h" NOPROXY="$NET.0/24" CG="/$PFX/$h" setsid ip netns exec "$h" unshare --uts bash -c '
		set -e
		hostname "$H"
		mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
		while read -r _ dir fs _; do
			case "$fs" in
			cgroup)
				c="${dir##*/}"; o=$c; [ "$c" = systemd ] && o="none,name=systemd"
				mkdir -p "$dir"; mount -t cgroup -o "$o" cgroup "$dir" ;;
			cgroup2) mkdir -p "$dir"; mount -t cgroup2 cgroup2 "$dir" ;;
			esac
		done <"$S/cgroup-mounts"
		mount -t tmpfs -o mode=755 tmpfs /run
		mount -t tmpfs -o mode=755 tmpfs /etc/docker
		containerd --config "$S/ctrd/config.toml" --log-level warn </dev/null >>"$S/containerd.log" 2>&1 &
		echo $! >"$S/containerd.pid"
		for _ in $(seq 300); do [ -S "$S/ctrd/c.sock" ] && break; sleep 0.05; done
		export DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1
		export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
		export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
		export NO_PROXY="$NOPROXY" no_proxy="$NOPROXY"
		exec dockerd --host "unix://$S/docker.sock" --containerd "$S/ctrd/c.sock" \
			--config-file "$S/daemon.json" --data-root "$S/data" --exec-root "$S/exec" \
			--pidfile "$S/dockerd.pid" \
			--cgroup-parent "$CG" \
			--iptables=false --ip6tables=false --bridge=none --ip-masq=false --ip-forward=false \
			--userland-proxy=false --log-level warn </dev/null >>"$S/dockerd.log" 2>&1
	' </dev/null >"$s/launcher.log" 2>&1 &
	echo $! >"$s/launcher.pid"
}

wait_engine() {
	local h=$1 s k
	s="$(hdir "$h")"
	for ((k = 0; k < 600; k++)); do
		[ -S "$s/docker.sock" ] && dk "$h" version >/dev/null 2>&1 && return 0
		pid_alive "$(cat "$s/launcher.pid")" || break
		sleep 0.05
	done
	die "the engine of $h did not start: $(tail -5 "$s/dockerd.log" "$s/containerd.log" "$s/launcher.log" 2>/dev/null)"
}

new_host() { # new_host INDEX: directory, namespace, engine (not waited for)
	local i=$1 h="$PFX$1"
	mkdir -p "$(hdir "$h")"
	echo "$i" >"$(hdir "$h")/index"
	host_net "$h" "$i"
	host_engine "$h"
}

build_service() { # the docker driver's test service, a static binary
	local b="$LAB/image"
	mkdir -p "$b"
	(cd "$repo/examples" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$b/service" \
		./agent/driver/docker/internal/testsvc) || die "building the test service failed"
}

build_image() { # its image FROM scratch, built on host H (classic builder: no pull)
	local h=$1 b="$LAB/image"
	printf 'FROM scratch\nCOPY service /service\nENTRYPOINT ["/service"]\n' >"$b/Dockerfile"
	DOCKER_BUILDKIT=0 dk "$h" build -q -t "$IMAGE" "$b" >/dev/null
	dk "$h" save "$IMAGE" >"$b/image.tar"
	rm -f "$b/service"
}

load_images() { dk "$1" load -q -i "$LAB/image/image.tar" >/dev/null; }

swarm_init() {
	dk "$1" swarm init --advertise-addr "$NET.$2" --listen-addr "$NET.$2:2377" \
		--dispatcher-heartbeat "$HEARTBEAT" --task-history-limit 2 >/dev/null
	dk "$1" swarm join-token -q worker >"$LAB/worker-token"
	echo "$1" >"$LAB/manager"
}

join() { # join NAME INDEX as a worker (images loaded first: a task placed here finds them)
	local h=$1 i=$2 m
	m="$(cat "$LAB/manager")"
	load_images "$h"
	dk "$h" swarm join --token "$(cat "$LAB/worker-token")" --advertise-addr "$NET.$i" \
		--listen-addr "$NET.$i:2377" "$NET.$(cat "$(hdir "$m")/index"):2377" >/dev/null
}

# --- processes --------------------------------------------------------------------------

host_pids() { # every process of host NAME: those in its network namespace or naming
	# its directory on their command line (dockerd, containerd, shims), and all their
	# descendants. One pass over /proc (the pattern comes from a file, so that grep
	# does not find itself).
	local h=$1 seeds
	seeds="$({
		if has_netns "$h"; then ip netns pids "$h" 2>/dev/null || true; fi
		grep -lsFf <(printf '%s\n' "$(hdir "$h")/") /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 || true
	} | tr '\n' ' ')"
	[ -n "${seeds// /}" ] || return 0
	ps -e -o pid=,ppid= | awk -v seeds="$seeds" '
		BEGIN { n = split(seeds, a, " "); for (i = 1; i <= n; i++) keep[a[i]] = 1 }
		{ parent[$1] = $2 }
		END {
			for (p in parent) {
				q = p
				while (!(q in keep) && (q in parent) && q > 1) q = parent[q]
				if (q in keep) print p
			}
		}' | sort -n | tr '\n' ' '
}

kill_host() {
	local h=$1 pids k
	# its link cut (the bridge's side, then the host's), then every process killed;
	# the time of the cut (Unix nanoseconds) is the time of the loss
	date +%s%N >"$(hdir "$h")/killed"
	ip -n "$BR" link set "p$(cat "$(hdir "$h")/index")" down 2>/dev/null || true
	ip -n "$h" link set eth0 down 2>/dev/null || true
	pids="$(host_pids "$h")"
	# shellcheck disable=SC2086
	[ -z "${pids// /}" ] || kill -KILL $pids 2>/dev/null || true
	for ((k = 0; k < 100; k++)); do
		[ -z "$(host_pids "$h" | tr -d ' ')" ] && break
		sleep 0.05
	done
	log "killed $h: $pids"
}

# --- clean-up ---------------------------------------------------------------------------

remove_cgroups() { # every cgroup under /$PFX, deepest first
	local d
	for d in /sys/fs/cgroup/*/"$PFX" /sys/fs/cgroup/"$PFX"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[ ! -d "$d" ] || { sleep 0.1 && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; } || true
	done
}

stop_all() {
	local h n
	if [ -d "$LAB" ] && [ ! -f "$LMARK" ]; then
		die "refusing to clean $LAB: it has no $LMARK marker"
	fi
	for h in $(hosts); do kill_host "$h" >/dev/null 2>&1; done
	# namespaces: those recorded, and any left with our prefix (the record may be lost)
	for n in $({ cat "$LAB/netns" 2>/dev/null || true; ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PFX[0-9]+$|^$PFX-br$" || true; } | sort -u); do
		if has_netns "$n"; then
			# a process left in it (not from a host directory) dies with the host
			# shellcheck disable=SC2046
			kill -KILL $(ip netns pids "$n" 2>/dev/null) 2>/dev/null || true
			ip netns del "$n" 2>/dev/null || true
		fi
	done
	remove_cgroups
	if [ -f "$LAB/netns-mount.ours" ] && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
		umount /run/netns 2>/dev/null || true
		rmdir /run/netns 2>/dev/null || true
	fi
	if [ -f "$LAB/etc-docker.ours" ]; then
		rmdir /etc/docker 2>/dev/null || true # only if empty: a system engine may use it
	fi
	if [ -d "$LAB" ]; then
		unmount_under "$LAB"
		rm -rf "$LAB"
	fi
}

leftovers() { # what of a lab is still here
	local out="" p n
	[ ! -e "$LAB" ] || out+="directory $LAB"$'\n'
	for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PFX[0-9]+$|^$PFX-br$" || true); do
		out+="namespace $n"$'\n'
	done
	for p in $(grep -lsFf <(printf '%s\n' "$LAB/") /proc/[0-9]*/cmdline 2>/dev/null || true); do
		out+="process $(cut -d/ -f3 <<<"$p"): $(tr '\0' ' ' <"$p" 2>/dev/null | cut -c1-120)"$'\n'
	done
	out+="$(awk -v l="$LAB/" 'index($2, l) == 1 {print "mount " $2}' /proc/self/mounts)"
	for n in /sys/fs/cgroup/*/"$PFX"; do
		[ -d "$n" ] && out+=$'\n'"cgroup $n"
	done
	out="$(printf '%s' "$out" | sed '/^$/d')"
	[ -z "$out" ] && return 0
	printf '%s\n' "$out"
	return 1
}

print_env() {
	local m
	m="$(cat "$LAB/manager" 2>/dev/null || echo "${PFX}1")"
	printf 'export SELFHEAL_LAB_DIR=%q\n' "$LAB"
	printf 'export SELFHEAL_LAB_SCRIPT=%q\n' "$here/lab.sh"
	printf 'export SELFHEAL_LAB_MANAGER=%q\n' "unix://$(hdir "$m")/docker.sock"
	printf 'export SELFHEAL_LAB_HOSTS=%q\n' "$(hosts | tr '\n' ' ' | sed 's/ $//')"
	printf 'export SELFHEAL_LAB_IMAGE=%q\n' "$IMAGE"
	printf 'export SELFHEAL_LAB_NET=%q\n' "$NET"
	printf 'export SELFHEAL_LAB_PREFIX=%q\n' "$PFX"
	printf 'export SELFHEAL_DOCKER_CLI=%q\n' "$ROOT/usr/bin/docker"
}

start_all() {
	local n=${1:-3} i
	[ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "start: 1 to 200 hosts, not $n"
	[ "$(id -u)" = 0 ] || die "the lab needs root (network namespaces, mounts)"
	if [ -e "$LAB" ] || [ -n "$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PFX[0-9]+$|^$PFX-br$" || true)" ]; then
		log "cleaning up a previous lab"
		stop_all
	fi
	install_pkgs
	engine_env
	mkdir -p "$LAB/hosts"
	touch "$LMARK"
	echo "$n" >"$LAB/last-index"
	bridge_up
	for ((i = 1; i <= n; i++)); do new_host "$i"; done
	build_service # while the engines start
	wait_engine "${PFX}1"
	swarm_init "${PFX}1" 1
	log "manager ${PFX}1 up"
	build_image "${PFX}1"
	log "image $IMAGE built"
	local pids=()
	for ((i = 2; i <= n; i++)); do
		(wait_engine "$PFX$i" && join "$PFX$i" "$i") &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || die "a host did not join"; done
	log "lab of $n hosts up: $(dk "${PFX}1" node ls --format '{{.Hostname}}:{{.Status}}' | tr '\n' ' ')"
	print_env
}

add_host() {
	local i
	[ -f "$LMARK" ] || die "no lab in $LAB: run '$0 start' first"
	engine_env
	i=$(($(cat "$LAB/last-index") + 1))
	echo "$i" >"$LAB/last-index"
	new_host "$i"
	wait_engine "$PFX$i"
	join "$PFX$i" "$i"
	log "host $PFX$i joined"
	echo "$PFX$i"
}

revive_host() {
	local h=$1 i m
	[ -f "$(hdir "$h")/killed" ] || die "$h was not killed"
	engine_env
	i=$(cat "$(hdir "$h")/index")
	ip -n "$BR" link set "p$i" up
	ip -n "$h" link set eth0 up
	rm -f "$(hdir "$h")/killed"
	# kill_host saw every process of the host gone, but a killed dockerd can stay a
	# zombie (nothing reaps orphans here), and dockerd refuses to start on a pid file
	# naming a pid that /proc still lists: its pid files and sockets are stale
	rm -f "$(hdir "$h")"/{dockerd,containerd}.pid "$(hdir "$h")"/docker.sock "$(hdir "$h")"/ctrd/*.sock*
	host_engine "$h"
	wait_engine "$h"
	m="$(cat "$LAB/manager")"
	if dk "$m" node ls --format '{{.Hostname}}' | grep -qxF "$h"; then
		log "host $h came back, still a member of the swarm"
		return 0
	fi
	# removed from the swarm while it was away: its engine still believes it is a
	# member, with credentials the managers no longer accept
	dk "$h" swarm leave --force >/dev/null 2>&1 || true
	join "$h" "$i"
	log "host $h came back and joined the swarm again"
}

cmd="${1:-}"
shift || true
case "$cmd" in
start) start_all "$@" ;;
stop) stop_all ;;
env) print_env ;;
status)
	engine_env
	[ -f "$LMARK" ] || die "no lab in $LAB"
	for h in $(hosts); do
		if [ -f "$(hdir "$h")/killed" ]; then echo "$h killed"; else echo "$h up"; fi
	done
	dk "$(cat "$LAB/manager")" node ls
	;;
kill-host)
	[ -n "${1:-}" ] || die "kill-host NAME"
	h="$(host_of "$1")"
	[ -d "$(hdir "$h")" ] || die "no host $h in $LAB"
	kill_host "$h"
	cat "$(hdir "$h")/killed"
	;;
add-host) add_host ;;
revive-host)
	[ -n "${1:-}" ] || die "revive-host NAME"
	h="$(host_of "$1")"
	[ -d "$(hdir "$h")" ] || die "no host $h in $LAB"
	revive_host "$h"
	;;
pressure)
	[ $# = 3 ] || die "pressure NAME RESOURCE PERCENT|-"
	engine_env
	h="$(host_of "$1")"
	[[ "$2" =~ ^[a-z][a-z0-9_-]*$ ]] || die "pressure: resource $2: lowercase letters, digits, _ and -"
	if [ "$3" = - ]; then
		dk "$(cat "$LAB/manager")" node update --label-rm "selfheal.pressure.$2" "$h" >/dev/null
	else
		[[ "$3" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "pressure: $3 is not a percentage"
		dk "$(cat "$LAB/manager")" node update --label-add "selfheal.pressure.$2=$3" "$h" >/dev/null
	fi
	;;
dk)
	engine_env
	h="$(host_of "$1")"
	shift
	dk "$h" "$@"
	;;
leftovers) leftovers ;;
*)
	echo "usage: $0 start [N] | stop | env | status | kill-host NAME | add-host | revive-host NAME | pressure NAME RESOURCE PERCENT|- | dk NAME ARGS... | leftovers" >&2
	exit 2
	;;
esac
