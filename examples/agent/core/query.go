package core

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Limits on the status page's query strings.
const (
	// MaxPerPage is the most events or incidents one page of the history holds.
	MaxPerPage = 500
	// DefaultPerPage is a page's size when the query names none.
	DefaultPerPage = 50
	// maxPage bounds the page number (the history holds far fewer pages).
	maxPage = 100000
)

// Windows are the chart windows the status page offers, in minutes.
var Windows = []int{5, 15, 60}

// defaultWindow is the chart window without a window parameter.
const defaultWindow = 15 * time.Minute

// pageQuery is a status page's query string, validated.
type pageQuery struct {
	Window   time.Duration
	Page     int
	Per      int
	Service  string
	Instance string
	Kind     string
}

// errQuery is what every query error matches; the handlers answer it with 400.
var errQuery = errors.New("agent: bad query")

// parseQuery parses and validates a status page's raw query string. allowed names
// the parameters the endpoint takes (others are an error); kinds are the values kind
// may take. Every parameter may appear once. Missing ones take their defaults:
// window 15 minutes, page 1, per DefaultPerPage.
func parseQuery(raw string, allowed []string, kinds []string) (pageQuery, error) {
	q := pageQuery{Window: defaultWindow, Page: 1, Per: DefaultPerPage}
	if len(raw) > maxQuery {
		return q, fmt.Errorf("%w: longer than %d bytes", errQuery, maxQuery)
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("%w: %v", errQuery, err)
	}
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		v := vals[k]
		if !slices.Contains(allowed, k) {
			return q, fmt.Errorf("%w: unknown parameter %q (this page takes %v)", errQuery, k, allowed)
		}
		if len(v) != 1 {
			return q, fmt.Errorf("%w: %s: give it once", errQuery, k)
		}
		s := v[0]
		switch k {
		case "window":
			m, err := strconv.Atoi(s)
			if err != nil || !slices.Contains(Windows, m) {
				return q, fmt.Errorf("%w: window: want one of %v (minutes)", errQuery, Windows)
			}
			q.Window = time.Duration(m) * time.Minute
		case "page":
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxPage {
				return q, fmt.Errorf("%w: page: want a whole number from 1 to %d", errQuery, maxPage)
			}
			q.Page = n
		case "per":
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > MaxPerPage {
				return q, fmt.Errorf("%w: per: want a whole number from 1 to %d", errQuery, MaxPerPage)
			}
			q.Per = n
		case "service", "instance":
			if s == "" {
				continue // an empty filter field of the form: no filter
			}
			if !validName(s) {
				return q, fmt.Errorf("%w: %s: want 1 to %d letters, digits and . _ -", errQuery, k, maxName)
			}
			if k == "service" {
				q.Service = s
			} else {
				q.Instance = s
			}
		case "kind":
			if s == "" {
				continue
			}
			if !slices.Contains(kinds, s) {
				return q, fmt.Errorf("%w: kind: want one of %v", errQuery, kinds)
			}
			q.Kind = s
		}
	}
	return q, nil
}

// encode returns q as a query string of the parameters in keys (defaults left
// out).
func (q pageQuery) encode(keys ...string) string {
	v := url.Values{}
	for _, k := range keys {
		switch k {
		case "window":
			if q.Window != defaultWindow {
				v.Set(k, strconv.Itoa(int(q.Window/time.Minute)))
			}
		case "page":
			if q.Page != 1 {
				v.Set(k, strconv.Itoa(q.Page))
			}
		case "per":
			if q.Per != DefaultPerPage {
				v.Set(k, strconv.Itoa(q.Per))
			}
		case "service":
			if q.Service != "" {
				v.Set(k, q.Service)
			}
		case "instance":
			if q.Instance != "" {
				v.Set(k, q.Instance)
			}
		case "kind":
			if q.Kind != "" {
				v.Set(k, q.Kind)
			}
		}
	}
	return v.Encode()
}

// validName reports whether s is a service or instance name: 1 to 63 letters,
// digits, '.', '_' and '-'.
func validName(s string) bool {
	if s == "" || len(s) > maxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
