package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
)

// ProgressEvent is one server-sent event of a spawn's progress stream. The
// last event of a stream has Progress 100 and Ready or Failed set.
type ProgressEvent struct {
	Progress    int    `json:"progress"`
	Message     string `json:"message"`
	HTMLMessage string `json:"html_message,omitempty"`
	Ready       bool   `json:"ready,omitempty"`
	Failed      bool   `json:"failed,omitempty"`
	// URL is the server's path once ready.
	URL string `json:"url,omitempty"`
}

// Progress streams the progress events of a user's default server (GET
// /users/{name}/server/progress, text/event-stream). The hub ends the
// stream after the ready or failed event; for a server already ready it
// sends the ready event at once; for a server neither starting nor just
// failed it answers 400 (an *APIError). Stop early by breaking the loop.
func (c *Client) Progress(ctx context.Context, user string) iter.Seq2[ProgressEvent, error] {
	return c.NamedProgress(ctx, user, "")
}

// NamedProgress is Progress for one of a user's servers (server "" is the
// default server; a named one is GET
// /users/{name}/servers/{server}/progress). A named server the hub has no
// live spawner for (never started, stopped, or removed) gives an
// *APIError 404.
func (c *Client) NamedProgress(ctx context.Context, user, server string) iter.Seq2[ProgressEvent, error] {
	return func(yield func(ProgressEvent, error) bool) {
		path := serverPath(user, server, "/progress")
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/hub/api"+path, nil)
		if err != nil {
			yield(ProgressEvent{}, fmt.Errorf("hub API GET %s: %w", path, err))
			return
		}
		req.Header.Set("Accept", "text/event-stream")
		if c.token != "" {
			req.Header.Set("Authorization", "token "+c.token)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			yield(ProgressEvent{}, fmt.Errorf("hub API GET %s: %w", path, err))
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			ae := &APIError{Method: http.MethodGet, Path: path, Status: resp.StatusCode}
			var m struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(raw, &m) == nil {
				ae.Message = m.Message
			}
			yield(ProgressEvent{}, ae)
			return
		}
		for data, err := range sseData(resp.Body) {
			if err != nil {
				yield(ProgressEvent{}, fmt.Errorf("hub API GET %s: %w", path, err))
				return
			}
			var ev ProgressEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				yield(ProgressEvent{}, fmt.Errorf("hub API GET %s: event %.200q is not JSON: %w", path, data, err))
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// ProgressEvents collects the progress stream of a user's default server
// until it ends.
func (c *Client) ProgressEvents(ctx context.Context, user string) ([]ProgressEvent, error) {
	return c.NamedProgressEvents(ctx, user, "")
}

// NamedProgressEvents collects the progress stream of one of a user's
// servers (server "" is the default server) until it ends.
func (c *Client) NamedProgressEvents(ctx context.Context, user, server string) ([]ProgressEvent, error) {
	var evs []ProgressEvent
	for ev, err := range c.NamedProgress(ctx, user, server) {
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// finalProgress returns the last event of the progress stream.
func (c *Client) finalProgress(ctx context.Context, user, server string) (ProgressEvent, error) {
	evs, err := c.NamedProgressEvents(ctx, user, server)
	if err != nil {
		return ProgressEvent{}, err
	}
	if len(evs) == 0 {
		return ProgressEvent{}, fmt.Errorf("hub: empty progress stream for the %s", ServerLabel(user, server))
	}
	return evs[len(evs)-1], nil
}

// sseData yields the data of each event in a text/event-stream: "data:"
// lines joined by newlines, an event ending at a blank line. Comments,
// other fields and blank keepalive lines are skipped.
func sseData(r io.Reader) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		var data []string
		have := false
		for sc.Scan() {
			line := strings.TrimSuffix(sc.Text(), "\r")
			if line == "" {
				if have {
					if !yield(strings.Join(data, "\n"), nil) {
						return
					}
				}
				data, have = data[:0], false
				continue
			}
			if strings.HasPrefix(line, ":") {
				continue
			}
			field, value, _ := strings.Cut(line, ":")
			if field != "data" {
				continue
			}
			data = append(data, strings.TrimPrefix(value, " "))
			have = true
		}
		if err := sc.Err(); err != nil {
			yield("", fmt.Errorf("read event stream: %w", err))
			return
		}
		if have {
			yield(strings.Join(data, "\n"), nil)
		}
	}
}
