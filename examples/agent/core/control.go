package core

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// Limits on the control API's inputs.
const (
	// MaxReason is the longest node-state reason SetNodeState stores, in bytes.
	MaxReason = 256
	// maxQuery bounds a control request's query string, maxBody its body.
	maxQuery = 2 << 10
	maxBody  = 4 << 10
	maxName  = 63
)

// versionRE is what a version may look like: it ends up in commands and image
// references.
var versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// Handler serves the status endpoint and the control API:
//
//	GET  /                    the status page: per service charts, incidents, nodes and
//	                          instances (?window=5|15|60 minutes of charts)
//	GET  /live                the status page's live part as Server-Sent Events
//	GET  /incidents[.json]    incidents, open first (?page, per, service, instance,
//	                          kind=open|healed|held|failed)
//	GET  /history[.json]      every event kept, newest first (?page, per, service,
//	                          instance, kind=observed|decided|held|acted|healed|failed)
//	GET  /series.json         the charts' samples (?window, service)
//	GET  /static/...          the page's style sheet and script (embedded)
//	GET  /status              the Status as JSON
//	POST /scale?service=web&replicas=12
//	POST /update?service=web&version=v2
//	POST /node?name=node-1&state=ready|down|degraded|drained&reason=...
//
// A command answers 202 Accepted with one line that says what it did. Every
// request is checked as [Agent.Protect] describes.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		// Served from memory while fresh (see snapshotMaxAge).
		ctx := context.WithoutCancel(r.Context())
		b, err := a.rendered(r.Context(), "status", func() ([]byte, error) { return a.statusJSON(ctx) })
		if err != nil {
			http.Error(w, "agent: status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	a.routeDashboard(mux)
	control := func(fn func(r *http.Request) (string, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil {
				code := http.StatusBadRequest
				if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
					code = http.StatusRequestEntityTooLarge
				}
				http.Error(w, "agent: "+err.Error(), code)
				return
			}
			msg, err := fn(r)
			a.snaps.invalidate() // the next read shows what the command did
			if err != nil {
				code := http.StatusBadRequest
				if errors.Is(err, ErrBusy) {
					code = http.StatusConflict
				}
				http.Error(w, err.Error(), code)
				return
			}
			if a.fleet.Agent.DryRun {
				msg += " (dry run: nothing changes)"
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintln(w, msg)
		}
	}
	mux.HandleFunc("POST /scale", control(func(r *http.Request) (string, error) {
		service, err := formName(r, "service")
		if err != nil {
			return "", err
		}
		n, err := strconv.Atoi(r.Form.Get("replicas"))
		if err != nil {
			return "", errors.New("agent: replicas: want a whole number")
		}
		from := a.desired(service)
		if err := a.Scale(service, n); err != nil {
			return "", err
		}
		return fmt.Sprintf("scale %s: %d -> %d replicas", service, from, n), nil
	}))
	mux.HandleFunc("POST /update", control(func(r *http.Request) (string, error) {
		service, err := formName(r, "service")
		if err != nil {
			return "", err
		}
		v := r.Form.Get("version")
		if !versionRE.MatchString(v) {
			return "", errors.New("agent: version: want 1 to 128 letters, digits and . _ + -, starting with a letter or digit")
		}
		from := a.version(service)
		if err := a.Update(service, v); err != nil {
			return "", err
		}
		if from == v {
			return fmt.Sprintf("update %s: already at %s", service, v), nil
		}
		return fmt.Sprintf("update %s: %s -> %s, rolling", service, from, v), nil
	}))
	mux.HandleFunc("POST /node", control(func(r *http.Request) (string, error) {
		node, err := formName(r, "name")
		if err != nil {
			return "", err
		}
		st, err := driver.ParseNodeState(r.Form.Get("state"))
		if err != nil {
			return "", err
		}
		reason := r.Form.Get("reason")
		if err := a.SetNodeState(r.Context(), node, st, reason); err != nil {
			return "", err
		}
		return fmt.Sprintf("node %s: %s", node, st), nil
	}))
	return a.Protect(mux)
}

// formName returns the form value key, a name of 1 to 63 bytes.
func formName(r *http.Request, key string) (string, error) {
	v := r.Form.Get(key)
	if v == "" || len(v) > maxName {
		return "", fmt.Errorf("agent: %s: want a name of 1 to %d bytes", key, maxName)
	}
	return v, nil
}

// desired returns the replica count wanted for service (0 if unknown).
func (a *Agent) desired(service string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.svcs[service]; s != nil {
		return s.desired
	}
	return 0
}

// version returns the version of service ("" if unknown).
func (a *Agent) version(service string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.svcs[service]; s != nil {
		return s.version
	}
	return ""
}

// Protect guards h, the agent's HTTP endpoints, against callers other than the
// operator. It answers, without calling h:
//
//   - 403 to a request whose Host is none of localhost, a loopback address,
//     agent.listen's host and agent.hosts, whatever its method: a web page that
//     re-binds its own name to 127.0.0.1 (DNS rebinding) reads nothing;
//   - to a request that may change something (any method but GET, HEAD and
//     OPTIONS): 403 when it comes from another origin (the browser's
//     Sec-Fetch-Site or Origin header, as [http.CrossOriginProtection] checks:
//     a form on another web site cannot post to the agent), 401 without the
//     bearer token when Config.ControlToken is set, 403 from an address other
//     than loopback when it is not, 414 with a query string longer than 2 KiB and
//     413 with a body longer than 4 KiB.
//
// Command-line clients (curl, the agent's own control commands) send neither
// Origin nor Sec-Fetch-Site and pass.
func (a *Agent) Protect(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "agent: cross-origin request refused", http.StatusForbidden)
	}))
	token := []byte(a.cfg.ControlToken)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, r)
			return
		}
		if len(token) > 0 {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), token) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="selfheal agent"`)
				http.Error(w, "agent: a command needs the token (Authorization: Bearer ...)", http.StatusUnauthorized)
				return
			}
		} else if !loopbackRemote(r) {
			http.Error(w, "agent: commands only from loopback", http.StatusForbidden)
			return
		}
		if len(r.URL.RawQuery) > maxQuery {
			http.Error(w, "agent: query too long", http.StatusRequestURITooLong)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, r)
	})
	guarded := cop.Handler(inner)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r.Host) {
			http.Error(w, "agent: unknown host", http.StatusForbidden)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether host (a request's Host, with or without port) names
// the agent: localhost, a loopback address, agent.listen's host or one of
// agent.hosts.
func (a *Agent) hostAllowed(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		return false
	}
	if config.Loopback(host) {
		return true
	}
	if lh, _, err := net.SplitHostPort(a.fleet.Agent.Listen); err == nil && lh != "" && strings.EqualFold(strings.Trim(lh, "[]"), host) {
		ip := net.ParseIP(host)
		return ip == nil || !ip.IsUnspecified()
	}
	for _, h := range a.fleet.Agent.Hosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

func loopbackRemote(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
