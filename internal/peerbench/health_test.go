package peerbench_test

// Benchmarks of the health package against github.com/alexliesenfeld/health v0.8.0,
// in the same run: the health document with five cached checks, with details and
// without, serial and parallel; /livez; and four concurrent probes of one slow check.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	alex "github.com/alexliesenfeld/health"

	"github.com/selfheal-go/selfheal/health"
)

var healthCheckNames = []string{"db:ping", "cache:ping", "queue:ping", "search:ping", "disk:free"}

func healthOK(context.Context) error { return nil }

// healthSelfheal returns the document handler of a registry with five on-demand
// checks whose results stay cached for the whole benchmark.
func healthSelfheal(b *testing.B, details bool) http.Handler {
	reg := health.New(health.Config{Version: "1.0.0", ServiceID: "bench"})
	for _, name := range healthCheckNames {
		if err := reg.Register(health.Check{Name: name, Func: healthOK, CacheTTL: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
	var cfg health.HandlerConfig
	if details {
		cfg.Authorize = func(*http.Request) bool { return true }
	}
	h := reg.Handler(cfg)
	healthPrime(b, h, "/health")
	return h
}

// healthAlex returns the handler of an alexliesenfeld/health checker with five
// checks cached for the whole benchmark.
func healthAlex(b *testing.B, details bool) http.Handler {
	opts := []alex.CheckerOption{alex.WithCacheDuration(time.Hour), alex.WithDisabledAutostart()}
	if !details {
		opts = append(opts, alex.WithDisabledDetails())
	}
	for _, name := range healthCheckNames {
		opts = append(opts, alex.WithCheck(alex.Check{Name: name, Check: healthOK}))
	}
	checker := alex.NewChecker(opts...)
	checker.Start()
	b.Cleanup(checker.Stop)
	h := alex.NewHandler(checker)
	healthPrime(b, h, "/health")
	return h
}

func healthPrime(b *testing.B, h http.Handler, path string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
	}
}

func healthServe(b *testing.B, h http.Handler, path string, parallel bool) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
		return
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d", rec.Code)
				return
			}
		}
	})
}

func BenchmarkHealthDocument(b *testing.B) {
	for _, details := range []bool{true, false} {
		name := "details"
		if !details {
			name = "nodetails"
		}
		for _, parallel := range []bool{false, true} {
			mode := "serial"
			if parallel {
				mode = "parallel"
			}
			b.Run(name+"/"+mode+"/selfheal", func(b *testing.B) {
				healthServe(b, healthSelfheal(b, details), "/health", parallel)
			})
			b.Run(name+"/"+mode+"/alexliesenfeld", func(b *testing.B) {
				healthServe(b, healthAlex(b, details), "/health", parallel)
			})
		}
	}
}

// BenchmarkHealthLivez: /livez answering 200 with one cached liveness check.
// alexliesenfeld/health has no probe endpoints: its handler with details disabled
// and one check is the nearest equivalent.
func BenchmarkHealthLivez(b *testing.B) {
	b.Run("selfheal", func(b *testing.B) {
		reg := health.New(health.Config{})
		if err := reg.Register(health.Check{Name: "self", Kinds: health.Liveness, Func: healthOK, CacheTTL: time.Hour}); err != nil {
			b.Fatal(err)
		}
		h := reg.Handler(health.HandlerConfig{})
		healthPrime(b, h, "/livez")
		healthServe(b, h, "/livez", false)
	})
	b.Run("alexliesenfeld", func(b *testing.B) {
		checker := alex.NewChecker(alex.WithCacheDuration(time.Hour), alex.WithDisabledDetails(),
			alex.WithCheck(alex.Check{Name: "self", Check: healthOK}))
		b.Cleanup(checker.Stop)
		h := alex.NewHandler(checker)
		healthPrime(b, h, "/livez")
		healthServe(b, h, "/livez", false)
	})
}

// BenchmarkHealthSlowCheck: four concurrent probes of one uncached 100 ms check;
// ns/op is the time until all four have their answer (selfheal shares one run:
// ~100 ms; a checker that serializes them takes ~400 ms).
func BenchmarkHealthSlowCheck(b *testing.B) {
	slow := func(ctx context.Context) error {
		t := time.NewTimer(100 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	probe4 := func(b *testing.B, h http.Handler, path string) {
		for b.Loop() {
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				})
			}
			wg.Wait()
		}
	}
	b.Run("selfheal", func(b *testing.B) {
		reg := health.New(health.Config{})
		if err := reg.Register(health.Check{Name: "slow", Func: slow, CacheTTL: health.Off}); err != nil {
			b.Fatal(err)
		}
		probe4(b, reg.Handler(health.HandlerConfig{}), "/readyz")
	})
	b.Run("alexliesenfeld", func(b *testing.B) {
		checker := alex.NewChecker(alex.WithDisabledCache(), alex.WithCheck(alex.Check{Name: "slow", Check: slow}))
		b.Cleanup(checker.Stop)
		probe4(b, alex.NewHandler(checker), "/health")
	})
}
