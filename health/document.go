package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// ContentType is the media type of the health document.
const ContentType = "application/health+json"

// MaxDocumentSize is the largest health document [ParseDocument] and [Fetch] accept:
// 1 MiB.
const MaxDocumentSize = 1 << 20

// Document is the health document of the IETF draft "Health Check Response Format for
// HTTP APIs" (draft-inadarei-api-health-check), as /health serves it and
// [ParseDocument] reads it. Checks are keyed "component:measurement" (for example
// "http:responseTime" or "db:ping"); each key holds one entry per component instance
// or per observation (for example componentId "p50" and "p99").
//
// It encodes with encoding/json into the draft's field names.
type Document struct {
	Status      Status                   `json:"status"`
	Version     string                   `json:"version,omitempty"`
	ReleaseID   string                   `json:"releaseId,omitempty"`
	ServiceID   string                   `json:"serviceId,omitempty"`
	Description string                   `json:"description,omitempty"`
	Notes       []string                 `json:"notes,omitempty"`
	Output      string                   `json:"output,omitempty"`
	Checks      map[string][]CheckResult `json:"checks,omitempty"`
}

// CheckResult is one entry under a key of [Document.Checks].
type CheckResult struct {
	ComponentID   string `json:"componentId,omitempty"`
	ComponentType string `json:"componentType,omitempty"`
	// ObservedValue is any JSON value. [ParseDocument] decodes numbers as float64,
	// objects as map[string]any and arrays as []any.
	ObservedValue     any       `json:"observedValue,omitempty"`
	ObservedUnit      string    `json:"observedUnit,omitempty"`
	Status            Status    `json:"status,omitempty"`
	AffectedEndpoints []string  `json:"affectedEndpoints,omitempty"`
	Time              time.Time `json:"time,omitzero"`
	Output            string    `json:"output,omitempty"`
}

// Float returns ObservedValue as a float64 when it is a number (of any Go numeric
// type, or a json.Number).
func (c CheckResult) Float() (float64, bool) {
	switch v := c.ObservedValue.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case uint:
		return float64(v), true
	case uint32:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}

// Find returns the entry of key whose ComponentID is componentID; with componentID
// "", the first entry of key.
func (d *Document) Find(key, componentID string) (CheckResult, bool) {
	if d == nil {
		return CheckResult{}, false
	}
	for _, c := range d.Checks[key] {
		if componentID == "" || c.ComponentID == componentID {
			return c, true
		}
	}
	return CheckResult{}, false
}

// wireDocument mirrors Document with the types ParseDocument checks by hand.
type wireDocument struct {
	Status      *string                       `json:"status"`
	Version     string                        `json:"version"`
	ReleaseID   string                        `json:"releaseId"`
	ServiceID   string                        `json:"serviceId"`
	Description string                        `json:"description"`
	Notes       []string                      `json:"notes"`
	Output      string                        `json:"output"`
	Checks      map[string][]*wireCheckResult `json:"checks"`
}

type wireCheckResult struct {
	ComponentID       string          `json:"componentId"`
	ComponentType     string          `json:"componentType"`
	ObservedValue     json.RawMessage `json:"observedValue"`
	ObservedUnit      string          `json:"observedUnit"`
	Status            string          `json:"status"`
	AffectedEndpoints []string        `json:"affectedEndpoints"`
	Time              string          `json:"time"`
	Output            string          `json:"output"`
}

// ParseDocument parses a health document. It is tolerant of fields it does not know
// (they are ignored) and strict about the types of those it does: status must be
// "pass", "warn" or "fail" or one of the aliases the draft accepts, "ok" and "up"
// for pass (Node's Terminus, Spring Boot), "error" and "down" for fail, in any case
// (the draft makes the status case-insensitive: Spring Boot writes "UP"); the
// Document holds the canonical [StatusPass], [StatusWarn] or [StatusFail]. Status is
// required at the top level and optional in the entries of checks. Checks must be an
// object of arrays of objects; string fields must be strings; time must be RFC 3339;
// observedValue may be any JSON value. Input larger than [MaxDocumentSize] is refused.
//
// So the documents of Spring Boot's actuator ({"status":"UP","components":{...}})
// and of github.com/alexliesenfeld/health ({"status":"up","details":{...}}) parse:
// their status is read, and their own fields (components, details) are ignored.
//
// Every error is a *[ParseError] that matches [ErrMalformed] and names where the
// document is wrong. ParseDocument never panics.
func ParseDocument(data []byte) (*Document, error) {
	if len(data) > MaxDocumentSize {
		return nil, &ParseError{Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxDocumentSize)}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &ParseError{Err: errors.New("empty input")}
	}
	if trimmed[0] != '{' {
		return nil, &ParseError{Err: errors.New("not a JSON object")}
	}
	var w wireDocument
	if err := json.Unmarshal(data, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, &ParseError{Path: te.Field, Err: fmt.Errorf("%s is not a %s", te.Value, jsonKind(te.Type.Kind().String()))}
		}
		return nil, &ParseError{Err: err}
	}
	if w.Status == nil {
		return nil, &ParseError{Path: "status", Err: errors.New("missing")}
	}
	st, ok := parseStatus(*w.Status)
	if !ok {
		return nil, &ParseError{Path: "status", Err: fmt.Errorf("%q is not pass, warn or fail", *w.Status)}
	}
	d := &Document{
		Status:      st,
		Version:     w.Version,
		ReleaseID:   w.ReleaseID,
		ServiceID:   w.ServiceID,
		Description: w.Description,
		Notes:       w.Notes,
		Output:      w.Output,
	}
	if w.Checks != nil {
		d.Checks = make(map[string][]CheckResult, len(w.Checks))
	}
	for key, entries := range w.Checks {
		if entries == nil {
			d.Checks[key] = nil
			continue
		}
		out := make([]CheckResult, len(entries))
		for i, e := range entries {
			path := func(field string) string {
				return "checks[" + strconv.Quote(key) + "][" + strconv.Itoa(i) + "]" + field
			}
			if e == nil {
				return nil, &ParseError{Path: path(""), Err: errors.New("null is not an object")}
			}
			c := CheckResult{
				ComponentID:       e.ComponentID,
				ComponentType:     e.ComponentType,
				ObservedUnit:      e.ObservedUnit,
				AffectedEndpoints: e.AffectedEndpoints,
				Output:            e.Output,
			}
			if e.Status != "" {
				st, ok := parseStatus(e.Status)
				if !ok {
					return nil, &ParseError{Path: path(".status"), Err: fmt.Errorf("%q is not pass, warn or fail", e.Status)}
				}
				c.Status = st
			}
			if len(e.ObservedValue) > 0 {
				if err := json.Unmarshal(e.ObservedValue, &c.ObservedValue); err != nil {
					return nil, &ParseError{Path: path(".observedValue"), Err: err}
				}
			}
			if e.Time != "" {
				t, err := time.Parse(time.RFC3339Nano, e.Time)
				if err != nil {
					return nil, &ParseError{Path: path(".time"), Err: fmt.Errorf("%q is not an RFC 3339 time", e.Time)}
				}
				c.Time = t
			}
			out[i] = c
		}
		d.Checks[key] = out
	}
	return d, nil
}

// parseStatus returns the Status s names: pass, warn or fail, or one of the draft's
// aliases (ok and up for pass, error and down for fail), in any ASCII case.
func parseStatus(s string) (Status, bool) {
	if len(s) > len("error") {
		return "", false
	}
	var buf [len("error")]byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(s)]) {
	case "pass", "ok", "up":
		return StatusPass, true
	case "warn":
		return StatusWarn, true
	case "fail", "error", "down":
		return StatusFail, true
	}
	return "", false
}

// jsonKind names a Go reflect kind the way a JSON author thinks of it.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	}
	return k
}

// Fetch GETs the health document at url with client (nil means
// [http.DefaultClient]) and parses it. It returns the document and the HTTP status
// code: a service that fails answers 503 with a valid document, which Fetch returns
// with a nil error. It reads at most [MaxDocumentSize] bytes of the body.
//
// Errors: the request's error (matching ctx.Err() when the context ends), or a
// *[ParseError] (with the status code) when the body is not a health document.
func Fetch(ctx context.Context, client *http.Client, url string) (*Document, int, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", ContentType+", application/json;q=0.9")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if len(body) > MaxDocumentSize {
		return nil, resp.StatusCode, &ParseError{Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxDocumentSize)}
	}
	d, err := ParseDocument(body)
	if err != nil {
		return nil, resp.StatusCode, err
	}
	return d, resp.StatusCode, nil
}
