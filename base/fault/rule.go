// Package fault is the one fault-rule model shared by every layer of a fake
// job host: the filesystem, the ssh server, the PBS batch system and the
// network. A rule says where it applies (layer and selector), what it does
// (effect), how often (seeded probability) and when (count, after N matches,
// time window), after Chaos Mesh IOChaos, CharybdeFS and Toxiproxy. Rules are
// added and cleared at run time; every activation is recorded as an event.
package fault

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// Layer is the part of the host a rule applies to.
type Layer string

// The layers of a fake job host.
const (
	FS  Layer = "fs"
	SSH Layer = "ssh"
	PBS Layer = "pbs"
	Net Layer = "net"
	// UI is the stand-in per-user UI server a JupyterHub spawner starts
	// (sim/uiserver): binding its address, answering requests, running.
	UI Layer = "ui"
	// Slurm is the Slurm batch system (fakeslurm): its commands and its jobs.
	Slurm Layer = "slurm"
)

// Kind is what a rule does when it fires.
type Kind string

// Effect kinds. Which kinds a layer accepts is in LayerKinds.
const (
	// Errno fails the operation with Effect.Errno (fs).
	Errno Kind = "errno"
	// Latency delays the operation by Effect.Latency, then lets it proceed.
	Latency Kind = "latency"
	// Hang blocks the operation until the caller gives up or the rule is cleared.
	Hang Kind = "hang"
	// Perm overrides the permission bits reported by stat (fs).
	Perm Kind = "perm"
	// RefuseAuth refuses every authentication attempt (ssh).
	RefuseAuth Kind = "refuse-auth"
	// Drop closes the connection, after Effect.AfterBytes bytes if set (ssh, net).
	Drop Kind = "drop"
	// Exit ends the command at once with Effect.ExitCode and Effect.Stderr
	// (ssh: default 255 and no output; pbs: a rejected command).
	Exit Kind = "exit"
	// SlowBanner delays the ssh version banner by Effect.Latency (ssh).
	SlowBanner Kind = "slow-banner"
	// Garbage replaces the command's stdout with Effect.Stdout, or with
	// random bytes when that is empty (pbs).
	Garbage Kind = "garbage"
	// Unreachable makes a PBS command fail as if the server were down, with
	// the message style of Effect.Style: "refused" (older PBS, "Connection
	// refused") or "cannot-connect" (newer PBS, "cannot connect to server").
	Unreachable Kind = "unreachable"
	// Vanish removes the selected job from the server while queued or running (pbs).
	Vanish Kind = "vanish"
	// Stuck keeps the selected job in Effect.State: the scheduler leaves it there (pbs).
	Stuck Kind = "stuck"
	// TruncateIDs cuts job ids short in qstat's table output (pbs).
	TruncateIDs Kind = "truncate-ids"
	// HTTPStatus answers a request with the HTTP status Effect.Status (ui).
	HTTPStatus Kind = "status"
	// NodeFail fails the node under the selected running job (slurm): the
	// job ends NODE_FAIL or is requeued, and the node goes DOWN.
	NodeFail Kind = "node-fail"
)

// LayerKinds lists the effect kinds each layer accepts.
var LayerKinds = map[Layer][]Kind{
	FS:  {Errno, Latency, Hang, Perm},
	SSH: {RefuseAuth, Latency, Hang, Drop, Exit, SlowBanner},
	PBS: {Exit, Latency, Hang, Garbage, Unreachable, Vanish, Stuck, TruncateIDs},
	Net: {Latency, Drop, Hang},
	UI:  {Latency, Hang, HTTPStatus, Exit},
	// Slurm's unreachable styles: "refused" (slurmctld down: connect
	// failure) and "cannot-connect" (slurmctld hung: socket timed out).
	Slurm: {Exit, Latency, Hang, Garbage, Unreachable, Vanish, NodeFail},
}

// LayerOps lists the operation names a rule of each layer may select. An
// empty Ops selects every operation of the layer.
var LayerOps = map[Layer][]string{
	FS: {"open", "create", "read", "write", "readdir", "opendir", "stat", "lstat", "mkdir",
		"remove", "rename", "chmod", "chown", "chtimes", "truncate", "sync", "readlink", "symlink"},
	SSH:   {"connect", "auth", "exec", "shell", "sftp", "forward"},
	PBS:   {"qsub", "qstat", "qdel", "qsig", "qhold", "qrls", "pbsnodes", "run"},
	Net:   {"connect"},
	UI:    {"listen", "request", "run"},
	Slurm: {"sbatch", "squeue", "scancel", "sacct", "sinfo", "scontrol", "srun", "run"},
}

// Rule is one fault. The zero values of the selector fields select
// everything; Probability nil means always, and 0 means never (a rule can be
// kept in place but disarmed, as Toxiproxy users ask for).
type Rule struct {
	// ID names the rule; the Set assigns one when empty.
	ID    string `json:"id,omitempty" yaml:"id,omitempty"`
	Layer Layer  `json:"layer" yaml:"layer"`

	// Selector.
	Ops  []string `json:"ops,omitempty" yaml:"ops,omitempty"`
	Path string   `json:"path,omitempty" yaml:"path,omitempty"` // glob on absolute paths; ** crosses directories
	// Command is a regular expression matched against the command line
	// (ssh exec command; PBS command and arguments joined by spaces; for
	// net the service; for ui the request path).
	Command string `json:"command,omitempty" yaml:"command,omitempty"`
	User    string `json:"user,omitempty" yaml:"user,omitempty"`
	Job     string `json:"job,omitempty" yaml:"job,omitempty"` // PBS job id glob (123.server or 123*)

	Effect Effect `json:"effect" yaml:"effect"`

	// When.
	Probability *float64 `json:"probability,omitempty" yaml:"probability,omitempty"`
	Seed        int64    `json:"seed,omitempty" yaml:"seed,omitempty"`
	Count       int      `json:"count,omitempty" yaml:"count,omitempty"` // fire at most this many times; 0: no limit
	After       int      `json:"after,omitempty" yaml:"after,omitempty"` // let this many matches through first
	Start       Duration `json:"start,omitempty" yaml:"start,omitempty"` // armed this long after being added
	For         Duration `json:"for,omitempty" yaml:"for,omitempty"`     // disarmed this long after arming; 0: until cleared

	cmd  *regexp.Regexp
	gone chan struct{} // closed when the rule is removed from its Set
}

// Effect is what a firing rule does; Kind picks the fields that matter.
type Effect struct {
	Kind       Kind     `json:"kind" yaml:"kind"`
	Errno      string   `json:"errno,omitempty" yaml:"errno,omitempty"`
	Latency    Duration `json:"latency,omitempty" yaml:"latency,omitempty"`
	Mode       *uint32  `json:"mode,omitempty" yaml:"mode,omitempty"`
	AfterBytes int64    `json:"after_bytes,omitempty" yaml:"after_bytes,omitempty"`
	ExitCode   *int     `json:"exit_code,omitempty" yaml:"exit_code,omitempty"`
	Stdout     string   `json:"stdout,omitempty" yaml:"stdout,omitempty"`
	Stderr     string   `json:"stderr,omitempty" yaml:"stderr,omitempty"`
	Style      string   `json:"style,omitempty" yaml:"style,omitempty"`
	State      string   `json:"state,omitempty" yaml:"state,omitempty"`
	Status     int      `json:"status,omitempty" yaml:"status,omitempty"`
}

// StderrLine is Stderr as a command prints it: ending in a newline, as
// every message of PBS, Slurm and ssh does, also when the rule was written
// on a command line without one (`jobsim fault add --stderr "qsub: ..."`).
// Empty stays empty.
func (e Effect) StderrLine() string {
	if e.Stderr == "" || strings.HasSuffix(e.Stderr, "\n") {
		return e.Stderr
	}
	return e.Stderr + "\n"
}

// MaxIDLen bounds a rule's ID (bytes).
const MaxIDLen = 128

// maxLatency bounds a latency: longer than this is surely a mistake (or an
// attempt to overflow a deadline).
const maxLatency = 1000 * 24 * time.Hour

// Validate reports the first problem with r, naming the field. Values
// quoted in the message are cut to a short prefix.
func (r *Rule) Validate() error {
	if len(r.ID) > MaxIDLen {
		return fmt.Errorf("id: %s is longer than %d bytes", quote(r.ID), MaxIDLen)
	}
	for _, c := range r.ID {
		if c < ' ' || c == 0x7f || c == '/' {
			return fmt.Errorf("id: %s: use printable characters other than '/'", quote(r.ID))
		}
	}
	kinds, ok := LayerKinds[r.Layer]
	if !ok {
		return fmt.Errorf("layer: unknown layer %s (want one of %s)", quote(string(r.Layer)), joinLayers())
	}
	if !slices.Contains(kinds, r.Effect.Kind) {
		return fmt.Errorf("effect.kind: %s is not a %s effect (want one of %s)", quote(string(r.Effect.Kind)), r.Layer, joinKinds(kinds))
	}
	for _, op := range r.Ops {
		if !slices.Contains(LayerOps[r.Layer], op) {
			return fmt.Errorf("ops: unknown %s operation %s (want some of %s)", r.Layer, quote(op), strings.Join(LayerOps[r.Layer], ", "))
		}
	}
	if r.Path != "" {
		if !strings.HasPrefix(r.Path, "/") {
			return fmt.Errorf("path: %s must be absolute", quote(r.Path))
		}
		if !doublestar.ValidatePattern(r.Path) {
			return fmt.Errorf("path: %s is not a valid glob", quote(r.Path))
		}
	}
	if r.Command != "" {
		re, err := regexp.Compile(r.Command)
		if err != nil {
			var se *syntax.Error
			if errors.As(err, &se) {
				return fmt.Errorf("command: %s is not a regular expression: %s", quote(r.Command), se.Code)
			}
			return fmt.Errorf("command: %s is not a regular expression", quote(r.Command))
		}
		r.cmd = re
	}
	if r.Job != "" {
		if _, err := doublestar.Match(r.Job, ""); err != nil {
			return fmt.Errorf("job: %s is not a valid glob", quote(r.Job))
		}
	}
	if p := r.Probability; p != nil && !(*p >= 0 && *p <= 1) {
		return fmt.Errorf("probability: %v is outside 0..1", *p)
	}
	for _, f := range []struct {
		name string
		bad  bool
	}{{"count", r.Count < 0}, {"after", r.After < 0}, {"start", r.Start < 0}, {"for", r.For < 0},
		{"effect.latency", r.Effect.Latency < 0}, {"effect.after_bytes", r.Effect.AfterBytes < 0}} {
		if f.bad {
			return fmt.Errorf("%s: must not be negative", f.name)
		}
	}
	e := r.Effect
	if e.Latency.D() > maxLatency {
		return fmt.Errorf("effect.latency: %v is longer than %v", e.Latency.D(), maxLatency)
	}
	if e.ExitCode != nil && (*e.ExitCode < 0 || *e.ExitCode > 255) {
		return fmt.Errorf("effect.exit_code: %d is outside 0..255 (a process exits with 0 to 255)", *e.ExitCode)
	}
	if e.Mode != nil && *e.Mode > 0o7777 {
		return fmt.Errorf("effect.mode: %#o is not permission bits (0 to 0o7777)", *e.Mode)
	}
	switch e.Kind {
	case Errno:
		if _, err := ParseErrno(e.Errno); err != nil {
			return fmt.Errorf("effect.errno: %w", err)
		}
	case Latency, SlowBanner:
		if e.Latency <= 0 {
			return fmt.Errorf("effect.latency: a %s effect needs a positive duration such as \"2s\"", e.Kind)
		}
	case Perm:
		if e.Mode == nil {
			return fmt.Errorf("effect.mode: a perm effect needs the permission bits to report, such as 0 or 0o755")
		}
	case Unreachable:
		if e.Style != "" && e.Style != "refused" && e.Style != "cannot-connect" {
			return fmt.Errorf("effect.style: %s (want refused or cannot-connect)", quote(e.Style))
		}
	case HTTPStatus:
		if e.Status < 400 || e.Status > 599 {
			return fmt.Errorf("effect.status: %d: a status effect answers an HTTP error status, 400 to 599", e.Status)
		}
	case Stuck:
		if len(e.State) != 1 || !strings.Contains("QRHWESE", e.State) {
			return fmt.Errorf("effect.state: %s is not a PBS job state a job can be kept in (Q, R, H, W, E or S)", quote(e.State))
		}
	}
	return nil
}

// quote is s as %q gives it, cut to a short prefix when long, so that an
// error never sends a large value back to whoever sent it.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
}

func joinLayers() string {
	ls := make([]string, 0, len(LayerKinds))
	for l := range LayerKinds {
		ls = append(ls, string(l))
	}
	slices.Sort(ls)
	return strings.Join(ls, ", ")
}

func joinKinds(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Op describes one operation for matching against rules. Fields that do not
// apply to the layer are left empty.
type Op struct {
	Layer   Layer
	Name    string
	Path    string
	Command string
	User    string
	Job     string
}

// selects reports whether r's selector selects op.
func (r *Rule) selects(op Op) bool {
	if r.Layer != op.Layer {
		return false
	}
	if len(r.Ops) > 0 && !slices.Contains(r.Ops, op.Name) {
		return false
	}
	if r.Path != "" {
		if ok, _ := doublestar.Match(r.Path, op.Path); !ok {
			return false
		}
	}
	if r.cmd != nil && !r.cmd.MatchString(op.Command) {
		return false
	}
	if r.User != "" && r.User != op.User {
		return false
	}
	if r.Job != "" {
		if ok, _ := doublestar.Match(r.Job, op.Job); !ok {
			// "123" selects "123.server" as the PBS commands accept bare numbers.
			if seq, _, _ := strings.Cut(op.Job, "."); seq != r.Job {
				return false
			}
		}
	}
	return true
}

var errnos = map[string]syscall.Errno{
	"EPERM": syscall.EPERM, "ENOENT": syscall.ENOENT, "EINTR": syscall.EINTR, "EIO": syscall.EIO,
	"EBADF": syscall.EBADF, "EAGAIN": syscall.EAGAIN, "ENOMEM": syscall.ENOMEM, "EACCES": syscall.EACCES,
	"EBUSY": syscall.EBUSY, "EEXIST": syscall.EEXIST, "EXDEV": syscall.EXDEV, "ENOTDIR": syscall.ENOTDIR,
	"EISDIR": syscall.EISDIR, "EINVAL": syscall.EINVAL, "ENFILE": syscall.ENFILE, "EMFILE": syscall.EMFILE,
	"EFBIG": syscall.EFBIG, "ENOSPC": syscall.ENOSPC, "EROFS": syscall.EROFS, "EMLINK": syscall.EMLINK,
	"ENAMETOOLONG": syscall.ENAMETOOLONG, "ENOTEMPTY": syscall.ENOTEMPTY, "ELOOP": syscall.ELOOP,
	"ENOTCONN": syscall.ENOTCONN, "ETIMEDOUT": syscall.ETIMEDOUT, "ECONNREFUSED": syscall.ECONNREFUSED,
	"EHOSTUNREACH": syscall.EHOSTUNREACH, "ESTALE": syscall.ESTALE, "EDQUOT": syscall.EDQUOT,
	"ENODATA": syscall.ENODATA, "ENOTSUP": syscall.ENOTSUP,
}

// ParseErrno turns an errno name such as "EIO" into its value.
func ParseErrno(name string) (syscall.Errno, error) {
	if e, ok := errnos[strings.ToUpper(name)]; ok {
		return e, nil
	}
	known := make([]string, 0, len(errnos))
	for k := range errnos {
		known = append(known, k)
	}
	slices.Sort(known)
	return 0, fmt.Errorf("unknown errno %s (known: %s)", quote(name), strings.Join(known, " "))
}

// Duration is a time.Duration written as a Go duration string ("250ms",
// "20s", "1h") in JSON and YAML.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %s: want a number with a unit such as 500ms, 20s or 1h", quote(string(b)))
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML reads a duration string. A value that is not one (a
// list, a mapping, a word) or a negative duration is refused with the
// node's line and column: no duration of a rule or a scenario (within,
// timeout, for, after, longer_than, ...) counts backwards.
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	tok := n.GetToken()
	switch n.Type() {
	case ast.StringType, ast.IntegerType, ast.FloatType:
	case ast.NullType:
		*d = 0
		return nil
	case ast.SequenceType:
		return &yamlValueError{"want a duration such as 500ms, 20s or 1h, got a list", tok}
	case ast.MappingType, ast.MappingValueType:
		return &yamlValueError{"want a duration such as 500ms, 20s or 1h, got a mapping", tok}
	default:
		return &yamlValueError{fmt.Sprintf("want a duration such as 500ms, 20s or 1h, got %s", n.Type()), tok}
	}
	text := tok.Value
	var v Duration
	if err := v.UnmarshalText([]byte(text)); err != nil {
		return &yamlValueError{err.Error(), tok}
	}
	if v < 0 {
		return &yamlValueError{fmt.Sprintf("duration %q: must not be negative", text), tok}
	}
	*d = v
	return nil
}

// yamlValueError is a bad value at a token of a YAML document. It
// satisfies yaml.Error, so decoders report where it is.
type yamlValueError struct {
	msg string
	tok *token.Token
}

func (e *yamlValueError) GetMessage() string     { return e.msg }
func (e *yamlValueError) GetToken() *token.Token { return e.tok }
func (e *yamlValueError) FormatError(colored, inclSource bool) string {
	return yaml.FormatErrorWithToken(e.msg, e.tok, colored, inclSource)
}
func (e *yamlValueError) Error() string {
	if e.tok == nil || e.tok.Position == nil {
		return e.msg
	}
	return fmt.Sprintf("line %d column %d: %s", e.tok.Position.Line, e.tok.Position.Column, e.msg)
}

// UnmarshalJSON accepts a duration string, or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err == nil {
		ns := f * float64(time.Second)
		if ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return fmt.Errorf("duration: %v seconds is out of range", f)
		}
		*d = Duration(ns)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"20s\" or a number of seconds, got %s", quote(string(b)))
	}
	return d.UnmarshalText([]byte(s))
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
