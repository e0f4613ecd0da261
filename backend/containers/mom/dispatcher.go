package mom

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/internal/httpx"
	"github.com/jobsim/jobsim/sim/batch"
)

// DefaultNodeFailRequeue is OpenPBS's default node_fail_requeue: how long a
// job's primary execution host may stay down before the server gives the
// job up.
const DefaultNodeFailRequeue = 310 * time.Second

// EventNode is the event kind of a node going down or coming back.
const EventNode events.Kind = "pbs.node"

// Node is a compute node as the Dispatcher reaches it.
type Node struct {
	Name string // the PBS node (exec_host) name, RunSpec.Node
	URL  string // base URL of its MoM, e.g. http://cn1:7071
}

// NodeStater is the part of the PBS server the Dispatcher tells about nodes
// going down and coming back (*fakepbs.Server implements it).
type NodeStater interface {
	SetNodeState(name, state, comment string) error
}

// Requeuer is the part of the PBS server that puts a job back in its queue
// (*fakepbs.Server implements it): a rerunnable job whose node went down is
// requeued, as OpenPBS's node_down_requeue does.
type Requeuer interface {
	Job(ctx context.Context, id string, history bool) (fakepbs.Job, error)
	Requeue(ctx context.Context, id string, exitStatus *int, reason string) error
}

// Dispatcher is the login node's job executor: it runs each job on the MoM
// of the node the scheduler chose, and watches the nodes. Create it with
// NewDispatcher, give it the PBS server with Attach, and Close it.
type Dispatcher struct {
	token       string
	http        *http.Client
	nodes       map[string]*nodeWatch
	failRequeue time.Duration
	beatTimeout time.Duration
	pollEvery   time.Duration
	downAfter   int
	quietNodes  bool
	rec         events.Recorder
	log         *slog.Logger

	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	pbs   NodeStater
	procs map[*remoteProc]struct{}
}

// DispatcherOption configures a Dispatcher.
type DispatcherOption func(*Dispatcher)

// WithNodeFailRequeue sets node_fail_requeue (default 310s, as OpenPBS): how
// long a job's node may stay down before the job ends with Exit_status -20.
// 0 keeps such jobs running until the node comes back, as in OpenPBS.
func WithNodeFailRequeue(d time.Duration) DispatcherOption {
	return func(x *Dispatcher) { x.failRequeue = d }
}

// WithHeartbeat sets how often nodes are probed and after how many missed
// probes a node is marked down (default every 1s, down after 3).
func WithHeartbeat(every time.Duration, missed int) DispatcherOption {
	return func(x *Dispatcher) { x.pollEvery, x.downAfter = every, max(1, missed) }
}

// WithoutNodeEvents leaves recording nodes going down and coming back to
// the NodeStater (a Slurm controller records its own slurm.node events):
// no pbs.node events for them.
func WithoutNodeEvents() DispatcherOption { return func(x *Dispatcher) { x.quietNodes = true } }

// WithDispatchRecorder records node state changes (pbs.node events).
func WithDispatchRecorder(r events.Recorder) DispatcherOption {
	return func(x *Dispatcher) { x.rec = r }
}

// WithDispatchLogger sets the logger.
func WithDispatchLogger(l *slog.Logger) DispatcherOption { return func(x *Dispatcher) { x.log = l } }

// NewDispatcher returns a dispatcher over nodes, whose MoMs take token. It
// starts watching them at once.
func NewDispatcher(token string, nodes []Node, opts ...DispatcherOption) (*Dispatcher, error) {
	d := &Dispatcher{
		token: token, http: &http.Client{}, nodes: map[string]*nodeWatch{},
		failRequeue: DefaultNodeFailRequeue, beatTimeout: 4 * time.Second, pollEvery: time.Second, downAfter: 3,
		rec: events.Discard{}, log: slog.New(slog.DiscardHandler), procs: map[*remoteProc]struct{}{},
	}
	for _, o := range opts {
		o(d)
	}
	if len(nodes) == 0 {
		return nil, errors.New("mom: a dispatcher needs at least one node")
	}
	for _, n := range nodes {
		if n.Name == "" || n.URL == "" {
			return nil, fmt.Errorf("mom: node %+v: want a name and a MoM URL", n)
		}
		if _, err := url.Parse(n.URL); err != nil {
			return nil, fmt.Errorf("mom: node %s: %w", n.Name, err)
		}
		d.nodes[n.Name] = &nodeWatch{d: d, Node: n}
	}
	d.life, d.cancel = context.WithCancel(context.Background())
	for _, w := range d.nodes {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); w.watch() }()
	}
	return d, nil
}

// Attach gives the dispatcher the PBS server whose node states it keeps,
// and the recorder of node and job-loss events (nil: keep the current one).
func (d *Dispatcher) Attach(s NodeStater, rec events.Recorder) {
	d.mu.Lock()
	d.pbs = s
	if rec != nil {
		d.rec = rec
	}
	d.mu.Unlock()
}

func (d *Dispatcher) record(e events.Event) {
	d.mu.Lock()
	rec := d.rec
	d.mu.Unlock()
	rec.Record(e)
}

// recordNode records a node going down or coming back, unless the
// NodeStater records those itself.
func (d *Dispatcher) recordNode(e events.Event) {
	if !d.quietNodes {
		d.record(e)
	}
}

// Close stops watching, kills the jobs still running remotely and waits.
func (d *Dispatcher) Close() error {
	d.cancel()
	d.wg.Wait()
	return nil
}

func (d *Dispatcher) setState(node, state, comment string) {
	d.mu.Lock()
	s := d.pbs
	d.mu.Unlock()
	if s == nil {
		return
	}
	if err := s.SetNodeState(node, state, comment); err != nil {
		d.log.Warn("mom: cannot set node state", "node", node, "state", state, "err", err)
	}
}

// nodeWatch probes one node's MoM and keeps whether (and since when) it is down.
type nodeWatch struct {
	d *Dispatcher
	Node

	mu        sync.Mutex
	downSince time.Time // zero while up
}

// down reports since when the node is down (zero when up).
func (w *nodeWatch) down() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.downSince
}

func (w *nodeWatch) watch() {
	d := w.d
	missed := 0
	t := time.NewTicker(d.pollEvery)
	defer t.Stop()
	for {
		h, err := w.probe()
		switch {
		case err == nil:
			missed = 0
			w.mu.Lock()
			was := w.downSince
			w.downSince = time.Time{}
			w.mu.Unlock()
			if !was.IsZero() {
				// Before the node takes jobs again: what it still runs that
				// the server took off it meanwhile (requeued, deleted) dies.
				d.reapOrphans(w, h.JobIDs)
				d.setState(w.Name, "free", "")
				d.recordNode(events.Event{Kind: EventNode, Msg: fmt.Sprintf("node %s is up again after %s", w.Name, time.Since(was).Round(time.Second)),
					Fields: map[string]any{"node": w.Name, "state": "free"}})
			}
		case d.life.Err() != nil:
			return
		default:
			missed++
			if missed == d.downAfter {
				w.markDown(err)
			}
		}
		select {
		case <-d.life.Done():
			return
		case <-t.C:
		}
	}
}

// markDown marks the node down now (unless it is already).
func (w *nodeWatch) markDown(why error) {
	w.mu.Lock()
	if !w.downSince.IsZero() {
		w.mu.Unlock()
		return
	}
	w.downSince = time.Now()
	w.mu.Unlock()
	w.d.setState(w.Name, "down", "node down: communication closed")
	w.d.recordNode(events.Event{Kind: EventNode, Msg: fmt.Sprintf("node %s is down: %v", w.Name, why),
		Fields: map[string]any{"node": w.Name, "state": "down", "error": why.Error()}})
}

func (w *nodeWatch) probe() (Health, error) {
	ctx, cancel := context.WithTimeout(w.d.life, w.d.pollEvery)
	defer cancel()
	var h Health
	err := w.d.call(ctx, http.MethodGet, w.URL+"/v1/mom/health", nil, &h, http.StatusOK)
	return h, err
}

// reapOrphans kills and forgets the jobs a node that was down still has
// but no longer runs for the server (it gave them up, requeued or ended
// them while the node was away), as a MoM drops the jobs the server
// disowns when it reconnects, and slurmctld kills a returning node's
// orphans: a job run again must not meet its old self.
func (d *Dispatcher) reapOrphans(w *nodeWatch, ids []string) {
	for _, id := range ids {
		d.mu.Lock()
		followed := false
		for p := range d.procs {
			followed = followed || (p.w == w && p.id == id)
		}
		d.mu.Unlock()
		if followed {
			continue
		}
		ctx, cancel := context.WithTimeout(d.life, 3*time.Second)
		err := d.call(ctx, http.MethodDelete, w.URL+"/v1/mom/jobs/"+url.PathEscape(id), nil, nil, http.StatusNoContent)
		cancel()
		d.log.Info("mom: killed an orphaned job on a node back from down", "node", w.Name, "job", id, "err", err)
	}
}

// call makes one request to a MoM and decodes a JSON answer.
func (d *Dispatcher) call(ctx context.Context, method, u string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return statusError(resp)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// httpStatusError is a MoM's answer that was not the one expected.
type httpStatusError struct {
	code int
	msg  string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.code, http.StatusText(e.code), e.msg)
}

func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var ae httpx.Error
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &ae) == nil && ae.Error != "" {
		msg = ae.Error
	}
	return &httpStatusError{code: resp.StatusCode, msg: msg}
}

// Start implements batch.Executor: the job is sent to its node's MoM.
func (d *Dispatcher) Start(ctx context.Context, spec batch.RunSpec) (batch.Process, error) {
	w, ok := d.nodes[spec.Node]
	if !ok {
		return nil, fmt.Errorf("job %s: node %q has no MoM (nodes: %s)", spec.JobID, spec.Node, d.nodeNames())
	}
	env := make([]string, 0, len(spec.Env))
	for _, kv := range spec.Env {
		// The login node's batch client settings are not the compute node's.
		if !loginOnly(kv) {
			env = append(env, kv)
		}
	}
	req := JobRequest{JobID: spec.JobID, User: spec.User, Node: spec.Node, Script: spec.Script, NodeFile: spec.NodeFile, Shell: spec.Shell, Env: env, Dir: spec.Dir}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := d.call(sctx, http.MethodPost, w.URL+"/v1/mom/jobs", req, nil, http.StatusCreated)
	cancel()
	var se *httpStatusError
	if err != nil && !errors.As(err, &se) && ctx.Err() == nil {
		// The MoM cannot be reached: the node is down, and OpenPBS puts a
		// job that never started back in the queue, rerunnable or not.
		w.markDown(err)
		if rq := d.requeuer(); rq != nil {
			why := fmt.Sprintf("Job never started, execution node %s down", spec.Node)
			if qerr := rq.Requeue(ctx, spec.JobID, nil, why); qerr == nil {
				d.record(events.Event{Kind: EventNode, Msg: fmt.Sprintf("job %s: %s; requeued", spec.JobID, why),
					Fields: map[string]any{"node": spec.Node, "job": spec.JobID, "state": "requeued"}})
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: start on node %s: %w", spec.JobID, spec.Node, err)
	}
	p := &remoteProc{d: d, w: w, id: spec.JobID, stdout: spec.Stdout, stderr: spec.Stderr, done: make(chan struct{})}
	d.mu.Lock()
	d.procs[p] = struct{}{}
	d.mu.Unlock()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); p.follow(ctx) }()
	return p, nil
}

// loginOnly says whether a job environment variable (KEY=value) is the
// login node's batch client setting, which the compute node sets itself:
// where the PBS server or Slurm controller is, and the Slurm clients'
// configuration file.
func loginOnly(kv string) bool {
	return strings.HasPrefix(kv, "JOBSIM_PBS_") || strings.HasPrefix(kv, "JOBSIM_SLURM_") || strings.HasPrefix(kv, "SLURM_CONF=")
}

// requeuer is the PBS server when it can requeue jobs.
func (d *Dispatcher) requeuer() Requeuer {
	d.mu.Lock()
	defer d.mu.Unlock()
	rq, _ := d.pbs.(Requeuer)
	return rq
}

func (d *Dispatcher) nodeNames() string {
	names := make([]string, 0, len(d.nodes))
	for n := range d.nodes {
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// remoteProc is a job running on a compute node.
type remoteProc struct {
	d              *Dispatcher
	w              *nodeWatch
	id             string
	stdout, stderr io.Writer
	outAt, errAt   int

	done   chan struct{}
	status batch.ExitStatus
	once   sync.Once
}

func (p *remoteProc) finish(st batch.ExitStatus) {
	p.once.Do(func() {
		p.status = st
		close(p.done)
		p.d.mu.Lock()
		delete(p.d.procs, p)
		p.d.mu.Unlock()
	})
}

// Wait implements batch.Process.
func (p *remoteProc) Wait() batch.ExitStatus {
	<-p.done
	return p.status
}

// Signal implements batch.Process: the signal goes to the job's MoM
// (a node known to be down is not waited for).
func (p *remoteProc) Signal(sig syscall.Signal) error {
	if !p.w.down().IsZero() {
		return fmt.Errorf("job %s: node %s is down", p.id, p.w.Name)
	}
	ctx, cancel := context.WithTimeout(p.d.life, 5*time.Second)
	defer cancel()
	return p.d.call(ctx, http.MethodPost, p.w.URL+"/v1/mom/jobs/"+url.PathEscape(p.id)+"/signal", SignalRequest{Signal: sig}, nil, http.StatusNoContent)
}

// forget tells the MoM to drop the job (killing what is left of it).
func (p *remoteProc) forget() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = p.d.call(ctx, http.MethodDelete, p.w.URL+"/v1/mom/jobs/"+url.PathEscape(p.id), nil, nil, http.StatusNoContent)
}

// follow streams the job's output until it ends, resuming after broken
// streams, and gives the job up when its node stays down too long.
func (p *remoteProc) follow(ctx context.Context) {
	defer p.finish(batch.ExitStatus{Signal: syscall.SIGKILL}) // only if nothing else finished it
	killed := false
	for {
		ended, lost, err := p.attach(ctx)
		if ended {
			go p.forget()
			return
		}
		if lost != "" {
			p.giveUp(lost)
			return
		}
		if ctx.Err() != nil && !killed {
			// The server killed the job (qdel -W force, server shutdown):
			// kill it on the node and wait a little for its end.
			killed = true
			_ = p.Signal(syscall.SIGKILL)
			go p.forget()
			return
		}
		if p.d.life.Err() != nil {
			return
		}
		if since := p.w.down(); !since.IsZero() && p.d.failRequeue > 0 && time.Since(since) >= p.d.failRequeue {
			p.giveUp(fmt.Sprintf("execution node %s down for %s (node_fail_requeue)", p.w.Name, time.Since(since).Round(time.Second)))
			return
		}
		p.d.log.Debug("mom: job stream broken; retrying", "job", p.id, "node", p.w.Name, "err", err)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-p.d.life.Done():
			return
		case <-ctx.Done():
		}
	}
}

// giveUp ends the job's run as OpenPBS's node_down_requeue does: the job
// gets Exit_status -20 and is requeued when it is rerunnable (the server
// then ignores this run's end), else the run ends with that status and the
// job is finished ("Job deleted, execution node down").
func (p *remoteProc) giveUp(why string) {
	go p.forget()
	exit := ExitNodeFailed
	if rq := p.d.requeuer(); rq != nil {
		ctx, cancel := context.WithTimeout(p.d.life, 10*time.Second)
		j, err := rq.Job(ctx, p.id, false)
		if err == nil && j.Rerunable != "n" {
			reason := fmt.Sprintf("Job requeued, execution node %s down", p.w.Name)
			if err = rq.Requeue(ctx, p.id, &exit, reason); err == nil {
				p.d.record(events.Event{Kind: EventNode, Msg: fmt.Sprintf("job %s: %s; %s", p.id, why, reason),
					Fields: map[string]any{"node": p.w.Name, "job": p.id, "state": "requeued", "exit_status": exit}})
				cancel()
				p.finish(batch.ExitStatus{Code: exit})
				return
			}
		}
		cancel()
	}
	p.d.record(events.Event{Kind: EventNode, Msg: fmt.Sprintf("job %s: %s; Job deleted, execution node %s down (Exit_status %d)", p.id, why, p.w.Name, exit),
		Fields: map[string]any{"node": p.w.Name, "job": p.id, "state": "deleted", "exit_status": exit}})
	p.finish(batch.ExitStatus{Code: exit})
}

// attach reads one stream of the job from the current offsets. It returns
// ended when the exit frame arrived, lost when the MoM no longer knows the
// job, and otherwise why the stream stopped.
func (p *remoteProc) attach(ctx context.Context) (ended bool, lost string, err error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	u := fmt.Sprintf("%s/v1/mom/jobs/%s/stream?out=%d&err=%d", p.w.URL, url.PathEscape(p.id), p.outAt, p.errAt)
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return false, "", err
	}
	req.Header.Set("Authorization", "Bearer "+p.d.token)
	// A silent stream (node paused, network cut) is broken after beatTimeout.
	watchdog := time.AfterFunc(p.d.beatTimeout, cancel)
	defer watchdog.Stop()
	resp, err := p.d.http.Do(req)
	if err != nil {
		return false, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, fmt.Sprintf("the MoM of %s no longer knows the job (node restarted)", p.w.Name), nil
	}
	if resp.StatusCode != http.StatusOK {
		return false, "", statusError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 2*maxOutput)
	for sc.Scan() {
		watchdog.Reset(p.d.beatTimeout)
		var f Frame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return false, "", fmt.Errorf("decode frame: %w", err)
		}
		if len(f.Out) > 0 && p.stdout != nil {
			_, _ = p.stdout.Write(f.Out)
		}
		if len(f.Err) > 0 && p.stderr != nil {
			_, _ = p.stderr.Write(f.Err)
		}
		p.outAt += len(f.Out)
		p.errAt += len(f.Err)
		if f.Exit != nil {
			p.finish(batch.ExitStatus{Code: f.Exit.Code, Signal: f.Exit.Signal, Usage: f.Exit.Usage})
			return true, "", nil
		}
		if f.Lost != "" {
			return false, "", errors.New(f.Lost)
		}
	}
	if err := sc.Err(); err != nil {
		return false, "", err
	}
	return false, "", io.ErrUnexpectedEOF
}
