package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
)

const sampleDocument = `{
  "status": "warn",
  "version": "1",
  "releaseId": "1.2.2",
  "serviceId": "f03e522f-1f44-4062-9b55-9587f91c9c41",
  "description": "health of authz service",
  "notes": ["note"],
  "output": "",
  "links": {"about": "http://api.example.com/about/authz"},
  "checks": {
    "cassandra:responseTime": [
      {"componentId": "dfd6cf2b", "componentType": "datastore", "observedValue": 250,
       "observedUnit": "ms", "status": "pass", "affectedEndpoints": ["/users/{userId}"],
       "time": "2019-01-20T10:03:06Z", "output": "", "somethingNew": {"x": 1}}
    ],
    "cpu:utilization": [
      {"componentId": "6fd416e0", "componentType": "system", "observedValue": 85,
       "observedUnit": "percent", "status": "warn", "time": "2019-01-20T10:03:06.123+01:00"}
    ],
    "breaker:state": [
      {"componentId": "payments", "observedValue": "open", "status": "warn"},
      {"componentId": "profile", "observedValue": {"state": "closed", "failures": 0}}
    ]
  }
}`

func TestParseDocument(t *testing.T) {
	d, err := health.ParseDocument([]byte(sampleDocument))
	require.NoError(t, err)
	assert.Equal(t, health.StatusWarn, d.Status)
	assert.Equal(t, "1.2.2", d.ReleaseID)
	assert.Equal(t, []string{"note"}, d.Notes)
	c, ok := d.Find("cassandra:responseTime", "dfd6cf2b")
	require.True(t, ok)
	v, ok := c.Float()
	assert.True(t, ok)
	assert.Equal(t, 250.0, v)
	assert.Equal(t, time.Date(2019, 1, 20, 10, 3, 6, 0, time.UTC), c.Time.UTC())
	assert.Equal(t, []string{"/users/{userId}"}, c.AffectedEndpoints)
	b, ok := d.Find("breaker:state", "payments")
	require.True(t, ok)
	assert.Equal(t, "open", b.ObservedValue)
	p, ok := d.Find("breaker:state", "profile")
	require.True(t, ok)
	assert.Equal(t, map[string]any{"state": "closed", "failures": 0.0}, p.ObservedValue)
	_, ok = d.Find("nope", "")
	assert.False(t, ok)
}

func TestParseDocumentErrors(t *testing.T) {
	tests := []struct {
		give     string
		wantPath string
	}{
		{give: ``},
		{give: `   `},
		{give: `null`},
		{give: `[]`},
		{give: `"pass"`},
		{give: `{`},
		{give: `{}`, wantPath: "status"},
		{give: `{"status":null}`, wantPath: "status"},
		{give: `{"status":""}`, wantPath: "status"},
		{give: `{"status":"okay"}`, wantPath: "status"},
		{give: `{"status":"healthy"}`, wantPath: "status"},
		{give: `{"status":"UNKNOWN"}`, wantPath: "status"},
		{give: `{"status":"OUT_OF_SERVICE"}`, wantPath: "status"},
		{give: `{"status":"pas\u017f"}`, wantPath: "status"}, // a long s folds to s in Unicode, not in the draft
		{give: `{"status":" up"}`, wantPath: "status"},
		{give: `{"status":1}`, wantPath: "status"},
		{give: `{"status":"pass"} {}`},
		{give: `{"status":"pass","version":2}`, wantPath: "version"},
		{give: `{"status":"pass","notes":"x"}`, wantPath: "notes"},
		{give: `{"status":"pass","checks":[]}`, wantPath: "checks"},
		{give: `{"status":"pass","checks":{"a":{}}}`},
		{give: `{"status":"pass","checks":{"a":[1]}}`},
		{give: `{"status":"pass","checks":{"a":[null]}}`, wantPath: `checks["a"][0]`},
		{give: `{"status":"pass","checks":{"a":[{"status":"sideways"}]}}`, wantPath: `checks["a"][0].status`},
		{give: `{"status":"pass","checks":{"a":[{"status":true}]}}`},
		{give: `{"status":"pass","checks":{"a":[{"time":"yesterday"}]}}`, wantPath: `checks["a"][0].time`},
		{give: `{"status":"pass","checks":{"a":[{"observedUnit":5}]}}`},
		{give: `{"status":"pass","checks":{"a":[{"affectedEndpoints":"x"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			d, err := health.ParseDocument([]byte(tt.give))
			require.Error(t, err)
			assert.Nil(t, d)
			assert.ErrorIs(t, err, health.ErrMalformed)
			var pe *health.ParseError
			require.ErrorAs(t, err, &pe)
			if tt.wantPath != "" {
				assert.Equal(t, tt.wantPath, pe.Path)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "health: malformed health document: "), err.Error())
		})
	}
}

// The draft accepts "ok" and "up" for pass and "error" and "down" for fail, and
// makes the status case-insensitive; the Document holds the canonical status.
func TestParseDocumentStatusAliases(t *testing.T) {
	tests := []struct {
		give string
		want health.Status
	}{
		{"pass", health.StatusPass}, {"PASS", health.StatusPass}, {"ok", health.StatusPass}, {"OK", health.StatusPass},
		{"up", health.StatusPass}, {"UP", health.StatusPass}, {"Up", health.StatusPass},
		{"warn", health.StatusWarn}, {"WARN", health.StatusWarn},
		{"fail", health.StatusFail}, {"Fail", health.StatusFail}, {"error", health.StatusFail}, {"ERROR", health.StatusFail},
		{"down", health.StatusFail}, {"DOWN", health.StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			d, err := health.ParseDocument([]byte(`{"status":"` + tt.give + `","checks":{"db:ping":[{"status":"` + tt.give + `"}]}}`))
			require.NoError(t, err)
			assert.Equal(t, tt.want, d.Status)
			c, ok := d.Find("db:ping", "")
			require.True(t, ok)
			assert.Equal(t, tt.want, c.Status)
		})
	}
}

// Documents as other libraries serve them: Spring Boot's actuator (/actuator/health
// with show-details, and a health group) and github.com/alexliesenfeld/health, up and
// down, and NestJS Terminus.
func TestParseDocumentOfOtherLibraries(t *testing.T) {
	tests := []struct {
		name string
		give string
		want health.Status
	}{
		{"spring boot up", `{
  "status": "UP",
  "components": {
    "db": {"status": "UP", "details": {"database": "PostgreSQL", "validationQuery": "isValid()"}},
    "diskSpace": {"status": "UP", "details": {"total": 499963174912, "free": 91300069376, "threshold": 10485760, "path": "/app/.", "exists": true}},
    "livenessState": {"status": "UP"},
    "ping": {"status": "UP"},
    "readinessState": {"status": "UP"}
  },
  "groups": ["liveness", "readiness"]
}`, health.StatusPass},
		{"spring boot down", `{
  "status": "DOWN",
  "components": {
    "db": {"status": "DOWN", "details": {"error": "org.springframework.jdbc.CannotGetJdbcConnectionException: Failed to obtain JDBC Connection"}},
    "ping": {"status": "UP"}
  }
}`, health.StatusFail},
		{"spring boot readiness group", `{"status":"UP","components":{"readinessState":{"status":"UP"}}}`, health.StatusPass},
		{"alexliesenfeld up", `{
  "status": "up",
  "details": {
    "database": {"status": "up", "timestamp": "2024-05-01T08:05:14.603364Z"},
    "redis": {"status": "up", "timestamp": "2024-05-01T08:05:14.603371Z"}
  }
}`, health.StatusPass},
		{"alexliesenfeld down", `{
  "status": "down",
  "details": {
    "database": {"status": "down", "timestamp": "2024-05-01T08:05:14.603364Z", "error": "failed to ping database"}
  }
}`, health.StatusFail},
		{"nestjs terminus ok", `{"status":"ok","info":{"database":{"status":"up"}},"error":{},"details":{"database":{"status":"up"}}}`, health.StatusPass},
		{"nestjs terminus error", `{"status":"error","info":{},"error":{"database":{"status":"down","message":"timeout"}},"details":{"database":{"status":"down","message":"timeout"}}}`, health.StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := health.ParseDocument([]byte(tt.give))
			require.NoError(t, err)
			assert.Equal(t, tt.want, d.Status)
			assert.Empty(t, d.Checks)
		})
	}
}

// Fetch reads a Spring Boot actuator's answer, 503 and all, as the agent does.
func TestFetchSpringBoot(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.spring-boot.actuator.v3+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"DOWN","components":{"db":{"status":"DOWN"}}}`)
	}))
	defer srv.Close()
	d, code, err := health.Fetch(context.Background(), srv.Client(), srv.URL+"/actuator/health")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, health.StatusFail, d.Status)
}

func TestParseDocumentTooLarge(t *testing.T) {
	big := `{"status":"pass","output":"` + strings.Repeat("x", health.MaxDocumentSize) + `"}`
	_, err := health.ParseDocument([]byte(big))
	assert.ErrorIs(t, err, health.ErrTooLarge)
	assert.ErrorIs(t, err, health.ErrMalformed)
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC)
	d := &health.Document{
		Status: health.StatusWarn, Version: "v1 \"quoted\"", ServiceID: "a\nb\t<c>&\u2028\x01",
		Notes: []string{"n1", "n2"}, Output: "bad \xff utf8",
		Checks: map[string][]health.CheckResult{
			"z:last": {{ComponentID: "x", Status: health.StatusPass, Time: now}},
			"a:first": {
				{ComponentID: "p50", ObservedValue: 1.5, ObservedUnit: "ms", Status: health.StatusPass},
				{ComponentID: "big", ObservedValue: 1e21},
				{ComponentID: "small", ObservedValue: 1e-7},
				{ComponentID: "f32", ObservedValue: float32(0.1)},
				{ComponentID: "int", ObservedValue: int64(-42)},
				{ComponentID: "uint", ObservedValue: uint8(7)},
				{ComponentID: "bool", ObservedValue: true},
				{ComponentID: "map", ObservedValue: map[string]int{"b": 2, "a": 1}},
				{ComponentID: "num", ObservedValue: json.Number("3.25")},
				{AffectedEndpoints: []string{"/a", "/b"}, Output: "o"},
				{},
			},
		},
	}
	got := d.AppendJSON(nil)
	want, err := json.Marshal(d)
	require.NoError(t, err)
	// encoding/json escapes <, > and &; AppendJSON does not: compare as values.
	var g, w any
	require.NoError(t, json.Unmarshal(got, &g), string(got))
	require.NoError(t, json.Unmarshal(want, &w))
	assert.Equal(t, w, g)
	assert.Contains(t, string(got), `"observedValue":1e+21`)
	assert.Contains(t, string(got), `"observedValue":1e-7`)

	// NaN cannot be JSON: null.
	nan := (&health.Document{Status: health.StatusPass, Checks: map[string][]health.CheckResult{"x": {{ObservedValue: math.NaN()}}}}).AppendJSON(nil)
	assert.JSONEq(t, `{"status":"pass","checks":{"x":[{"observedValue":null}]}}`, string(nan))

	// Round trip through the parser.
	back, err := health.ParseDocument(got)
	require.NoError(t, err)
	assert.Equal(t, d.ServiceID, back.ServiceID)
	assert.Equal(t, now, back.Checks["z:last"][0].Time)
}

func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", health.ContentType)
			_, _ = w.Write([]byte(`{"status":"pass","version":"9"}`))
		case "/fail":
			w.WriteHeader(503)
			_, _ = w.Write([]byte(`{"status":"fail"}`))
		case "/html":
			_, _ = w.Write([]byte(`<html></html>`))
		case "/huge":
			_, _ = w.Write([]byte(`{"status":"pass","output":"`))
			_, _ = w.Write([]byte(strings.Repeat("x", health.MaxDocumentSize)))
			_, _ = w.Write([]byte(`"}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	d, code, err := health.Fetch(ctx, srv.Client(), srv.URL+"/ok")
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.Equal(t, "9", d.Version)

	d, code, err = health.Fetch(ctx, nil, srv.URL+"/fail")
	http.DefaultClient.CloseIdleConnections()
	require.NoError(t, err)
	assert.Equal(t, 503, code)
	assert.Equal(t, health.StatusFail, d.Status)

	_, code, err = health.Fetch(ctx, srv.Client(), srv.URL+"/html")
	assert.Equal(t, 200, code)
	assert.ErrorIs(t, err, health.ErrMalformed)

	_, _, err = health.Fetch(ctx, srv.Client(), srv.URL+"/huge")
	assert.ErrorIs(t, err, health.ErrTooLarge)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = health.Fetch(cctx, srv.Client(), srv.URL+"/ok")
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}

func FuzzParseDocument(f *testing.F) {
	f.Add([]byte(sampleDocument))
	f.Add([]byte(`{"status":"pass"}`))
	f.Add([]byte(`{"status":"fail","checks":{"a":[{"status":"warn","observedValue":[1,{"x":null}],"time":"2020-01-01T00:00:00Z"}]}}`))
	f.Add([]byte(`{"status":"pass","checks":{"a":null,"b":[]}}`))
	f.Add([]byte(`[`))
	f.Add([]byte(`{"status":"UP","components":{"db":{"status":"DOWN","details":{"error":"x"}}}}`))
	f.Add([]byte(`{"status":"down","details":{"database":{"status":"down","timestamp":"2024-05-01T08:05:14Z","error":"x"}}}`))
	f.Add([]byte(`{"status":"Ok","checks":{"a":[{"status":"ERROR"},{"status":"Up"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := health.ParseDocument(data)
		if err != nil {
			if d != nil || !errors.Is(err, health.ErrMalformed) {
				t.Fatalf("error %v with document %v", err, d)
			}
			return
		}
		if !d.Status.Valid() {
			t.Fatalf("status %q accepted", d.Status)
		}
		for _, rs := range d.Checks {
			for _, c := range rs {
				if c.Status != "" && !c.Status.Valid() {
					t.Fatalf("entry status %q accepted", c.Status)
				}
			}
		}
		// What parses re-encodes to something that parses to the same status.
		again, err := health.ParseDocument(d.AppendJSON(nil))
		if err != nil {
			t.Fatalf("re-encoded document does not parse: %v", err)
		}
		if again.Status != d.Status || len(again.Checks) != len(d.Checks) {
			t.Fatalf("round trip changed the document")
		}
	})
}
