package docker_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
)

// A missing engine is a clear error, matched with errors.Is; the driver's
// constructor does not contact the engine.
func Example() {
	d, err := docker.New(docker.Config{Host: "unix:///nonexistent/docker.sock"})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = d.Ping(ctx)
	fmt.Println(errors.Is(err, docker.ErrEngineUnavailable))
	// Output: true
}

// Build the service's image from its Go package, declare it as a Swarm service, and
// roll out a new version three at a time with a 10 s delay. Every call returns once
// Swarm accepted it; Rollout and Instances follow the progress.
func ExampleDriver_Apply() {
	ctx := context.Background()
	d, err := docker.New(docker.Config{Host: os.Getenv("SELFHEAL_DOCKER_HOST")})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	// A static binary in a FROM scratch image, built without pulling anything.
	if _, err := d.BuildGoImage(ctx, "examples", "./service", docker.ImageSpec{Tag: "selfheal-demo:v1"}); err != nil {
		log.Fatal(err)
	}
	spec := driver.ServiceSpec{
		Name:     "demo",
		Version:  "v1",
		Image:    "selfheal-demo:v1",
		Replicas: 12,
		BasePort: 18080, // slot n listens on 18080+n-1
		Health:   driver.HealthCheck{Path: "/readyz", Interval: time.Second},
		Update:   driver.UpdatePolicy{Parallelism: 3, Delay: 10 * time.Second, Monitor: 5 * time.Second, FailureAction: "rollback"},
	}
	if err := d.Apply(ctx, spec); err != nil {
		log.Fatal(err)
	}
	spec.Version = "v2" // VERSION=v2 in every instance: a rolling update
	if err := d.Apply(ctx, spec); err != nil {
		log.Fatal(err)
	}
	st, err := d.Rollout(ctx, "demo")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.State, st.Version)
}
