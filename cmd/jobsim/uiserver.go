package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobsim/jobsim/sim/uiserver"
)

// newUIServerCommand builds `jobsim uiserver`, the stand-in per-user
// server a JupyterHub spawner can start instead of jupyterhub-singleuser.
func newUIServerCommand() *cobra.Command {
	var (
		addr, prefix, apiURL, record, faultSpec, neverReady, version, logLevel string
		slowStart, crashAfter                                                  time.Duration
		exitCode, httpError, httpErrorAfter                                    int
	)
	cmd := &cobra.Command{
		Use:   "uiserver",
		Short: "Run a stand-in for the per-user server a JupyterHub spawner starts, with faults on command",
		Long: `uiserver stands in for jupyterhub-singleuser: point a hub's Spawner.cmd at
"jobsim uiserver" and the hub starts it like a notebook server.

It reads what a spawner passes in the environment: JUPYTERHUB_SERVICE_URL
(the address to bind and the URL prefix), JUPYTERHUB_SERVICE_PREFIX,
JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN (to check callers' tokens and
report activity), JUPYTERHUB_ACTIVITY_URL, JUPYTERHUB_USER and
JUPYTERHUB_OAUTH_ACCESS_SCOPES.

It answers under the prefix:
  <prefix>             200, for the hub's readiness check; a browser (no
                       token) is logged in through the hub's OAuth when the
                       hub gave a client (JUPYTERHUB_CLIENT_ID): the hub's
                       authorize page, <prefix>oauth_callback, then a page
                       naming the owner and who is signed in, or 403 when
                       the hub no longer grants access
  <prefix>api          {"version": "6.4.12"}, like the notebook server
  <prefix>api/status   needs a token (Authorization: token T, or ?token=T)
  <prefix>api/me       that the hub says grants access to this server;
                       403 otherwise, 502 if the hub cannot be asked

It stops on SIGINT or SIGTERM (the hub sends SIGINT, then SIGTERM 10 s later).

Faults come from JOBSIM_UISERVER_FAULT (comma-separated key=value, the
same keys as the flags below: slow-start, never-ready, crash-after,
exit-code, http-error, http-error-after) or from --fault; the single flags
override single keys. JOBSIM_UISERVER_RECORD or --record names a JSON-lines
file that gets one line per request: path, status, the token used and where
it came from, and the caller the hub named for it.

In jupyterhub_config.py, every user's server the stand-in, and alice's
crashing 5 s after it starts:

  c.Spawner.cmd = ["/usr/local/bin/jobsim", "uiserver"]
  c.Spawner.environment = {"JOBSIM_UISERVER_RECORD": "/tmp/requests.jsonl"}
  def pre_spawn_hook(spawner):
      if spawner.user.name == "alice":
          spawner.environment = dict(spawner.environment,
              JOBSIM_UISERVER_FAULT="crash-after=5s,exit-code=3")
  c.Spawner.pre_spawn_hook = pre_spawn_hook`,
		Example: `  # By hand, outside a hub: answer under /user/alice/ on port 8888
  jobsim uiserver --addr 127.0.0.1:8888 --prefix /user/alice/ &
  until curl -s http://127.0.0.1:8888/user/alice/api; do sleep 0.2; done   # {"version":"6.4.12"}
  kill $!; wait

  # A server the hub never sees ready: it binds, but answers 503
  JOBSIM_UISERVER_FAULT=never-ready=http jobsim uiserver &
  until curl -s -o /dev/null http://127.0.0.1:8888/; do sleep 0.2; done
  curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:8888/   # 503
  kill $!; wait

  # Slow to start, then fine for one request, then 502 for every other
  jobsim uiserver --slow-start 3s --http-error 502 --http-error-after 1 &
  until curl -s -o /dev/null http://127.0.0.1:8888/; do sleep 0.2; done   # 200, once it is up
  curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:8888/api   # 502
  kill $!; wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})).With("component", "jobsim-uiserver")

			// Faults: the environment, then --fault, then the single flags.
			spec := os.Getenv(uiserver.EnvFault)
			where := uiserver.EnvFault
			if cmd.Flags().Changed("fault") {
				spec, where = faultSpec, "--fault"
			}
			faults, err := uiserver.ParseFaults(spec)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			flags := cmd.Flags()
			if flags.Changed("slow-start") {
				faults.SlowStart = slowStart
			}
			if flags.Changed("never-ready") {
				faults.NeverReady = uiserver.NeverReady(neverReady)
			}
			if flags.Changed("crash-after") {
				faults.CrashAfter = crashAfter
			}
			if flags.Changed("exit-code") {
				faults.ExitCode = exitCode
			}
			if flags.Changed("http-error") {
				faults.HTTPError = httpError
			}
			if flags.Changed("http-error-after") {
				faults.HTTPErrorAfter = httpErrorAfter
			}

			opts := []uiserver.Option{uiserver.FromEnv(os.LookupEnv), uiserver.WithFaults(faults), uiserver.WithLogger(logger)}
			if flags.Changed("addr") {
				opts = append(opts, uiserver.WithAddr(addr))
			}
			if flags.Changed("prefix") {
				opts = append(opts, uiserver.WithPrefix(prefix))
			}
			if flags.Changed("hub-api-url") {
				opts = append(opts, uiserver.WithHubAPI(apiURL, os.Getenv(uiserver.EnvAPIToken)))
			}
			if flags.Changed("record") {
				opts = append(opts, uiserver.WithRecordFile(record))
			}
			if flags.Changed("server-version") {
				opts = append(opts, uiserver.WithVersion(version))
			}
			srv, err := uiserver.New(opts...)
			if err != nil {
				return err
			}
			err = srv.Serve(cmd.Context())
			var exit *uiserver.ExitError
			if errors.As(err, &exit) {
				fmt.Fprintf(cmd.ErrOrStderr(), "jobsim uiserver: %v\n", exit)
				os.Exit(exit.Code)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8888", "host:port to bind (default from $JUPYTERHUB_SERVICE_URL)")
	f.StringVar(&prefix, "prefix", "/", "URL prefix to answer under (default from $JUPYTERHUB_SERVICE_PREFIX)")
	f.StringVar(&apiURL, "hub-api-url", "", "hub API URL for token checks (default $JUPYTERHUB_API_URL)")
	f.StringVar(&record, "record", "", "append one JSON line per request to this file (default $JOBSIM_UISERVER_RECORD)")
	f.StringVar(&faultSpec, "fault", "", "fault spec, e.g. slow-start=2s,crash-after=5s,exit-code=3 (default $JOBSIM_UISERVER_FAULT)")
	f.DurationVar(&slowStart, "slow-start", 0, "wait this long before binding")
	f.StringVar(&neverReady, "never-ready", "", "never become ready: http (bind, answer 503) or nobind (never bind)")
	f.DurationVar(&crashAfter, "crash-after", 0, "exit this long after binding, without a clean shutdown")
	f.IntVar(&exitCode, "exit-code", 1, "exit status of --crash-after")
	f.IntVar(&httpError, "http-error", 0, "answer this 5xx status to requests after --http-error-after")
	f.IntVar(&httpErrorAfter, "http-error-after", 0, "number of requests answered normally before --http-error applies")
	f.StringVar(&version, "server-version", "6.4.12", "version reported at <prefix>api")
	f.StringVar(&logLevel, "log-level", "info", "log level on stderr: debug, info, warn, error")
	return cmd
}
