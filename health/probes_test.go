package health_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
)

// The document's Selfheal-Probes header says what /livez and /readyz answer, in
// every combination, draining and a pending check included, to any caller.
func TestDocumentCarriesTheProbesVerdicts(t *testing.T) {
	var liveFails, readyFails, degraded atomic.Bool
	toggle := func(b *atomic.Bool, msg string) health.CheckFunc {
		return func(context.Context) error {
			if b.Load() {
				return errors.New(msg)
			}
			return nil
		}
	}
	reg := newRegistry(t,
		health.Check{Name: "self", Kinds: health.Liveness, Func: toggle(&liveFails, "stuck"), CacheTTL: health.Off},
		health.Check{Name: "db:ping", Kinds: health.Readiness, Func: toggle(&readyFails, "db down"), CacheTTL: health.Off},
		health.Check{Name: "cache:ping", Kinds: health.Readiness, Func: toggle(&degraded, "slow"), NonCritical: true, CacheTTL: health.Off},
		// Never runs on demand: pending, which liveness alone counts as passing.
		health.Check{Name: "warm", Kinds: health.Liveness | health.Startup, Func: pass, Interval: time.Hour, InitialDelay: time.Hour},
	)
	h := reg.Handler(health.HandlerConfig{Authorize: health.BearerToken("s3cret")})
	for _, tc := range []struct {
		name                   string
		live, ready, warn, drn bool
		want                   string
	}{
		{"all pass", false, false, false, false, "liveness=pass, readiness=pass"},
		{"readiness fails", false, true, false, false, "liveness=pass, readiness=fail"},
		{"liveness fails", true, false, false, false, "liveness=fail, readiness=pass"},
		{"both fail", true, true, false, false, "liveness=fail, readiness=fail"},
		{"a non-critical check warns", false, false, true, false, "liveness=pass, readiness=warn"},
		{"draining", false, false, false, true, "liveness=pass, readiness=fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			liveFails.Store(tc.live)
			readyFails.Store(tc.ready)
			degraded.Store(tc.warn)
			reg.SetDraining(tc.drn)
			for _, authorized := range []bool{false, true} {
				_, _, hdr := get(t, h, "/health", authorized)
				v := hdr.Get(health.ProbesHeader)
				l, r, ok := health.ParseProbes(v)
				require.True(t, ok, "header %q", v)
				lc, _, _ := get(t, h, "/livez", false)
				rc, _, _ := get(t, h, "/readyz", false)
				// The probes answer 200 for pass and warn, 503 for fail.
				assert.Equal(t, l == health.StatusFail, lc == http.StatusServiceUnavailable, "liveness: header %q, /livez %d", v, lc)
				assert.Equal(t, r == health.StatusFail, rc == http.StatusServiceUnavailable, "readiness: header %q, /readyz %d", v, rc)
				assert.Equal(t, tc.want, v)
			}
		})
	}
}

func TestParseProbes(t *testing.T) {
	for _, tc := range []struct {
		give        string
		live, ready health.Status
		ok          bool
	}{
		{"liveness=pass, readiness=fail", health.StatusPass, health.StatusFail, true},
		{"readiness=warn,liveness=fail", health.StatusFail, health.StatusWarn, true},
		{"  liveness=pass ,  readiness=pass  ", health.StatusPass, health.StatusPass, true},
		{"", "", "", false},
		{"liveness=pass", "", "", false},
		{"liveness=pass, readiness=fail, startup=pass", "", "", false},
		{"liveness=pass, liveness=fail", "", "", false},
		{"liveness=ok, readiness=pass", "", "", false},
		{"liveness=PASS, readiness=pass", "", "", false},
		{"liveness = pass, readiness=pass", "", "", false},
		{"alive=pass, readiness=pass", "", "", false},
		{"liveness=pass, readiness=" + strings.Repeat("f", 100), "", "", false},
	} {
		l, r, ok := health.ParseProbes(tc.give)
		assert.Equal(t, tc.ok, ok, "%q", tc.give)
		assert.Equal(t, tc.live, l, "%q", tc.give)
		assert.Equal(t, tc.ready, r, "%q", tc.give)
	}
}

// The header comes from the network: no value panics, and whatever parses names a
// known status for both probes.
func FuzzParseProbes(f *testing.F) {
	for _, s := range []string{"liveness=pass, readiness=fail", "readiness=warn,liveness=fail", "liveness=", ",", "=,=", "liveness=pass,readiness=pass,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		l, r, ok := health.ParseProbes(v)
		if !ok {
			if l != "" || r != "" {
				t.Fatalf("%q: not ok but %q %q", v, l, r)
			}
			return
		}
		for _, s := range []health.Status{l, r} {
			if s != health.StatusPass && s != health.StatusWarn && s != health.StatusFail {
				t.Fatalf("%q: status %q", v, s)
			}
		}
		if !strings.Contains(v, "liveness="+string(l)) || !strings.Contains(v, "readiness="+string(r)) {
			t.Fatalf("%q parsed as %q %q", v, l, r)
		}
	})
}
