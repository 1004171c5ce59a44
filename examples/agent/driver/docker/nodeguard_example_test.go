package docker_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
)

// Guard a swarm against lost workers: the guard probes every instance and node, and
// removes a worker it confirmed lost, so that Swarm reschedules its replicas at once.
// Run it beside the agent, for as long as the agent runs.
func ExampleNodeGuard() {
	d, err := docker.New(docker.Config{Host: os.Getenv("DOCKER_HOST")})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	g, err := docker.NewNodeGuard(docker.NodeGuardConfig{
		Driver: d,
		OnIncident: func(in docker.NodeIncident) {
			log.Printf("node %s lost (%s), removed %v after the first silent probe",
				in.Node, in.Reason, in.Removed.Sub(in.SilentFrom))
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := g.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		log.Fatal(err)
	}
	fmt.Println(len(g.Snapshot().Incidents), "nodes removed")
}

// RemoveNode never removes a manager: the agent cannot take the swarm's last manager
// (or its quorum) away.
func ExampleDriver_RemoveNode() {
	d, err := docker.New(docker.Config{Host: os.Getenv("DOCKER_HOST")})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = d.RemoveNode(ctx, "manager-1", "lost")
	if errors.Is(err, docker.ErrManagerNode) {
		fmt.Println("refused:", err)
	}
}
