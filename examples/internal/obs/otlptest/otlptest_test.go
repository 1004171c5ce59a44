package otlptest_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/examples/internal/obs/otlptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// export sends a parent and a child span through the SDK's own OTLP/HTTP exporter.
func export(t *testing.T, r *otlptest.Receiver, compression otlptracehttp.Compression) (parent, child trace.SpanContext) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(r.URL+"/v1/traces"),
		otlptracehttp.WithCompression(compression),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "otlptest"))))
	defer func() {
		if err := tp.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	tr := tp.Tracer("otlptest")
	pctx, p := tr.Start(ctx, "parent")
	_, c := tr.Start(pctx, "child", trace.WithAttributes(attribute.Int("n", 7), attribute.Bool("b", true), attribute.Float64("f", 0.5)))
	c.AddEvent("happened", trace.WithAttributes(attribute.String("why", "test")))
	c.SetStatus(codes.Error, "failed")
	c.End()
	p.End()
	return p.SpanContext(), c.SpanContext()
}

func TestReceivesSpans(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    otlptracehttp.Compression
	}{{"plain", otlptracehttp.NoCompression}, {"gzip", otlptracehttp.GzipCompression}} {
		t.Run(tc.name, func(t *testing.T) {
			r := otlptest.Start(t)
			parent, child := export(t, r, tc.c)
			got := r.Wait(t, 10*time.Second, func(s otlptest.Span) bool { return s.Name == "child" })
			if got.TraceID != child.TraceID().String() || got.SpanID != child.SpanID().String() || got.ParentSpanID != parent.SpanID().String() {
				t.Errorf("child ids %s/%s parent %s, want %s/%s parent %s", got.TraceID, got.SpanID, got.ParentSpanID,
					child.TraceID(), child.SpanID(), parent.SpanID())
			}
			if got.Attrs["n"] != "7" || got.Attrs["b"] != "true" || got.Attrs["f"] != "0.5" {
				t.Errorf("attributes %v", got.Attrs)
			}
			if got.Resource["service.name"] != "otlptest" {
				t.Errorf("resource %v", got.Resource)
			}
			if !got.Error {
				t.Error("status Error not received")
			}
			if len(got.Events) != 1 || got.Events[0].Name != "happened" || got.Events[0].Attrs["why"] != "test" {
				t.Errorf("events %+v", got.Events)
			}
			if got.Start.IsZero() || got.End.Before(got.Start) {
				t.Errorf("times %v..%v", got.Start, got.End)
			}
			p := r.Wait(t, time.Second, func(s otlptest.Span) bool { return s.Name == "parent" })
			if p.ParentSpanID != "" || p.Error {
				t.Errorf("parent %+v", p)
			}
			if n := len(r.Spans()); n != 2 {
				t.Errorf("%d spans, want 2", n)
			}
		})
	}
}

func TestRejectsWhatIsNotAnExport(t *testing.T) {
	r := otlptest.Start(t)
	for _, tc := range []struct {
		name, method, path, encoding string
		body                         []byte
		want                         int
	}{
		{"wrong path", http.MethodPost, "/v1/metrics", "", nil, http.StatusNotFound},
		{"wrong method", http.MethodGet, "/v1/traces", "", nil, http.StatusNotFound},
		{"garbage", http.MethodPost, "/v1/traces", "", []byte("\xff\xff\xff\xff not protobuf"), http.StatusBadRequest},
		{"not gzip", http.MethodPost, "/v1/traces", "gzip", []byte("plain"), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, r.URL+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if n := len(r.Spans()); n != 0 {
		t.Errorf("%d spans kept from bad requests", n)
	}
	http.DefaultClient.CloseIdleConnections()
}

// Wait fails its test when no span matches in time.
func TestWaitFailsWithoutAMatch(t *testing.T) {
	r := otlptest.Start(t)
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Wait(ft, 50*time.Millisecond, func(otlptest.Span) bool { return true })
	}()
	<-done
	if !strings.Contains(ft.msg, "no matching span") {
		t.Errorf("Wait did not fail: %q", ft.msg)
	}
}

type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = format
}
