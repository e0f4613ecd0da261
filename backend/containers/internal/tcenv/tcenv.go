// Package tcenv holds the one process-wide setting testcontainers-go needs
// here: no Ryuk.
package tcenv

import "os"

// DisableRyuk makes testcontainers-go run without its reaper container
// (which would be pulled from a registry; the engine has none): jobsim
// removes what it starts itself. testcontainers-go reads the setting once
// per process, when it first needs its configuration, so every entry point
// calls this before anything else of testcontainers-go.
func DisableRyuk() {
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") != "true" {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}
