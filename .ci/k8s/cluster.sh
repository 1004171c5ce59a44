#!/usr/bin/env bash
# cluster.sh: a real two-node Kubernetes built offline for the kubernetes driver's tests.
# Control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) on loopback;
# each node (containerd + kubelet) in a network namespace of its own (shk8s<i>, 10.215.0.<i>),
# joined by a bridge in a namespace of its own (shk8sbr); nothing is added to the host's
# network namespace. See .ci/k8s/README.md.
#
#   cluster.sh build            fetch Debian packages + build the kube binaries (cached by version)
#   cluster.sh start            build (cached), start the control plane and NODES nodes
#   cluster.sh stop             stop everything this script started, by pid; remove all state
#   cluster.sh leftovers        exit 1 (and say what) if anything of the cluster is left
#   cluster.sh kill-node I      kill -9 node I's kubelet, containerd and shims
#   cluster.sh restart-node I   a fresh node I (after kill-node)
#   cluster.sh pressure-node I on|off  restart node I's kubelet alone so that it reports
#                               MemoryPressure (on: a soft eviction threshold above the
#                               machine's memory, an hour's grace), or no longer (off)
#   cluster.sh env              print `export KUBECONFIG=...`
#
# Environment: SELFHEAL_K8S_CACHE (default $HOME/.cache/selfheal-k8s), SELFHEAL_K8S_STATE
# (default /tmp/selfheal-k8s), K8S_VERSION (default 1.35.4), NODES (default 2).
set -euo pipefail

V="${K8S_VERSION:-1.35.4}"
MINOR="$(echo "$V" | cut -d. -f2)"
CACHE="${SELFHEAL_K8S_CACHE:-${HOME:-/root}/.cache/selfheal-k8s}"
STATE="${SELFHEAL_K8S_STATE:-/tmp/selfheal-k8s}"
DEB="$CACHE/root"          # unpacked Debian packages
BIN="$CACHE/v$V"           # built kube binaries, keyed by version
SRC="$CACHE/src-v$V"       # writable copy of the k8s.io/kubernetes module (removed after build)
PKGS=(etcd-server etcd-client containerd runc containernetworking-plugins busybox-static)
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
NODES="${NODES:-2}"
TOKEN=selfheal-admin-token
PREFIX=shk8s
NET=10.215.0
ETCD_PORT=23791
ETCD_PEER_PORT=23801
API_PORT=6444
KCM_PORT=10267
SCHED_PORT=10269

log() { printf 'k8s: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

fetch_debs() {
	[ -f "$DEB/.complete" ] && return 0
	mkdir -p "$CACHE/debs" "$DEB"
	(cd "$CACHE/debs" && apt-get download "${PKGS[@]}" >/dev/null)
	local f
	for f in "$CACHE"/debs/*.deb; do dpkg-deb -x "$f" "$DEB"; done
	touch "$DEB/.complete"
}

build_kube() {
	local c missing=()
	for c in "${COMPONENTS[@]}"; do [ -x "$BIN/$c" ] || missing+=("$c"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	local t0=$SECONDS
	# `go install k8s.io/kubernetes/cmd/...@vX` refuses: the module's go.mod replaces every
	# k8s.io/* staging module with ./staging/src/..., which the module zip does not contain.
	# Build it as the main module instead, with the staging modules at their published v0.X.Y.
	if [ ! -f "$SRC/go.mod" ]; then
		local dir
		dir="$(cd /tmp && GOFLAGS=-mod=mod GOWORK=off go mod download -json "k8s.io/kubernetes@v$V" |
			sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
		[ -d "$dir" ] || die "go mod download k8s.io/kubernetes@v$V failed"
		rm -rf "$SRC.tmp" && cp -r "$dir" "$SRC.tmp" && chmod -R u+w "$SRC.tmp"
		rm -f "$SRC.tmp/go.work" "$SRC.tmp/go.work.sum"
		sed -i -E "s#^\t(k8s.io/[a-z0-9-]+) => ./staging/src/k8s.io/[a-z0-9-]+#\t\1 => \1 v0.${V#*.}#" "$SRC.tmp/go.mod"
		mv "$SRC.tmp" "$SRC"
	fi
	local ld="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld="$ld -X $p.gitVersion=v$V -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
	done
	mkdir -p "$BIN"
	for c in "${missing[@]}"; do
		log "building $c (v$V)"
		(cd "$SRC" && GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
			go build -trimpath -ldflags "$ld" -o "$BIN/$c.tmp" "./cmd/$c")
		mv "$BIN/$c.tmp" "$BIN/$c"
	done
	rm -rf "$SRC"
	log "built ${missing[*]} in $((SECONDS - t0)) s"
}

build() { fetch_debs; build_kube; }


# --- state, network ------------------------------------------------------------------------

MARK="$STATE/.selfheal-k8s"
BR="${PREFIX}br"
API="https://$NET.254:$API_PORT"
ndir() { echo "$STATE/nodes/$PREFIX$1"; }
has_netns() { [ -e "/run/netns/$1" ]; }
record() { echo "$2" >>"$STATE/$1"; } # record LIST ITEM: what stop must undo

wait_for() { # wait_for SECONDS CMD...: until CMD succeeds (1 on timeout, 2 if CMD returns 2)
	local end=$((SECONDS + $1)) rc; shift
	while true; do
		rc=0; "$@" >/dev/null 2>&1 || rc=$?
		[ $rc -eq 0 ] && return 0
		[ $rc -eq 2 ] && return 2
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}
pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# The bridge namespace holds the bridge, the control plane (on its loopback; the
# apiserver also on $NET.254 for the kubelets) and the routes to every node's pod subnet:
# clients join it (ip netns exec, or a dialer that makes its sockets there).
bridge_up() {
	mountpoint -q /run/netns 2>/dev/null || [ -e /run/netns ] || touch "$STATE/netns-mount.ours"
	record netns "$BR"
	ip netns add "$BR"
	ip -n "$BR" link set lo up
	ip -n "$BR" link add br0 type bridge
	ip -n "$BR" addr add "$NET.254/24" dev br0
	ip -n "$BR" link set br0 up
}

node_net() { # node I: eth0 = NET.I/24 on the bridge; pods in 10.215.I.0/24 behind cni0
	local i=$1 n="$PREFIX$1"
	record netns "$n"
	ip netns add "$n"
	ip -n "$n" link set lo up
	ip link add "${PREFIX}v$i" netns "$n" type veth peer name "p$i" netns "$BR"
	ip -n "$n" link set "${PREFIX}v$i" name eth0
	ip -n "$n" addr add "$NET.$i/24" dev eth0
	ip -n "$n" link set eth0 up
	ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$BR" link set "p$i" master br0
	ip -n "$BR" link set "p$i" up
	ip -n "$BR" route replace "${NET%.*}.$i.0/24" via "$NET.$i"
}

# --- control plane -------------------------------------------------------------------------

certs() {
	mkdir -p "$STATE/pki"
	openssl genrsa -out "$STATE/pki/sa.key" 2048 2>/dev/null
	openssl rsa -in "$STATE/pki/sa.key" -pubout -out "$STATE/pki/sa.pub" 2>/dev/null
	printf '%s,admin,admin,system:masters\n' "$TOKEN" >"$STATE/pki/tokens.csv"
	kubeconfig "https://127.0.0.1:$API_PORT" >"$STATE/kubeconfig"
	kubeconfig "$API" >"$STATE/kubeconfig-nodes"
}

kubeconfig() {
	cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: selfheal
  cluster: {server: "$1", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: "$TOKEN"}
contexts:
- name: selfheal
  context: {cluster: selfheal, user: admin}
current-context: selfheal
EOF
}

cp_start() { # cp_start NAME CMD...: a control-plane process in the bridge namespace
	local name=$1; shift
	setsid ip netns exec "$BR" "$@" </dev/null >"$STATE/$name.log" 2>&1 &
	echo $! >"$STATE/$name.pid"
}

api_get() { # api_get PATH: GET from inside the bridge namespace
	ip netns exec "$BR" curl -sfk -m 2 -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$API_PORT$1"
}

control_plane() {
	certs
	cp_start etcd "$DEB/usr/bin/etcd" --name selfheal --data-dir "$STATE/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "selfheal=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
	cp_start kube-apiserver "$BIN/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--bind-address=0.0.0.0 --advertise-address="$NET.254" --secure-port="$API_PORT" \
		--cert-dir="$STATE/pki/apiserver" --token-auth-file="$STATE/pki/tokens.csv" \
		--authorization-mode=AlwaysAllow --allow-privileged=true \
		--service-cluster-ip-range=10.96.0.0/24 \
		--service-account-issuer=https://kubernetes.default.svc \
		--service-account-key-file="$STATE/pki/sa.pub" \
		--service-account-signing-key-file="$STATE/pki/sa.key" \
		--disable-admission-plugins=ServiceAccount --v=0
	wait_for 120 api_get /readyz || die "kube-apiserver not ready: $(tail -n 5 "$STATE/kube-apiserver.log" "$STATE/etcd.log")"
	log "apiserver ready"
	cp_start kube-controller-manager "$BIN/kube-controller-manager" \
		--kubeconfig="$STATE/kubeconfig" --leader-elect=false \
		--bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$STATE/pki/kcm" \
		--service-account-private-key-file="$STATE/pki/sa.key" --use-service-account-credentials=false \
		--controllers='*,-serviceaccount-token-controller,-bootstrap-signer-controller,-token-cleaner-controller'
	cp_start kube-scheduler "$BIN/kube-scheduler" \
		--kubeconfig="$STATE/kubeconfig" --leader-elect=false \
		--bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --cert-dir="$STATE/pki/sched"
}

# --- images ----------------------------------------------------------------------------------

# mkimage OUT.tar NAME:TAG ROOTFS ENTRYPOINT...: a one-layer OCI image of directory ROOTFS.
mkimage() {
	local out="$1" name="$2" rootfs="$3"; shift 3
	local w; w="$(mktemp -d "$STATE/img.XXXXXX")"
	mkdir -p "$w/oci/blobs/sha256"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$w/layer.tar" .
	put() { local d; d="$(sha256sum "$1" | cut -d' ' -f1)"; cp "$1" "$w/oci/blobs/sha256/$d"; echo "$d"; }
	local ld ls_ ep cd_ cs md ms
	ld="$(put "$w/layer.tar")"; ls_="$(stat -c %s "$w/layer.tar")"
	ep="$(printf '"%s",' "$@")"; ep="[${ep%,}]"
	printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":["PATH=/bin"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$ep" "$ld" >"$w/config.json"
	cd_="$(put "$w/config.json")"; cs="$(stat -c %s "$w/config.json")"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$cd_" "$cs" "$ld" "$ls_" >"$w/manifest.json"
	md="$(put "$w/manifest.json")"; ms="$(stat -c %s "$w/manifest.json")"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' "$md" "$ms" "$name" "${name##*:}" >"$w/oci/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$w/oci" -cf "$out" .
	rm -rf "$w"
}

images() { # the pause image (busybox sleep) and the test service's image
	local r="$STATE/rootfs"
	mkdir -p "$r/pause/bin" "$r/svc/tmp" "$STATE/images"
	cp "$DEB/bin/busybox" "$r/pause/bin/busybox"
	ln -s busybox "$r/pause/bin/sleep"
	mkimage "$STATE/images/pause.tar" localhost/pause:1 "$r/pause" /bin/sleep 2147483647
	(cd "$REPO/examples/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$r/svc/testsvc" ./internal/testsvc) ||
		die "building the test service failed"
	mkimage "$STATE/images/testsvc.tar" "$IMAGE" "$r/svc" /testsvc
	rm -rf "$r"
}

# --- nodes -----------------------------------------------------------------------------------

CGROUP_V1="$(awk '$3 == "cgroup" {print $2}' /proc/self/mounts | tr '\n' ' ')"

own_dir() { # own_dir DIR: create a mount point on the machine if missing, and remember it
	[ -e "$1" ] && return 0
	mkdir -p "$1"
	record dirs "$1"
}

# node_start I: containerd and kubelet of node I, from ONE `ip netns exec` (one mount
# namespace, where runc sees containerd's mounts). That namespace gets its own cgroup
# mounts (`ip netns exec` remounts /sys), its own /run (the shims' /run/containerd, the
# pods' network namespaces) and its own /var/log/pods, /var/log/containers and
# /var/lib/kubelet (the kubelet writes there whatever its flags say): all of it vanishes
# with the node's last process.
node_start() {
	local i=$1 n="$PREFIX$1" s
	s="$(ndir "$i")"
	mkdir -p "$s/ctrd/root" "$s/ctrd/state" "$s/cni" "$s/ipam" "$s/kubelet" "$s/pki"
	echo "$i" >"$s/index"
	node_net "$i"
	local d
	for d in $CGROUP_V1; do mkdir -p "$d/$n"; done
	[ -d /sys/fs/cgroup/cgroup.controllers ] && mkdir -p "/sys/fs/cgroup/$n"
	printf '{"cniVersion":"0.4.0","name":"%s","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":"%s.%s.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"%s/ipam"}}]}\n' \
		"$PREFIX" "${NET%.*}" "$i" "$s" >"$s/cni/10-$PREFIX.conflist"
	cat >"$s/ctrd/config.toml" <<EOF
version = 2
root = "$s/ctrd/root"
state = "$s/ctrd/state"
[grpc]
  address = "$s/ctrd/c.sock"
[ttrpc]
  address = "$s/ctrd/c.sock.ttrpc"
[debug]
  address = "$s/ctrd/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:1"
  # No CAP_SYS_RESOURCE on these machines: without it every sandbox fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$DEB/usr/lib/cni"
    conf_dir = "$s/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$DEB/usr/sbin/runc"
        SystemdCgroup = false
EOF
	kubelet_config "$i" off >"$s/kubelet.yaml"
	grep -E '^cgroup2? /sys/fs/cgroup' /proc/self/mounts >"$s/cgroup-mounts" || true
	S="$s" N="$n" DEB="$DEB" BIN="$BIN" KC="$STATE/kubeconfig-nodes" IP="$NET.$i" IMAGES="$STATE/images" \
		setsid ip netns exec "$n" bash -c '
		set -e
		mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
		while read -r _ dir fs opts _; do
			case "$fs" in
			cgroup)
				c="${dir##*/}"; o=$c; [ "$c" = systemd ] && o="none,name=systemd"
				mkdir -p "$dir"; mount -t cgroup -o "$o" cgroup "$dir" ;;
			cgroup2) mkdir -p "$dir"; mount -t cgroup2 cgroup2 "$dir" ;;
			esac
		done <"$S/cgroup-mounts"
		mount -t tmpfs -o mode=755 tmpfs /run
		mount -t tmpfs -o mode=755 tmpfs /var/log/pods
		mount -t tmpfs -o mode=755 tmpfs /var/log/containers
		mount -t tmpfs -o mode=755 tmpfs /var/lib/kubelet
		export PATH="$DEB/usr/bin:$DEB/usr/sbin:$PATH"
		containerd --config "$S/ctrd/config.toml" --log-level warn </dev/null >>"$S/containerd.log" 2>&1 &
		echo $! >"$S/containerd.pid"
		for _ in $(seq 600); do ctr -a "$S/ctrd/c.sock" version >/dev/null 2>&1 && break; sleep 0.05; done
		for img in "$IMAGES"/*.tar; do ctr -a "$S/ctrd/c.sock" -n k8s.io images import "$img" >/dev/null; done
		exec "$BIN/kubelet" --config="$S/kubelet.yaml" --kubeconfig="$KC" --root-dir="$S/kubelet" \
			--hostname-override="$N" --node-ip="$IP" --cert-dir="$S/pki" --v=0 </dev/null >>"$S/kubelet.log" 2>&1
	' </dev/null >"$s/launcher.log" 2>&1 &
	echo $! >"$s/launcher.pid"
}

# kubelet_config I on|off: node I's kubelet configuration; on: under memory pressure.
kubelet_config() {
	local i=$1 n="$PREFIX$1" s
	s="$(ndir "$i")"
	cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NET.$i
port: 10250
readOnlyPort: 0
healthzBindAddress: $NET.$i
healthzPort: 10248
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: /$n
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$s/ctrd/c.sock
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "0%", "nodefs.available": "0%", "imagefs.available": "0%"}
resolvConf: ""
serializeImagePulls: false
EOF
	# Under pressure: a soft memory threshold above anything the machine has, with a grace
	# period longer than any test, so that the kubelet reports MemoryPressure (its
	# conditions do not wait for the grace period) and evicts nothing itself.
	[ "$2" = on ] || return 0
	cat <<EOF
evictionSoft: {"memory.available": "1000Gi"}
evictionSoftGracePeriod: {"memory.available": "1h"}
evictionPressureTransitionPeriod: 5s
EOF
}

node_ready() {
	pid_alive "$(cat "$(ndir "$1")/launcher.pid")" || return 2
	api_get "/api/v1/nodes/$PREFIX$1" | grep -q '"type": *"Ready", *"status": *"True"' ||
		api_get "/api/v1/nodes/$PREFIX$1" | tr -d ' \n' | grep -q '"type":"Ready","status":"True"'
}

# --- processes -------------------------------------------------------------------------------

node_pids() { # every process of node I: in its namespace or naming its directory, and descendants
	local s seeds
	s="$(ndir "$1")"
	seeds="$({
		if has_netns "$PREFIX$1"; then ip netns pids "$PREFIX$1" 2>/dev/null || true; fi
		[ -f "$s/launcher.pid" ] && cat "$s/launcher.pid"
		grep -lsFf <(printf '%s\n' "$s/") /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 || true
	} | tr '\n' ' ')"
	descendants "$seeds"
}

descendants() { # descendants "PID...": the pids and all their live descendants
	[ -n "${1// /}" ] || return 0
	ps -e -o pid=,ppid= | awk -v seeds="$1" '
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

kill_pids() { # kill -9 the pids and wait (5 s at most) until they are gone
	local pids="$1" k
	[ -n "${pids// /}" ] || return 0
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	for ((k = 0; k < 100; k++)); do
		local alive=""
		for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ -z "$alive" ] && return 0
		sleep 0.05
	done
}

kill_node() { # kill -9 node I's kubelet, containerd, shims and containers; cut its link
	local i=$1 s pids
	s="$(ndir "$i")"
	[ -d "$s" ] || die "no node $PREFIX$i"
	date +%s%N >"$s/killed"
	pids="$(node_pids "$i")"
	kill_pids "$pids"
	ip -n "$BR" link set "p$i" down 2>/dev/null || true
	log "killed $PREFIX$i: $pids"
	cat "$s/killed"
}

# restart_node I: a fresh node I in place of a killed (or live) one: its processes,
# namespace, cgroups, mounts and directory removed, then started again and waited for.
restart_node() {
	local i=$1 s n="$PREFIX$1"
	s="$(ndir "$i")"
	[ -f "$MARK" ] || die "no cluster in $STATE"
	kill_pids "$(node_pids "$i")"
	ip -n "$BR" link del "p$i" 2>/dev/null || true # its veth pair, at once (netns del is lazy)
	if has_netns "$n"; then ip netns del "$n"; fi
	for _ in $(seq 50); do ip -n "$BR" link show "p$i" >/dev/null 2>&1 || break; sleep 0.1; done
	local d
	for d in /sys/fs/cgroup/*/"$n" /sys/fs/cgroup/"$n"; do
		[ -d "$d" ] && { find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
	done
	unmount_under "$s"
	rm -rf "$s"
	node_start "$i"
	local rc=0
	wait_for 180 node_ready "$i" || rc=$?
	[ $rc -eq 0 ] || die "node $n not ready: $(tail -n 5 "$s/kubelet.log" "$s/containerd.log" 2>/dev/null)"
	log "node $n restarted"
}

# pressure_node I on|off: restart node I's kubelet alone (its containerd and pods run on)
# with a configuration under which it reports MemoryPressure (on), or the usual one (off),
# and wait until the node reports it (or no longer does).
pressure_node() {
	local i=$1 mode=$2 s n="$PREFIX$1" kpid cpid
	s="$(ndir "$i")"
	case "$mode" in on | off) ;; *) die "pressure-node I on|off" ;; esac
	[ -f "$s/containerd.pid" ] || die "no node $n"
	kpid="$(cat "$s/launcher.pid")"
	cpid="$(cat "$s/containerd.pid")"
	pid_alive "$cpid" || die "node $n has no containerd (killed? restart-node $i)"
	kubelet_config "$i" "$mode" >"$s/kubelet.yaml"
	kill -TERM "$kpid" 2>/dev/null || true
	for _ in $(seq 100); do pid_alive "$kpid" || break; sleep 0.05; done
	kill_pids "$kpid"
	# the kubelet in the node's mount namespace (containerd's: its cgroup mounts, /run,
	# /var/lib/kubelet) and network namespace
	PATH="$DEB/usr/bin:$DEB/usr/sbin:$PATH" setsid nsenter --target "$cpid" --mount --net -- \
		"$BIN/kubelet" --config="$s/kubelet.yaml" --kubeconfig="$STATE/kubeconfig-nodes" --root-dir="$s/kubelet" \
		--hostname-override="$n" --node-ip="$NET.$i" --cert-dir="$s/pki" --v=0 </dev/null >>"$s/kubelet.log" 2>&1 &
	echo $! >"$s/launcher.pid"
	wait_for 120 node_ready "$i" || die "node $n not ready after its kubelet's restart: $(tail -n 5 "$s/kubelet.log")"
	local want=True
	[ "$mode" = on ] || want=False
	wait_for 180 memory_pressure "$i" "$want" || die "node $n: MemoryPressure not $want: $(tail -n 5 "$s/kubelet.log")"
	log "node $n: kubelet restarted, MemoryPressure $want"
}

memory_pressure() { # memory_pressure I True|False: node I reports MemoryPressure so
	api_get "/api/v1/nodes/$PREFIX$1" | tr -d ' \n' | grep -q "\"type\":\"MemoryPressure\",\"status\":\"$2\""
}

# --- start, stop, leftovers ------------------------------------------------------------------

start() {
	[ "$(id -u)" = 0 ] || die "the cluster needs root (network namespaces, mounts, cgroups)"
	[ "$NODES" -ge 1 ] && [ "$NODES" -le 50 ] || die "NODES: 1 to 50, not $NODES"
	local t0=$SECONDS i
	build
	if [ -e "$STATE" ] || [ -n "$(our_netns)" ]; then
		log "cleaning up a previous cluster"
		stop
	fi
	mkdir -p "$STATE/nodes"
	touch "$MARK"
	echo "$NODES" >"$STATE/node-count"
	for d in /var/log/pods /var/log/containers /var/lib/kubelet; do own_dir "$d"; done
	bridge_up
	control_plane
	images
	for ((i = 1; i <= NODES; i++)); do node_start "$i"; done
	for ((i = 1; i <= NODES; i++)); do
		wait_for 180 node_ready "$i" ||
			die "node $PREFIX$i not ready: $(tail -n 5 "$(ndir "$i")/kubelet.log" "$(ndir "$i")/containerd.log" "$(ndir "$i")/launcher.log" 2>/dev/null)"
	done
	log "cluster of $NODES nodes up in $((SECONDS - t0)) s"
	print_env
}

our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX[0-9]+$|^${PREFIX}br$" || true; }

remove_cgroups() { # every cgroup under /<prefix><i>, deepest first
	local d
	for d in /sys/fs/cgroup/*/"$PREFIX"[0-9]* /sys/fs/cgroup/"$PREFIX"[0-9]*; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[ ! -d "$d" ] || { sleep 0.2 && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; } || true
	done
}

unmount_under() { # every mount under DIR, deepest first
	local m
	awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
}

stop() {
	local t0=$SECONDS d n
	if [ -d "$STATE" ] && [ ! -f "$MARK" ]; then
		die "refusing to clean $STATE: it has no $MARK marker"
	fi
	local pids=""
	if [ -d "$STATE/nodes" ]; then
		for d in "$STATE"/nodes/*/; do
			[ -f "$d/index" ] && pids="$pids $(node_pids "$(cat "$d/index")")"
		done
	fi
	for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do
		[ -f "$STATE/$c.pid" ] && pids="$pids $(descendants "$(cat "$STATE/$c.pid")")"
	done
	# anything else naming the state directory (a process whose pid file was lost)
	pids="$pids $(grep -lsFf <(printf '%s\n' "$STATE/") /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | tr '\n' ' ' || true)"
	kill_pids "$pids"
	for n in $({ cat "$STATE/netns" 2>/dev/null || true; our_netns; } | sort -u); do
		if has_netns "$n"; then
			# shellcheck disable=SC2046
			kill -KILL $(ip netns pids "$n" 2>/dev/null) 2>/dev/null || true
			ip netns del "$n" 2>/dev/null || true
		fi
	done
	remove_cgroups
	if [ -f "$STATE/netns-mount.ours" ] && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
		umount /run/netns 2>/dev/null || true
		rmdir /run/netns 2>/dev/null || true
	fi
	if [ -f "$STATE/dirs" ]; then
		while read -r d; do rm -rf "$d"; done <"$STATE/dirs"
	fi
	if [ -d "$STATE" ]; then
		unmount_under "$STATE"
		rm -rf "$STATE"
	fi
	log "stopped in $((SECONDS - t0)) s"
}

leftovers() {
	local out="" p n d
	[ ! -e "$STATE" ] || out+="directory $STATE"$'\n'
	for n in $(our_netns); do out+="namespace $n"$'\n'; done
	for p in $(grep -lsFf <(printf '%s\n' "$STATE/") /proc/[0-9]*/cmdline 2>/dev/null || true); do
		out+="process $(cut -d/ -f3 <<<"$p"): $(tr '\0' ' ' <"$p" 2>/dev/null | cut -c1-120)"$'\n'
	done
	out+="$(awk -v l="$STATE/" 'index($2, l) == 1 {print "mount " $2}' /proc/self/mounts)"$'\n'
	for d in /sys/fs/cgroup/*/"$PREFIX"[0-9]* /sys/fs/cgroup/"$PREFIX"[0-9]*; do
		[ -d "$d" ] && out+="cgroup $d"$'\n'
	done
	for d in /var/log/pods /var/log/containers /var/lib/kubelet /run/containerd/s /run/containerd/fifo /run/containerd/runc/k8s.io /run/containerd/io.containerd.runtime.v2.task/k8s.io; do
		if [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ]; then out+="files in $d"$'\n'; fi
	done
	out="$(printf '%s' "$out" | sed '/^$/d')"
	[ -z "$out" ] && return 0
	printf '%s\n' "$out"
	return 1
}

print_env() {
	printf 'export SELFHEAL_K8S_KUBECONFIG=%q\n' "$STATE/kubeconfig"
	printf 'export SELFHEAL_K8S_NETNS=%q\n' "/run/netns/$BR"
	printf 'export SELFHEAL_K8S_SCRIPT=%q\n' "$HERE/cluster.sh"
	printf 'export SELFHEAL_K8S_IMAGE=%q\n' "$IMAGE"
	printf 'export SELFHEAL_K8S_NODES=%q\n' "$(for ((i = 1; i <= $(cat "$STATE/node-count" 2>/dev/null || echo "$NODES"); i++)); do printf '%s%s ' "$PREFIX" "$i"; done | sed 's/ $//')"
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
IMAGE=localhost/selfheal-k8s-testsvc:1

cmd="${1:-}"
shift || true
case "$cmd" in
build) build ;;
start) start ;;
stop) stop ;;
leftovers) leftovers ;;
kill-node)
	[ -n "${1:-}" ] || die "kill-node I (1..$NODES, or the node's name)"
	kill_node "${1#"$PREFIX"}"
	;;
restart-node)
	[ -n "${1:-}" ] || die "restart-node I"
	restart_node "${1#"$PREFIX"}"
	;;
pressure-node)
	[ -n "${1:-}" ] && [ -n "${2:-}" ] || die "pressure-node I on|off"
	pressure_node "${1#"$PREFIX"}" "$2"
	;;
env) print_env ;;
*) echo "usage: $0 build|start|stop|leftovers|kill-node I|restart-node I|pressure-node I on|off|env" >&2; exit 2 ;;
esac
