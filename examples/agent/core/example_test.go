package core_test

import (
	"context"
	"fmt"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
)

// An agent over the local driver, from a fleet file. In dry-run mode it decides and
// logs, and acts on nothing; Run would start the loop.
func ExampleNew() {
	fleet, err := config.Parse("fleet.yaml", []byte(`
agent: {dryRun: true}
nodes: [node-1, node-2]
services:
  - name: web
    command: [./service, -addr, "127.0.0.1:{port}"]
    replicas: 3
    frontDoor: 127.0.0.1:8080
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	d, _ := local.New(local.Config{Nodes: fleet.Nodes})
	defer d.Close()
	a, err := core.New(core.Config{Fleet: fleet, Driver: d})
	if err != nil {
		fmt.Println(err)
		return
	}
	st := a.Status(context.Background(), 0)
	for _, s := range st.Services {
		fmt.Printf("%s %s: %d wanted, %d running, dry run %v\n", s.Name, s.Version, s.Desired, s.Running, st.DryRun)
	}
	for _, n := range st.Nodes {
		fmt.Println(n.Name, n.State)
	}
	// Output:
	// web v1: 3 wanted, 0 running, dry run true
	// node-1 ready
	// node-2 ready
}
