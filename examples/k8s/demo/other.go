//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "demo: the Kubernetes demonstration runs on Linux only (network namespaces, cluster.sh)")
	os.Exit(2)
}
