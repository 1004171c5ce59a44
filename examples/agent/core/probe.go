package core

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/selfheal-go/selfheal/health"

	"github.com/selfheal-go/selfheal/examples/agent/config"
)

// The probe stage: the loop's only I/O toward the instances. A round probes every
// running instance of a service at once and hands the results to the judge stage.

// target is an instance to probe.
type target struct{ id, addr string }

// probeResult is what one probe of one instance saw.
type probeResult struct {
	id          string
	live, ready bool
	err         string // why not live or not ready
	notReady    string // why live but not ready
	doc         *health.Document
}

// prober probes one instance: liveness, readiness and its health document. Its
// methods may be called concurrently; a probe returns by the service's probe
// timeout or when ctx ends.
type prober interface {
	probe(ctx context.Context, c *config.Service, t target) probeResult
}

// httpProber probes over HTTP with a shared client (connections kept alive between
// rounds).
type httpProber struct{ client *http.Client }

// probeAll probes targets concurrently and returns their results in order.
func probeAll(ctx context.Context, p prober, c *config.Service, targets []target) []probeResult {
	results := make([]probeResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { results[i] = p.probe(ctx, c, t) })
	}
	wg.Wait()
	return results
}

// probe checks liveness, readiness and the health document of one instance.
func (a *Agent) probe(ctx context.Context, c *config.Service, id, addr string) probeResult {
	return httpProber{a.client}.probe(ctx, c, target{id, addr})
}

func (p httpProber) probe(ctx context.Context, c *config.Service, t target) probeResult {
	r := probeResult{id: t.id}
	ctx, cancel := context.WithTimeout(ctx, c.Health.Timeout.D())
	defer cancel()
	base := "http://" + t.addr
	get := func(path string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, err
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return 0, err
		}
		// Read the (short) body before closing it, so that the connection goes back
		// to the pool for the next probe instead of being closed; bounded, so that an
		// instance cannot make the agent read forever.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	code, err := get(c.Health.Liveness)
	switch {
	case err != nil:
		r.err = err.Error()
		if ctx.Err() != nil {
			r.err = "liveness probe timed out after " + c.Health.Timeout.D().String()
		}
		return r
	case code != http.StatusOK:
		r.err = "liveness answered " + strconv.Itoa(code)
		return r
	}
	r.live = true
	code, err = get(c.Health.Readiness)
	r.ready = err == nil && code == http.StatusOK
	switch {
	case err != nil:
		r.notReady = "readiness probe: " + err.Error()
	case !r.ready:
		r.notReady = "readiness answered " + strconv.Itoa(code)
	}
	// A malformed or unreachable health document counts against the instance,
	// like a failed liveness probe (a 503 with a valid document does not).
	doc, _, err := health.Fetch(ctx, p.client, base+c.Health.Document)
	if err != nil {
		r.live, r.ready = false, false
		r.err = "health document: " + err.Error()
		return r
	}
	r.doc = doc
	r.live, r.ready, r.err = judgeDocument(doc, r.ready)
	if r.live && !r.ready && r.err != "" {
		r.notReady = r.err
	}
	return r
}

// judgeDocument is the verdict of a health document that parsed, for an instance
// whose liveness probe passed and whose readiness probe gave ready. A document
// that says "fail" counts against the instance like a failed probe, unless:
//   - the instance is draining (the health package adds the note "draining" and
//     fails readiness): it is shutting down on purpose, and is only not ready;
//   - its readiness probe failed too: the failure is the service saying "do not
//     route to me" (a dependency down, a release that never becomes ready), which
//     keeps it out of the front door but is no reason to restart it.
func judgeDocument(doc *health.Document, ready bool) (live, rdy bool, err string) {
	if doc == nil || doc.Status != health.StatusFail {
		return true, ready, ""
	}
	why := "health document says fail"
	if doc.Output != "" {
		why += ": " + doc.Output
	}
	if slices.Contains(doc.Notes, "draining") {
		return true, false, why
	}
	if !ready {
		return true, false, why
	}
	return false, false, why
}
