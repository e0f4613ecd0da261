// Command standin is the fallback stand-in server for the hub tests, used
// only when ./cmd/jobsim does not build (the tree is shared and may be
// mid-change). It runs the same sim/uiserver as `jobsim uiserver`, from the
// environment only; a leading "uiserver" argument is accepted so the
// spawner command has the same shape.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jobsim/jobsim/sim/uiserver"
)

func main() {
	if len(os.Args) > 2 || (len(os.Args) == 2 && os.Args[1] != "uiserver") {
		fmt.Fprintln(os.Stderr, "usage: standin [uiserver]  (configured by JUPYTERHUB_* and JOBSIM_UISERVER_* only)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "jobsim-uiserver-standin")
	srv, err := uiserver.New(uiserver.FromEnv(os.LookupEnv), uiserver.WithLogger(logger))
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
	err = srv.Serve(ctx)
	var exit *uiserver.ExitError
	if errors.As(err, &exit) {
		stop()
		os.Exit(exit.Code)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}
