package health_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
)

func allow(*http.Request) bool { return true }

func newRegistry(t *testing.T, checks ...health.Check) *health.Registry {
	t.Helper()
	reg := health.New(health.Config{Version: "1.2.3", ServiceID: "svc-1"})
	for _, c := range checks {
		require.NoError(t, reg.Register(c))
	}
	return reg
}

func pass(context.Context) error { return nil }

func failWith(msg string) health.CheckFunc {
	return func(context.Context) error { return errors.New(msg) }
}

func get(t *testing.T, h http.Handler, target string, authorized bool) (int, string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if authorized {
		req.Header.Set("Authorization", "Bearer s3cret")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestProbes(t *testing.T) {
	reg := newRegistry(t,
		health.Check{Name: "self", Kinds: health.Liveness | health.Readiness, Func: pass},
		health.Check{Name: "db:ping", Func: failWith("dial tcp 10.0.0.1:5432: connection refused")},
		health.Check{Name: "cache:ping", Func: failWith("redis down"), NonCritical: true},
		health.Check{Name: "warm", Kinds: health.Startup, Func: pass},
	)
	h := reg.Handler(health.HandlerConfig{Authorize: health.BearerToken("s3cret")})

	tests := []struct {
		give       string
		authorized bool
		wantCode   int
		wantBody   string
	}{
		{give: "/livez", wantCode: 200, wantBody: "ok"},
		{give: "/livez?verbose", wantCode: 200, wantBody: "ok"},
		{give: "/livez?verbose", authorized: true, wantCode: 200, wantBody: "[+]self ok\nlivez check passed"},
		{give: "/startupz", wantCode: 200, wantBody: "ok"},
		{give: "/readyz", wantCode: 503, wantBody: "readyz check failed"},
		{give: "/readyz?verbose", wantCode: 503, wantBody: "readyz check failed"},
		{give: "/readyz?verbose", authorized: true, wantCode: 503, wantBody: "[+]cache:ping ok\n[-]db:ping failed: dial tcp 10.0.0.1:5432: connection refused\n[+]self ok\nreadyz check failed"},
		{give: "/readyz?exclude=db:ping", wantCode: 200, wantBody: "ok"},
		{give: "/readyz?exclude=db:ping&exclude=self&verbose", authorized: true, wantCode: 200, wantBody: "[+]cache:ping ok\n[+]db:ping excluded: ok\n[+]self excluded: ok\nreadyz check passed"},
		{give: "/readyz/self", wantCode: 200, wantBody: "ok"},
		{give: "/readyz/db:ping", wantCode: 503, wantBody: "readyz check failed"},
		{give: "/readyz/cache:ping", wantCode: 200, wantBody: "ok"},
		{give: "/readyz/warm", wantCode: 404},
		{give: "/readyz/nope", wantCode: 404},
		{give: "/startupz/warm", wantCode: 200, wantBody: "ok"},
		{give: "/livez/self/x", wantCode: 404},
		{give: "/other", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			code, body, hdr := get(t, h, tt.give, tt.authorized)
			assert.Equal(t, tt.wantCode, code)
			if tt.wantBody != "" {
				assert.Equal(t, tt.wantBody, body)
				assert.Equal(t, "text/plain; charset=utf-8", hdr.Get("Content-Type"))
				assert.Equal(t, "no-store", hdr.Get("Cache-Control"))
			}
			assert.NotContains(t, body, "s3cret")
			if !tt.authorized {
				assert.NotContains(t, body, "refused")
				assert.NotContains(t, body, "redis")
			}
		})
	}
}

func TestProbeMethodNotAllowed(t *testing.T) {
	reg := newRegistry(t)
	rec := httptest.NewRecorder()
	reg.Handler(health.HandlerConfig{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/livez", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
}

func TestProbeHandlerWithServeMux(t *testing.T) {
	reg := newRegistry(t,
		health.Check{Name: "db", Func: failWith("boom")},
		health.Check{Name: "self", Func: pass},
	)
	mux := http.NewServeMux()
	mux.Handle("GET /ready", reg.ProbeHandler(health.Readiness, health.HandlerConfig{}))
	mux.Handle("GET /ready/{name}", reg.ProbeHandler(health.Readiness, health.HandlerConfig{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tt := range []struct {
		give string
		want int
	}{
		{"/ready", 503}, {"/ready/self", 200}, {"/ready/db", 503}, {"/ready/x", 404},
	} {
		resp, err := srv.Client().Get(srv.URL + tt.give)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, tt.want, resp.StatusCode, tt.give)
	}
}

func TestDocumentEndpoint(t *testing.T) {
	reg := newRegistry(t,
		health.Check{Name: "db:ping", ComponentType: "datastore", Func: failWith("password authentication failed for user app")},
		health.Check{Name: "http:responseTime", Observe: func(context.Context) ([]health.Observation, error) {
			return []health.Observation{
				{ComponentID: "p50", ObservedValue: 12.5, ObservedUnit: "ms"},
				{ComponentID: "p99", ObservedValue: 250, ObservedUnit: "ms", Status: health.StatusWarn, Output: "p99 above 200 ms"},
			}, nil
		}},
	)
	h := reg.Handler(health.HandlerConfig{Authorize: health.BearerToken("s3cret")})

	code, body, hdr := get(t, h, "/health", false)
	assert.Equal(t, 503, code)
	assert.Equal(t, health.ContentType, hdr.Get("Content-Type"))
	assert.JSONEq(t, `{"status":"fail"}`, body)

	code, body, _ = get(t, h, "/health", true)
	assert.Equal(t, 503, code)
	doc, err := health.ParseDocument([]byte(body))
	require.NoError(t, err, body)
	assert.Equal(t, health.StatusFail, doc.Status)
	assert.Equal(t, "1.2.3", doc.Version)
	assert.Equal(t, "svc-1", doc.ServiceID)
	assert.Equal(t, "failing: db:ping; warning: http:responseTime", doc.Output)
	db, ok := doc.Find("db:ping", "")
	require.True(t, ok)
	assert.Equal(t, health.StatusFail, db.Status)
	assert.Equal(t, "datastore", db.ComponentType)
	assert.Contains(t, db.Output, "password authentication failed")
	assert.False(t, db.Time.IsZero())
	p99, ok := doc.Find("http:responseTime", "p99")
	require.True(t, ok)
	v, ok := p99.Float()
	require.True(t, ok)
	assert.Equal(t, 250.0, v)
	assert.Equal(t, health.StatusWarn, p99.Status)
	assert.Equal(t, "ms", p99.ObservedUnit)
	require.Len(t, doc.Checks["http:responseTime"], 2)

	// Without the failing check the document passes with a warning: 200.
	require.True(t, reg.Remove("db:ping"))
	code, body, _ = get(t, h, "/health", false)
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"status":"warn"}`, body)
}

func TestAuthorizers(t *testing.T) {
	tok := health.BearerToken("abc")
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	assert.False(t, tok(req))
	req.Header.Set("Authorization", "Bearer abc")
	assert.True(t, tok(req))
	req.Header.Set("Authorization", "bearer abc")
	assert.True(t, tok(req))
	req.Header.Set("Authorization", "Bearer abcd")
	assert.False(t, tok(req))
	req.Header.Set("Authorization", "Basic abc")
	assert.False(t, tok(req))
	assert.False(t, health.BearerToken("")(req))

	either := health.AnyOf(health.LoopbackOnly, nil, tok)
	req.Header.Set("Authorization", "Bearer abc")
	req.RemoteAddr = "192.0.2.1:1"
	assert.True(t, either(req))
	req.Header.Del("Authorization")
	assert.False(t, either(req))
	req.RemoteAddr = "127.0.0.1:1"
	assert.True(t, either(req))
	assert.False(t, health.AnyOf()(req))

	for _, tt := range []struct {
		give string
		want bool
	}{
		{"127.0.0.1:1234", true}, {"[::1]:80", true}, {"127.9.9.9:1", true},
		{"192.0.2.1:1234", false}, {"[2001:db8::1]:80", false}, {"garbage", false}, {"[::ffff:127.0.0.1]:5", true},
	} {
		req.RemoteAddr = tt.give
		assert.Equal(t, tt.want, health.LoopbackOnly(req), tt.give)
	}
	// A request relayed by a local reverse proxy is not local.
	req.RemoteAddr = "127.0.0.1:1"
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-IP"} {
		r := req.Clone(context.Background())
		r.Header.Set(h, "for=192.0.2.7")
		assert.False(t, health.LoopbackOnly(r), h)
	}
}

func TestLoopbackOnlyWithRealServer(t *testing.T) {
	reg := newRegistry(t, health.Check{Name: "db", Func: failWith("secret detail")})
	srv := httptest.NewServer(reg.Handler(health.HandlerConfig{Authorize: health.LoopbackOnly}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/readyz?verbose")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, 503, resp.StatusCode)
	assert.True(t, strings.HasPrefix(string(b), "[-]db failed: secret detail"), string(b))
}

// ?exclude= names that match no check of the probe are warned about as
// kube-apiserver does, instead of being reported as "excluded: ok"; excluded checks
// keep their place in the listing.
func TestProbeExcludeUnknownWarns(t *testing.T) {
	reg := newRegistry(t,
		health.Check{Name: "b:ping", Func: failWith("down")},
		health.Check{Name: "c:ping", Func: pass},
		health.Check{Name: "a:live", Kinds: health.Liveness, Func: pass},
	)
	h := reg.Handler(health.HandlerConfig{Authorize: allow})
	tests := []struct {
		give     string
		wantCode int
		wantBody string
	}{
		{
			give: "/readyz?verbose&exclude=b:ping", wantCode: 200,
			wantBody: "[+]b:ping excluded: ok\n[+]c:ping ok\nreadyz check passed",
		},
		{
			give: "/readyz?verbose&exclude=x&exclude=b:ping", wantCode: 200,
			wantBody: "[+]b:ping excluded: ok\n[+]c:ping ok\nwarn: some health checks cannot be excluded: no matches for \"x\"\nreadyz check passed",
		},
		{
			// a:live exists, but not in readiness; duplicates collapse; names sort.
			give: "/readyz?verbose&exclude=z&exclude=a:live&exclude=z", wantCode: 503,
			wantBody: "[-]b:ping failed: down\n[+]c:ping ok\nwarn: some health checks cannot be excluded: no matches for \"a:live\",\"z\"\nreadyz check failed",
		},
		{
			// Control characters and odd bytes come back quoted, on one line.
			give: "/readyz?verbose&exclude=%0A%5B%2B%5Devil%20ok%0A&exclude=%FF", wantCode: 503,
			wantBody: "[-]b:ping failed: down\n[+]c:ping ok\nwarn: some health checks cannot be excluded: no matches for \"\\n[+]evil ok\\n\",\"\\xff\"\nreadyz check failed",
		},
		{give: "/readyz?exclude=nope", wantCode: 503, wantBody: "[-]b:ping failed: down\n[+]c:ping ok\nwarn: some health checks cannot be excluded: no matches for \"nope\"\nreadyz check failed"},
		{give: "/livez?verbose&exclude=a:live", wantCode: 200, wantBody: "[+]a:live excluded: ok\nlivez check passed"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			code, body, _ := get(t, h, tt.give, false)
			assert.Equal(t, tt.wantCode, code)
			assert.Equal(t, tt.wantBody, body)
		})
	}
	// Anonymous callers get the short answer, never the names they sent back.
	code, body, _ := get(t, reg.Handler(health.HandlerConfig{}), "/readyz?verbose&exclude=x&exclude=b:ping", false)
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok", body)
}

// Hostile query strings get a clear 400, through a real server.
func TestProbeHostileQueries(t *testing.T) {
	reg := newRegistry(t, health.Check{Name: "db", Func: pass})
	srv := httptest.NewServer(reg.Handler(health.HandlerConfig{Authorize: allow}))
	defer srv.Close()
	many := strings.Repeat("exclude=x&", 65)
	tests := []struct {
		name     string
		query    string
		wantCode int
		wantBody string
	}{
		{"huge", "exclude=" + strings.Repeat("a", 20<<10), 400, "health: bad request: query longer than 16384 bytes\n"},
		{"too many excludes", many + "verbose", 400, "health: bad request: more than 64 exclude parameters\n"},
		{"64 excludes are fine", strings.Repeat("exclude=x&", 64), 200, "ok"},
		{"bad escape", "exclude=%zz", 400, "health: bad request: malformed query: invalid URL escape \"%zz\"\n"},
		{"semicolon", "exclude=db;verbose", 400, "health: bad request: malformed query: invalid semicolon separator in query\n"},
		{"empty exclude", "exclude=&verbose", 200, "[+]db ok\nwarn: some health checks cannot be excluded: no matches for \"\"\nreadyz check passed"},
		{"unknown parameter", "foo=bar", 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + "/readyz?" + tt.query)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, resp.StatusCode)
			assert.Equal(t, tt.wantBody, string(body))
			assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
		})
	}
}

// Mount serves every path of Handler from one call, on a real server.
func TestMount(t *testing.T) {
	reg := newRegistry(t,
		health.Check{Name: "self", Kinds: health.Liveness | health.Readiness, Func: pass},
		health.Check{Name: "db", Func: failWith("down")},
		health.Check{Name: "warm", Kinds: health.Startup, Func: pass},
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api") })
	reg.Mount(mux, health.HandlerConfig{})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tt := range []struct {
		give string
		want int
	}{
		{"/livez", 200}, {"/livez/self", 200}, {"/livez/db", 404},
		{"/readyz", 503}, {"/readyz/self", 200}, {"/readyz/db", 503}, {"/readyz/", 404},
		{"/startupz", 200}, {"/startupz/warm", 200}, {"/startupz/self", 404},
		{"/health", 503}, {"/api", 200}, {"/healthz", 404}, {"/livez/self/x", 404},
	} {
		resp, err := srv.Client().Get(srv.URL + tt.give)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, tt.want, resp.StatusCode, tt.give)
	}
	resp, err := srv.Client().Post(srv.URL+"/readyz", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// A second Mount on the same mux conflicts, as http.ServeMux.Handle does.
	assert.Panics(t, func() { reg.Mount(mux, health.HandlerConfig{}) })
}

// Any query string gets 200, 503 or 400, and an authorized listing stays made of
// well-formed lines: what the caller sent comes back quoted, never as a line of its
// own.
func FuzzProbeQuery(f *testing.F) {
	for _, q := range []string{
		"verbose", "exclude=db&verbose", "exclude=x&exclude=x&verbose", "exclude=%0A%5B%2B%5Dx&verbose",
		"exclude=%zz", "a;b", "exclude=" + strings.Repeat("x", 300), "verbose&exclude=%FF%FE", "exclude=db%00",
	} {
		f.Add(q)
	}
	reg := health.New(health.Config{})
	require.NoError(f, reg.Register(health.Check{Name: "db", Func: failWith("line one\nline two")}))
	require.NoError(f, reg.Register(health.Check{Name: "self", Func: pass}))
	h := reg.Handler(health.HandlerConfig{Authorize: allow})
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 400:
			if !strings.HasPrefix(rec.Body.String(), "health: bad request: ") {
				t.Fatalf("400 without a reason: %q", rec.Body)
			}
			return
		case 200, 503:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		lines := strings.Split(rec.Body.String(), "\n")
		for _, l := range lines[:len(lines)-1] {
			switch {
			case l == "[+]db ok", l == "[+]self ok", l == "[-]db failed: line one line two",
				l == "[+]db excluded: ok", l == "[+]self excluded: ok",
				strings.HasPrefix(l, "warn: some health checks cannot be excluded: no matches for \""):
			default:
				t.Fatalf("unexpected line %q in %q", l, rec.Body)
			}
		}
		if last := lines[len(lines)-1]; last != "ok" && last != "readyz check passed" && last != "readyz check failed" {
			t.Fatalf("last line %q", last)
		}
	})
}
