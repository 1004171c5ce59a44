//go:build !linux

package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

type labConfig struct {
	interval, updateDelay time.Duration
	rps                   int
	events                string
	agent, alone          bool
}

// runSwarmLab: the test-host lab needs Linux (network namespaces).
func runSwarmLab(_ context.Context, _ labConfig, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "demo: -driver swarm-lab needs Linux (the test-host lab runs hosts in network namespaces)")
	return 1
}
