package frontdoor_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/selfheal-go/selfheal/examples/agent/frontdoor"
)

// BenchmarkFrontDoor measures the proxy's own cost: a real loopback backend, the
// front door called in-process.
func BenchmarkFrontDoor(b *testing.B) {
	inst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer inst.Close()
	bs := []frontdoor.Backend{{ID: "a", Addr: strings.TrimPrefix(inst.URL, "http://")}}
	fd, err := frontdoor.New(frontdoor.Config{Backends: func() []frontdoor.Backend { return bs }})
	if err != nil {
		b.Fatal(err)
	}
	defer fd.CloseIdleConnections()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			fd.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != 200 {
				b.Errorf("status %d", rec.Code)
			}
		}
	})
}
