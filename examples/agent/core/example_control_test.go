package core_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
)

// The control API takes commands from the operator's tools, and refuses a web page
// on another origin and a replica count outside the fleet file's bounds.
func ExampleAgent_Handler() {
	fleet, _ := config.Parse("fleet.yaml", []byte(`
services:
  - name: web
    command: [./service]
    replicas: 3
    maxReplicas: 6
`))
	d, _ := local.New(local.Config{Nodes: fleet.Nodes})
	defer d.Close()
	a, _ := core.New(core.Config{Fleet: fleet, Driver: d})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	post := func(query string, header ...string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+query, nil)
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(b)))
	}
	post("/scale?service=web&replicas=4", "Origin", "https://attacker.example")
	post("/scale?service=web&replicas=4")
	post("/scale?service=web&replicas=100")
	// Output:
	// 403 agent: cross-origin request refused
	// 202 scale web: 3 -> 4 replicas
	// 400 agent: out of the fleet file's bounds: scale web to 100 replicas: want 1 to 6 (minReplicas to maxReplicas)
}
