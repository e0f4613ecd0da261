package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakeslurm"
)

// Client calls the control API of a host or topology. Its methods mirror the
// API one to one.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient replaces the default http.Client.
func WithHTTPClient(h *http.Client) ClientOption { return func(c *Client) { c.http = h } }

// NewClient returns a client for the API at baseURL (e.g. http://127.0.0.1:7070).
func NewClient(baseURL, token string, opts ...ClientOption) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c
}

// StatusError is an API answer that was not a success.
type StatusError struct {
	Method, Path string
	Code         int
	Message      string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("control API %s %s: %d %s: %s", e.Method, e.Path, e.Code, http.StatusText(e.Code), e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any, okCodes ...int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("control API %s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("control API %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	ok := len(okCodes) == 0 && resp.StatusCode < 300
	for _, code := range okCodes {
		ok = ok || resp.StatusCode == code
	}
	if !ok {
		var e APIError
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control API %s %s: decode: %w", method, path, err)
	}
	return nil
}

// Health returns the readiness of the host. A host that is not ready still
// returns its Health (with OK false) and no error.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.do(ctx, http.MethodGet, "/v1/health", nil, &h, http.StatusOK, http.StatusServiceUnavailable)
	return h, err
}

// Faults lists the rules with their counters.
func (c *Client) Faults(ctx context.Context) ([]fault.Status, error) {
	var out []fault.Status
	return out, c.do(ctx, http.MethodGet, "/v1/faults", nil, &out)
}

// AddFault adds a rule and returns it as stored (with its id).
func (c *Client) AddFault(ctx context.Context, r fault.Rule) (fault.Rule, error) {
	var out fault.Rule
	return out, c.do(ctx, http.MethodPost, "/v1/faults", r, &out)
}

// RemoveFault clears one rule by id.
func (c *Client) RemoveFault(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/faults/"+url.PathEscape(id), nil, nil)
}

// ClearFaults removes the rules of the given layers (all when none) and
// returns how many it removed.
func (c *Client) ClearFaults(ctx context.Context, layers ...fault.Layer) (int, error) {
	q := url.Values{}
	for _, l := range layers {
		q.Add("layer", string(l))
	}
	path := "/v1/faults"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out Cleared
	return out.Removed, c.do(ctx, http.MethodDelete, path, nil, &out)
}

// Events returns the history after sequence number since.
func (c *Client) Events(ctx context.Context, since int64) ([]events.Event, error) {
	var out []events.Event
	return out, c.do(ctx, http.MethodGet, "/v1/events?since="+strconv.FormatInt(since, 10), nil, &out)
}

// RecordEvent appends an event (drivers record what they observe of the
// system under test this way).
func (c *Client) RecordEvent(ctx context.Context, e events.Event) error {
	return c.do(ctx, http.MethodPost, "/v1/events", e, nil)
}

// StreamEvents calls fn for every event after since, then for live events,
// until ctx ends (returning nil) or fn returns an error.
func (c *Client) StreamEvents(ctx context.Context, since int64, fn func(events.Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/events/stream?since="+strconv.FormatInt(since, 10), nil)
	if err != nil {
		return fmt.Errorf("control API stream events: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("control API stream events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &StatusError{Method: "GET", Path: "/v1/events/stream", Code: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e events.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("control API stream events: decode: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("control API stream events: %w", err)
	}
	return nil
}

// PBSJobs lists the PBS server's jobs, finished ones too with history. On
// a host that runs Slurm it returns a *WrongBatchError.
func (c *Client) PBSJobs(ctx context.Context, history bool) ([]fakepbs.Job, error) {
	var out []fakepbs.Job
	return out, c.batchJobs(ctx, history, "PBS", &out)
}

// SlurmJobs lists the jobs of a host's Slurm controller (GET /v1/pbs/jobs
// serves whatever batch system the host runs), accounting records of
// finished ones too with history. On a PBS host it returns a
// *WrongBatchError.
func (c *Client) SlurmJobs(ctx context.Context, history bool) ([]fakeslurm.Job, error) {
	var out []fakeslurm.Job
	return out, c.batchJobs(ctx, history, "Slurm", &out)
}

// WrongBatchError says that a host's jobs are another batch system's than
// the caller asked for.
type WrongBatchError struct {
	Want, Runs string // "PBS" or "Slurm"
}

func (e *WrongBatchError) Error() string {
	return fmt.Sprintf("this host runs %s, not %s", e.Runs, e.Want)
}

// batchJobs reads GET /v1/pbs/jobs into out, after checking whose jobs they
// are: a PBS job's ID is a string ("12.server"), a Slurm job's a number.
func (c *Client) batchJobs(ctx context.Context, history bool, want string, out any) error {
	var raw []json.RawMessage
	path := "/v1/pbs/jobs?history=" + strconv.FormatBool(history)
	if err := c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return err
	}
	if len(raw) > 0 {
		var probe struct{ ID json.RawMessage }
		if err := json.Unmarshal(raw[0], &probe); err == nil && len(probe.ID) > 0 {
			runs := "Slurm"
			if probe.ID[0] == '"' {
				runs = "PBS"
			}
			if runs != want {
				return &WrongBatchError{Want: want, Runs: runs}
			}
		}
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("control API GET %s: %w", path, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("control API GET %s: decode: %w", path, err)
	}
	return nil
}

// RestartPBS stops the host's PBS server and starts it again (see
// fakepbs.RestartOptions); it returns once the server is down.
func (c *Client) RestartPBS(ctx context.Context, req PBSRestart) error {
	return c.do(ctx, http.MethodPost, "/v1/pbs/restart", req, nil, http.StatusNoContent)
}

// Clock reads the host clock.
func (c *Client) Clock(ctx context.Context) (ClockState, error) {
	var out ClockState
	return out, c.do(ctx, http.MethodGet, "/v1/clock", nil, &out)
}

// AdvanceClock moves a virtual clock forward.
func (c *Client) AdvanceClock(ctx context.Context, by fault.Duration) (ClockState, error) {
	var out ClockState
	return out, c.do(ctx, http.MethodPost, "/v1/clock/advance", Advance{By: by}, &out)
}
