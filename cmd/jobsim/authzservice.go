package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/jobsim/jobsim/sim/authzservice"
)

// newAuthzServiceCommand builds `jobsim authz-service`, the stand-in for a
// site's authorization service that a hub starts as a managed service.
// Hidden: a hub's configuration runs it, not a person.
func newAuthzServiceCommand() *cobra.Command {
	var configFile, addr, logLevel string
	cmd := &cobra.Command{
		Use:    "authz-service",
		Hidden: true,
		Short:  "Run the stand-in site authorization service a JupyterHub starts as a managed service",
		Long: `authz-service reads a site file saying who may open whose UI server:

  may_view:
    alice: [bob, carol]
    helpdesk: ["*"]

and keeps the hub's groups viewers-of-<user> equal to it (the hub's
load_roles gives each such group access:servers!user=<user> and
read:servers!user=<user>). Under its prefix it serves each logged-in user
(hub OAuth) the list of servers they may open. SIGHUP, or POST
<prefix>reload with the service's token, re-reads the file.

The hub starts it with JUPYTERHUB_SERVICE_URL, _PREFIX, JUPYTERHUB_API_URL,
JUPYTERHUB_API_TOKEN and the OAuth client variables.`,
		Example: `  # In jupyterhub_config.py:
  c.JupyterHub.services = [{
      "name": "authz", "url": "http://127.0.0.1:10101", "oauth_no_confirm": True,
      "command": ["/usr/local/bin/jobsim", "authz-service", "--config", "/etc/jupyterhub/authz.yaml"],
  }]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})).With("component", "jobsim-authz-service")
			opts := []authzservice.Option{authzservice.FromEnv(os.LookupEnv), authzservice.WithLogger(logger)}
			if configFile != "" {
				opts = append(opts, authzservice.WithConfigFile(configFile))
			}
			if addr != "" {
				opts = append(opts, authzservice.WithAddr(addr))
			}
			svc, err := authzservice.New(opts...)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						select {
						case reload <- struct{}{}:
						default:
						}
					}
				}
			}()
			return svc.Serve(ctx, reload)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "the site file (default $"+authzservice.EnvConfig+")")
	cmd.Flags().StringVar(&addr, "addr", "", "address to listen on (default from $"+authzservice.EnvServiceURL+")")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
