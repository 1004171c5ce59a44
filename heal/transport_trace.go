package heal

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// spanTransportAttempt is the span of each attempt of a Transport's request, a child
// of the span in the attempt's context when that span is recording.
const spanTransportAttempt = "selfheal.heal.transport.attempt"

// startAttempt starts the span of attempt n of req (1 for the first), a client span
// with the HTTP semantic conventions' attributes of the request, and returns the
// context that carries it.
func (t *Transport) startAttempt(ctx context.Context, req *http.Request, n int) (context.Context, trace.Span) {
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, t.nameAttr, telemetry.KeyAttempt.Int(n), telemetry.KeyHTTPMethod.String(httpMethod(req.Method)))
	if n > 1 {
		attrs = append(attrs, telemetry.KeyHTTPResendCount.Int(n-1))
	}
	if u := req.URL; u != nil {
		attrs = append(attrs, telemetry.KeyURLFull.String(redactURL(u)))
		if host := u.Hostname(); host != "" {
			attrs = append(attrs, telemetry.KeyServerAddress.String(host))
		}
		if port := urlPort(u); port > 0 {
			attrs = append(attrs, telemetry.KeyServerPort.Int(port))
		}
	}
	return t.tracer.Start(ctx, spanTransportAttempt, clientKind, trace.WithAttributes(attrs...))
}

// clientKind is the span kind option of the attempts, made once (an option is an
// interface value: made on each call, it would cost an allocation).
var clientKind = trace.WithSpanKind(trace.SpanKindClient)

// endAttempt ends an attempt's span with its response's status (an Error status and
// error.type the status code from 400 up, as the conventions say of client spans) or
// its error's type.
func endAttempt(span trace.Span, resp *http.Response, err error) {
	if resp != nil && err == nil {
		span.SetAttributes(telemetry.KeyHTTPStatus.Int(resp.StatusCode))
		if resp.StatusCode >= 400 {
			code := strconv.Itoa(resp.StatusCode)
			span.SetAttributes(telemetry.KeyErrorType.String(code))
			span.SetStatus(codes.Error, code)
		}
		span.End()
		return
	}
	telemetry.EndSpan(span, err)
}

// withTraceContext returns r (a copy of the caller's request, or the request
// itself when it is the caller's: then it is copied) with the attempt's span
// context in its headers, by the global propagator, so that the server's span is
// a child of the attempt's. The caller's header map is never written.
func withTraceContext(ctx context.Context, r, orig *http.Request) *http.Request {
	if r == orig || r.Context() != ctx {
		r = r.WithContext(ctx)
	}
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	r.Header = h
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(h))
	return r
}

// httpMethod is the http.request.method of a request's method: one of the methods
// the conventions know, or "_OTHER" (an arbitrary method would make the attribute's
// cardinality unbounded).
func httpMethod(m string) string {
	switch m {
	case "":
		return http.MethodGet
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch, "QUERY":
		return m
	}
	return "_OTHER"
}

// redactURL is url.full without what must not be on a span: the user info
// (credentials) and the query and fragment (which carry tokens, signatures and
// personal data as often as not).
func redactURL(u *url.URL) string {
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath, Opaque: u.Opaque}
	return c.String()
}

// urlPort is the port a URL's request goes to: its own, or its scheme's; 0 when
// neither says.
func urlPort(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0
		}
		return n
	}
	switch u.Scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}
