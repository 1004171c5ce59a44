package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

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

// Spreading a round's probes. Started all at once, the probes of a large fleet are a
// thundering herd: at 1000 instances a second, 3000 requests leave together, the
// instances and the agent's machine queue them, and probes time out on a healthy
// fleet (they did: 954 of 1000 instances "broken" at once, on 2 cores). So the
// probes of a round start one after the other, each at the phase of its instance in
// the spread window: a fixed fraction of the window taken from a hash of the
// instance's id, the same every round (every instance is probed once an interval,
// never twice in a row at the start and then the end of a window), different from
// instance to instance (no two in step). The window grows with the number of
// instances, spreadPerTarget each, up to half the probe interval, so that the last
// results are in well before the next round; a handful of instances is probed at
// once, as before. A round so takes at most half an interval plus one probe, and a
// fault is judged at most an interval (to its instance's phase) plus half an
// interval (to the round's end) after it began.
const spreadPerTarget = 2 * time.Millisecond

// spreadWindow is the window the probes of n targets are spread over, for a probe
// interval iv.
func spreadWindow(n int, iv time.Duration) time.Duration {
	return min(time.Duration(n)*spreadPerTarget, iv/2)
}

// phase is id's fixed place in a spread window, in [0, 1): FNV-1a of the id, mixed
// by MurmurHash3's finalizer (FNV alone leaves ids that differ in their last
// characters, web-1 and web-2, close together in the high bits).
func phase(id string) float64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return float64(h>>11) / (1 << 53)
}

// probeAll probes targets, each starting at its phase in the round's spread window
// (see spreadWindow), and returns their results in order once every probe returned.
// It holds one timer, and a goroutine per probe in flight only (and one per
// instance whose last request outlived its probe: see lateLimit). When ctx ends, the
// probes not started are not made (their results say why) and it returns as soon as
// those in flight return, which they do when ctx ends.
func probeAll(ctx context.Context, p prober, c *config.Service, targets []target) []probeResult {
	results := make([]probeResult, len(targets))
	window := spreadWindow(len(targets), c.Health.Interval.D())
	type start struct {
		at time.Duration
		i  int
	}
	order := make([]start, len(targets))
	for i, t := range targets {
		order[i] = start{time.Duration(phase(t.id) * float64(window)), i}
	}
	slices.SortFunc(order, func(x, y start) int { return cmp.Compare(x.at, y.at) })
	var wg sync.WaitGroup
	defer wg.Wait()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	begin := time.Now()
	for k, o := range order {
		if d := o.at - time.Since(begin); d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-ctx.Done():
				for _, o := range order[k:] {
					results[o.i] = probeResult{id: targets[o.i].id, err: "not probed: " + ctx.Err().Error()}
				}
				return results
			case <-timer.C:
			}
		}
		wg.Go(func() { results[o.i] = p.probe(ctx, c, targets[o.i]) })
	}
	return results
}

// probe checks liveness, readiness and the health document of one instance.
func (a *Agent) probe(ctx context.Context, c *config.Service, id, addr string) probeResult {
	return httpProber{a.client}.probe(ctx, c, target{id, addr})
}

// Late answers. An HTTP/1.1 request that is cancelled closes its connection (the
// answer may still come on it), so a probe that timed out used to cost the next probe
// a new connection: on a loaded machine, where probes time out, the agent churned
// connections exactly when it was loaded (53k new connections in a 5-minute run at
// 1000 instances). So a probe's request does not end with the probe: when the probe
// times out, the request goes on in the background for up to lateLimit, its answer is
// read and its connection goes back to the pool for the next probe. At most one
// request per instance is in flight: the next probe of an instance that has not
// answered yet waits for that answer (within its own timeout) rather than open a
// second connection. A hung instance so costs one goroutine and one connection per
// lateLimit, not one of each per probe. The requests end when the agent's run does.
const lateLimit = 30 * time.Second

// flights is the request in flight toward each instance, by client and address
// (the client's connection pool is by address too): its channel is closed when it
// returns. Only requests in flight are kept.
var flights = struct {
	sync.Mutex
	m map[flightKey]chan struct{}
}{m: map[flightKey]chan struct{}{}}

type flightKey struct {
	c    *http.Client
	addr string
}

// errBusy says the instance has not answered an earlier probe's request yet.
var errBusy = errors.New("the previous probe's request is still unanswered")

// call runs fn, a request through c to the instance at addr, in the background on a
// context that ends with run or after lateLimit, and returns its result, or
// context.DeadlineExceeded (errBusy when an earlier request to addr is still in
// flight) when wait ends first. fn must read what it needs of the answer and close
// its body.
func call[T any](run, wait context.Context, c *http.Client, addr string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	k := flightKey{c, addr}
	var done chan struct{}
	for done == nil {
		flights.Lock()
		prev := flights.m[k]
		if prev == nil {
			done = make(chan struct{})
			flights.m[k] = done
		}
		flights.Unlock()
		if prev != nil {
			select {
			case <-prev:
			case <-wait.Done():
				return zero, errBusy
			}
		}
	}
	type result struct {
		v   T
		err error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(run, lateLimit)
		v, err := fn(ctx)
		cancel()
		res <- result{v, err}
		flights.Lock()
		delete(flights.m, k)
		flights.Unlock()
		close(done)
		if run.Err() != nil {
			// The run ended: the agent may have closed its idle connections before
			// this one went back to the pool.
			c.CloseIdleConnections()
		}
	}()
	select {
	case r := <-res:
		return r.v, r.err
	case <-wait.Done():
		return zero, wait.Err()
	}
}

// docAnswer is the health document an instance answered, and the probes' verdicts
// its health.ProbesHeader carried (ok false without one).
type docAnswer struct {
	doc         *health.Document
	live, ready health.Status
	ok          bool
}

// fetchDocument gets and parses the health document at url (as health.Fetch does:
// bounded, any status code) and reads its health.ProbesHeader.
func fetchDocument(ctx context.Context, client *http.Client, url string) (docAnswer, error) {
	var a docAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return a, err
	}
	req.Header["Accept"] = acceptDocument
	resp, err := client.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, health.MaxDocumentSize+1))
	if err != nil {
		return a, err
	}
	if len(body) > health.MaxDocumentSize {
		return a, &health.ParseError{Err: fmt.Errorf("%w: more than %d bytes", health.ErrTooLarge, health.MaxDocumentSize)}
	}
	if a.doc, err = health.ParseDocument(body); err != nil {
		return a, err
	}
	if v := resp.Header[health.ProbesHeader]; len(v) == 1 {
		a.live, a.ready, a.ok = health.ParseProbes(v[0])
	}
	return a, nil
}

var acceptDocument = []string{health.ContentType + ", application/json;q=0.9"}

// probe probes one instance. The health document comes first: when it carries the
// probes' verdicts (health.ProbesHeader, which a selfheal health registry sends), it
// is the whole probe, one request rather than three; otherwise the liveness and
// readiness endpoints are asked too. A document that cannot be had or parsed counts
// against the instance like a failed liveness probe (a 503 with a valid document
// does not).
func (p httpProber) probe(ctx context.Context, c *config.Service, t target) probeResult {
	r := probeResult{id: t.id}
	wait, cancel := context.WithTimeout(ctx, c.Health.Timeout.D())
	defer cancel()
	base := "http://" + t.addr
	timedOut := func(what string, err error) string {
		s := what + "probe timed out after " + c.Health.Timeout.D().String()
		if errors.Is(err, errBusy) {
			s += " (" + err.Error() + ")"
		}
		return s
	}
	da, err := call(ctx, wait, p.client, t.addr, func(ctx context.Context) (docAnswer, error) {
		return fetchDocument(ctx, p.client, base+c.Health.Document)
	})
	if err != nil && wait.Err() != nil {
		r.err = "health document: " + timedOut("", err)
		return r
	}
	if err == nil && da.ok {
		if da.live == health.StatusFail {
			r.err = "liveness fails (" + health.ProbesHeader + ")"
			if da.doc.Output != "" {
				r.err += ": " + da.doc.Output
			}
			return r
		}
		r.live = true
		r.ready = da.ready != health.StatusFail
		if !r.ready {
			r.notReady = "readiness fails (" + health.ProbesHeader + ")"
		}
	} else {
		r.live, r.ready, r.err, r.notReady = p.probeEndpoints(ctx, wait, c, t, timedOut)
		if !r.live {
			return r
		}
	}
	if err != nil {
		r.live, r.ready = false, false
		r.err = "health document: " + err.Error()
		return r
	}
	r.doc = da.doc
	r.live, r.ready, r.err = judgeDocument(da.doc, r.ready)
	if r.live && !r.ready && r.err != "" {
		r.notReady = r.err
	}
	return r
}

// probeEndpoints asks the liveness and then the readiness endpoint, for an instance
// whose health document does not carry their verdicts.
func (p httpProber) probeEndpoints(ctx, wait context.Context, c *config.Service, t target, timedOut func(string, error) string) (live, ready bool, why, notReady string) {
	base := "http://" + t.addr
	get := func(path string) (int, error) {
		return call(ctx, wait, p.client, t.addr, func(ctx context.Context) (int, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			if err != nil {
				return 0, err
			}
			resp, err := p.client.Do(req)
			if err != nil {
				return 0, err
			}
			// Read the (short) body before closing it, so that the connection goes
			// back to the pool for the next probe instead of being closed; bounded,
			// so that an instance cannot make the agent read forever.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return resp.StatusCode, nil
		})
	}
	code, err := get(c.Health.Liveness)
	switch {
	case err != nil:
		why = err.Error()
		if wait.Err() != nil {
			why = timedOut("liveness ", err)
		}
		return false, false, why, ""
	case code != http.StatusOK:
		return false, false, "liveness answered " + strconv.Itoa(code), ""
	}
	code, err = get(c.Health.Readiness)
	ready = err == nil && code == http.StatusOK
	switch {
	case err != nil && wait.Err() != nil:
		notReady = timedOut("readiness ", err)
	case err != nil:
		notReady = "readiness probe: " + err.Error()
	case !ready:
		notReady = "readiness answered " + strconv.Itoa(code)
	}
	return true, ready, "", notReady
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
