// Package httpx holds the few pieces every small JSON-over-HTTP server of
// jobsim needs, written once: bearer-token authentication compared in
// constant time, JSON answers and JSON error bodies, and strict decoding of
// a bounded request body (one JSON value, no unknown fields, no trailing
// data; a body over the limit is answered 413 and not kept). The control
// API, the compute nodes' MoM server and the stand-in UI server use it.
package httpx

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Error is the body of every error answer: {"error": "..."}.
type Error struct {
	Error string `json:"error"`
}

// MaxErrorLen bounds the text of an error answer: a message that quotes
// what the client sent never sends a large body back.
const MaxErrorLen = 512

// WriteJSON answers code with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers code with an Error body whose text is the formatted
// message, cut to MaxErrorLen bytes.
func WriteError(w http.ResponseWriter, code int, format string, args ...any) {
	WriteJSON(w, code, Error{Error: Truncate(fmt.Sprintf(format, args...), MaxErrorLen)})
}

// Truncate cuts s to at most max bytes (on a rune boundary), saying how
// long it was when it cuts.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	note := fmt.Sprintf("... (%d bytes)", len(s))
	cut := max - len(note)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + note
}

// Quote is s quoted as %q does, cut to a short prefix (64 bytes) when
// longer, for error messages that name what a client sent.
func Quote(s string) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
}

// Bearer wraps next so that only requests carrying "Authorization: Bearer
// <token>" reach it; the token is compared in constant time. Others get 401
// with a WWW-Authenticate challenge naming realm. token must not be empty.
func Bearer(token, realm string, next http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || len(want) == 0 || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q", realm))
			WriteError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// StatusError is a request error with the HTTP status to answer it with.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// Decode reads the request body as exactly one JSON value into v. The body
// may hold at most limit bytes: a larger one is refused with status 413
// (and the connection is closed, as http.MaxBytesReader does), without
// being kept. Fields v does not have, a second value and any data after
// the value are refused with status 400. The error is a *StatusError
// whose text names what is wrong without quoting the body.
func Decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return decodeError(err, limit)
		}
		return &StatusError{Code: http.StatusBadRequest, Err: errors.New("want exactly one JSON value: data follows it")}
	}
	return nil
}

func decodeError(err error, limit int64) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &StatusError{Code: http.StatusRequestEntityTooLarge, Err: fmt.Errorf("body larger than %d bytes", limit)}
	case errors.Is(err, io.EOF):
		return &StatusError{Code: http.StatusBadRequest, Err: errors.New("empty body: want a JSON value")}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &StatusError{Code: http.StatusBadRequest, Err: errors.New("the JSON value is cut short")}
	}
	return &StatusError{Code: http.StatusBadRequest, Err: errors.New(Truncate(err.Error(), 200))}
}

// ReadJSON is Decode that answers the error itself: it returns false after
// writing a JSON error (what names the value sought, e.g. "fault rule").
func ReadJSON(w http.ResponseWriter, r *http.Request, limit int64, what string, v any) bool {
	err := Decode(w, r, limit, v)
	if err == nil {
		return true
	}
	code := http.StatusBadRequest
	var se *StatusError
	if errors.As(err, &se) {
		code = se.Code
	}
	WriteError(w, code, "%s: %v", what, err)
	return false
}
