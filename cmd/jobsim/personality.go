package main

import "context"

// runPersonality runs jobsim as a PBS client when argv[0] names a PBS
// command. It reports false when the program name is not one of them.
func runPersonality(ctx context.Context, args []string) (int, bool) {
	return 0, false
}
