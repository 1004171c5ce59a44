package health_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/selfheal-go/selfheal/health"
)

// discardWriter is a ResponseWriter that keeps nothing, so that the benchmarks
// measure the handler alone (httptest.ResponseRecorder costs ~1.4 µs and 10
// allocations by itself; see internal/peerbench for the comparison with it).
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func benchRegistry(b *testing.B) *health.Registry {
	reg := health.New(health.Config{Version: "1.0.0"})
	for _, name := range []string{"a:ping", "b:ping", "c:ping", "d:ping", "e:ping"} {
		if err := reg.Register(health.Check{Name: name, Kinds: health.AllKinds, Func: pass, CacheTTL: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
	reg.Evaluate(context.Background(), 0)
	return reg
}

func benchServe(b *testing.B, h http.Handler, target string) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		w := &discardWriter{h: http.Header{}}
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			w := &discardWriter{h: http.Header{}}
			for pb.Next() {
				h.ServeHTTP(w, req)
			}
		})
	})
}

func BenchmarkLivez(b *testing.B) {
	benchServe(b, benchRegistry(b).Handler(health.HandlerConfig{}), "/livez")
}

func BenchmarkReadyzVerbose(b *testing.B) {
	benchServe(b, benchRegistry(b).Handler(health.HandlerConfig{Authorize: allow}), "/readyz?verbose")
}

func BenchmarkDocument(b *testing.B) {
	reg := benchRegistry(b)
	b.Run("details", func(b *testing.B) {
		benchServe(b, reg.Handler(health.HandlerConfig{Authorize: allow}), "/health")
	})
	b.Run("nodetails", func(b *testing.B) {
		benchServe(b, reg.Handler(health.HandlerConfig{}), "/health")
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	doc := benchRegistry(b).Document(context.Background())
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = doc.AppendJSON(buf[:0])
	}
}

func BenchmarkParseDocument(b *testing.B) {
	data := []byte(sampleDocument)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := health.ParseDocument(data); err != nil {
			b.Fatal(err)
		}
	}
}
