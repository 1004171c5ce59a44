# Sourced by .ci/test (bash, set -euo pipefail) after the lab's pass, once the lab is stopped: a two-node Kubernetes
# cluster built offline (.ci/k8s/cluster.sh: control plane and nodes in network
# namespaces shk8s*, nodes 10.215.0.0/24, pods 10.215.<i>.0/24) for the kubernetes
# driver's tests (examples/k8s).
# A cold machine builds the kube binaries once (about 25 minutes on 2 cores; cached
# under $HOME/.cache/selfheal-k8s/v<version>); a warm start takes about 30 s.
#
# Exports SELFHEAL_K8S_KUBECONFIG (the tests fail without it when the CI services are
# configured), SELFHEAL_K8S_NETNS, SELFHEAL_K8S_SCRIPT and friends; registers the
# cluster's clean-up, which removes every process, namespace, mount, cgroup and file.
#
# The cluster's names are fixed, so a run holds an exclusive lock for as long as it uses
# it; a second run waits (at most 30 min). The lock is a descriptor of this shell only.

_selfheal_k8s_lock="${SELFHEAL_K8S_LOCK:-/tmp/selfheal-k8s.lock}"
exec {SELFHEAL_K8S_LOCK_FD}>>"$_selfheal_k8s_lock"
if ! flock -n "$SELFHEAL_K8S_LOCK_FD"; then
	echo "k8s: another CI run uses the cluster; waiting for $_selfheal_k8s_lock (up to 30 min)"
	flock -w 1800 "$SELFHEAL_K8S_LOCK_FD" || {
		echo "k8s: timed out waiting for $_selfheal_k8s_lock" >&2
		return 1
	}
fi
ci_cleanup "bash '$root/.ci/k8s/cluster.sh' stop"
_selfheal_k8s_env="$(bash "$root/.ci/k8s/cluster.sh" start {SELFHEAL_K8S_LOCK_FD}>&-)"
eval "$_selfheal_k8s_env"
unset _selfheal_k8s_env _selfheal_k8s_lock
