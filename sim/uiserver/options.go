package uiserver

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/huboauth"
)

// Environment variables read by FromEnv. The JUPYTERHUB_* ones are what a
// JupyterHub spawner gives the process it starts; the JOBSIM_UISERVER_*
// ones are jobsim's own, set for example through Spawner.environment.
const (
	EnvServiceURL       = "JUPYTERHUB_SERVICE_URL"
	EnvServicePrefix    = "JUPYTERHUB_SERVICE_PREFIX"
	EnvAPIToken         = "JUPYTERHUB_API_TOKEN"
	EnvAPIURL           = "JUPYTERHUB_API_URL"
	EnvActivityURL      = "JUPYTERHUB_ACTIVITY_URL"
	EnvActivityInterval = "JUPYTERHUB_ACTIVITY_INTERVAL"
	EnvUser             = "JUPYTERHUB_USER"
	EnvServerName       = "JUPYTERHUB_SERVER_NAME"
	EnvAccessScopes     = "JUPYTERHUB_OAUTH_ACCESS_SCOPES"

	// EnvFault holds the faults: "ui" fault rules in JSON, or the short
	// key=value spelling (see ParseFaults).
	EnvFault = "JOBSIM_UISERVER_FAULT"
	// EnvRecord names a JSON-lines file that receives one Record per request.
	EnvRecord = "JOBSIM_UISERVER_RECORD"
)

// config is what the options build; New checks it.
type config struct {
	addr             string
	prefix           string
	apiURL           string
	apiToken         string
	activityURL      string
	activityInterval time.Duration
	user             string
	serverName       string
	accessScopes     []string
	version          string
	faults           Faults
	set              *fault.Set
	recordPath       string
	record           io.Writer
	logger           *slog.Logger
	oauth            *huboauth.Config
}

// Option configures a Server; an option that gets bad input returns an
// error that New reports.
type Option func(*config) error

// WithAddr sets the host:port to bind ("127.0.0.1:0" picks a free port;
// see Server.Addr).
func WithAddr(addr string) Option {
	return func(c *config) error {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("address %q: %w", addr, err)
		}
		c.addr = addr
		return nil
	}
}

// WithPrefix sets the URL prefix the server answers under, such as
// "/user/alice/". A missing leading or trailing slash is added.
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		c.prefix = normalizePrefix(prefix)
		return nil
	}
}

// WithServiceURL sets both the address and the prefix from a URL such as
// JUPYTERHUB_SERVICE_URL ("http://127.0.0.1:45123/user/alice/").
func WithServiceURL(raw string) Option {
	return func(c *config) error {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("service URL %q: %w", raw, err)
		}
		if u.Scheme != "http" {
			return fmt.Errorf("service URL %q: scheme %q, only http is served", raw, u.Scheme)
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = "80"
		}
		if host == "" {
			host = "127.0.0.1"
		}
		c.addr = net.JoinHostPort(host, port)
		c.prefix = normalizePrefix(u.Path)
		return nil
	}
}

// WithHubAPI sets the hub API URL ("http://127.0.0.1:8081/hub/api") and
// the server's own API token. The API URL is where tokens presented by
// callers are checked (GET <api>/user); the server's token authenticates
// its activity reports.
func WithHubAPI(apiURL, token string) Option {
	return func(c *config) error {
		if apiURL != "" {
			if _, err := url.Parse(apiURL); err != nil {
				return fmt.Errorf("hub API URL %q: %w", apiURL, err)
			}
		}
		c.apiURL = strings.TrimRight(apiURL, "/")
		c.apiToken = token
		return nil
	}
}

// WithActivity makes the server POST its last activity to url (the
// JUPYTERHUB_ACTIVITY_URL) once it listens and then every interval, as
// jupyterhub-singleuser does. An interval of 0 reports only once.
func WithActivity(activityURL string, interval time.Duration) Option {
	return func(c *config) error {
		if interval < 0 {
			return fmt.Errorf("activity interval %v: negative", interval)
		}
		c.activityURL = activityURL
		c.activityInterval = interval
		return nil
	}
}

// WithUser names the hub user (and server, "" for the default server)
// this server belongs to. It sets the default access scopes to what the
// hub grants the owner: access:servers!server=<user>/<name> and
// access:servers!user=<user>.
func WithUser(user, serverName string) Option {
	return func(c *config) error {
		c.user = user
		c.serverName = serverName
		return nil
	}
}

// WithAccessScopes sets the scopes of which a caller's token must hold at
// least one (JUPYTERHUB_OAUTH_ACCESS_SCOPES).
func WithAccessScopes(scopes ...string) Option {
	return func(c *config) error {
		c.accessScopes = append([]string(nil), scopes...)
		return nil
	}
}

// WithVersion sets the version reported at <prefix>api (default that of
// Debian bookworm's notebook server, 6.4.12).
func WithVersion(v string) Option {
	return func(c *config) error {
		c.version = v
		return nil
	}
}

// WithFaults sets the server's faults.
func WithFaults(f Faults) Option {
	return func(c *config) error {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("faults: %w", err)
		}
		c.faults = f
		return nil
	}
}

// WithFaultSet makes the server act on the rules of set (those of layer
// "ui"), which its callers may change while it runs; the rules of
// WithFaults and the environment are added to it.
func WithFaultSet(set *fault.Set) Option {
	return func(c *config) error {
		c.set = set
		return nil
	}
}

// WithRecordFile appends one JSON line per request (a Record) to the file
// at path, created if needed. Several servers may share one file.
func WithRecordFile(path string) Option {
	return func(c *config) error {
		c.recordPath = path
		return nil
	}
}

// WithRecorder writes one JSON line per request (a Record) to w.
func WithRecorder(w io.Writer) Option {
	return func(c *config) error {
		c.record = w
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}

// WithOAuth makes the server log browsers in through the hub's OAuth, as
// jupyterhub-singleuser does: a request to the prefix without a token and
// without a session is sent to the hub's authorize page (where the hub
// refuses, 403, a user without access to this server), and the callback
// at cfg.CallbackURL starts a session. FromEnv sets it from the hub's
// JUPYTERHUB_CLIENT_ID and JUPYTERHUB_OAUTH_CALLBACK_URL.
func WithOAuth(cfg huboauth.Config) Option {
	return func(c *config) error {
		c.oauth = &cfg
		return nil
	}
}

// FromEnv reads the JUPYTERHUB_* variables a spawner sets and jobsim's
// JOBSIM_UISERVER_FAULT and JOBSIM_UISERVER_RECORD through lookup
// (os.LookupEnv in a real process). Unset variables leave the settings
// alone; options given after FromEnv override it.
func FromEnv(lookup func(string) (string, bool)) Option {
	return func(c *config) error {
		get := func(k string) (string, bool) {
			v, ok := lookup(k)
			return v, ok && v != ""
		}
		if v, ok := get(EnvServiceURL); ok {
			if err := WithServiceURL(v)(c); err != nil {
				return fmt.Errorf("%s: %w", EnvServiceURL, err)
			}
		}
		if v, ok := get(EnvServicePrefix); ok {
			c.prefix = normalizePrefix(v)
		}
		if v, ok := get(EnvAPIURL); ok {
			c.apiURL = strings.TrimRight(v, "/")
		}
		if v, ok := get(EnvAPIToken); ok {
			c.apiToken = v
		}
		if v, ok := get(EnvActivityURL); ok {
			c.activityURL = v
		}
		if v, ok := get(EnvActivityInterval); ok {
			secs, err := strconv.Atoi(v)
			if err != nil || secs < 0 {
				return fmt.Errorf("%s=%q: want a number of seconds", EnvActivityInterval, v)
			}
			c.activityInterval = time.Duration(secs) * time.Second
		}
		if v, ok := get(EnvUser); ok {
			c.user = v
		}
		if v, ok := get(EnvServerName); ok {
			c.serverName = v
		}
		if v, ok := get(EnvAccessScopes); ok {
			var scopes []string
			if err := json.Unmarshal([]byte(v), &scopes); err != nil {
				return fmt.Errorf("%s=%q: want a JSON list of scopes: %w", EnvAccessScopes, v, err)
			}
			c.accessScopes = scopes
		}
		if v, ok := get(EnvFault); ok {
			f, err := ParseFaults(v)
			if err != nil {
				return fmt.Errorf("%s: %w", EnvFault, err)
			}
			c.faults = f
		}
		if v, ok := get(EnvRecord); ok {
			c.recordPath = v
		}
		oc, ok, err := huboauth.ConfigFromEnv(lookup)
		if err != nil {
			return err
		}
		if ok {
			c.oauth = &oc
		}
		return nil
	}
}

// normalizePrefix returns prefix with a leading and a trailing slash.
func normalizePrefix(prefix string) string {
	if !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return prefix
}
