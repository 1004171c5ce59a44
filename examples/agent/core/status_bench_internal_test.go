package core

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
)

func newBenchAgent(b *testing.B) *Agent {
	f, err := config.Parse("fleet.yaml", []byte("nodes: [node-1]\nservices:\n  - name: web\n    command: [/bin/true]\n    replicas: 2\n"))
	if err != nil {
		b.Fatal(err)
	}
	d, err := local.New(local.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	a, err := New(Config{Fleet: f, Driver: d})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

func BenchmarkStatusPages(b *testing.B) {
	for _, n := range []int{100, 1000} {
		a := newBenchAgent(b)
		s := a.svcs["web"]
		now := time.Now()
		for i := range n {
			id := "web-" + strconv.Itoa(i)
			s.members[id] = s.newMember(driver.Instance{ID: id, Service: "web", Node: "node-1", Addr: "127.0.0.1:1", State: driver.StateRunning, StartedAt: now}, now)
		}
		// The renderings themselves (what a request pays when none is in memory).
		b.Run("N="+strconv.Itoa(n)+"/render/", func(b *testing.B) {
			for b.Loop() {
				var buf bytes.Buffer
				if err := tmpl.ExecuteTemplate(&buf, "page", a.dashboardView(context.Background(), defaultWindow)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("N="+strconv.Itoa(n)+"/render/status", func(b *testing.B) {
			for b.Loop() {
				if _, err := a.statusJSON(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
		// Requests, served from memory (see snapshotMaxAge).
		h := a.Handler()
		for _, p := range []string{"/", "/status"} {
			b.Run("N="+strconv.Itoa(n)+p, func(b *testing.B) {
				for b.Loop() {
					w := httptest.NewRecorder()
					req := httptest.NewRequest(http.MethodGet, p, nil)
					req.RemoteAddr, req.Host = "127.0.0.1:1234", "127.0.0.1:8080"
					h.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Fatal(w.Code)
					}
				}
			})
		}
	}
}
