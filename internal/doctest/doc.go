// Package doctest is the test that runs the documentation as a newcomer
// would: every shell block of README.md and docs/*.md (fences whose info
// string is sh) and every example of every `jobsim ... --help`, typed into
// bash in a fresh folder, against the real jobsim binary (internal/testbin)
// and the real OpenSSH client, so a broken example fails the build.
//
// What a snippet needs is said where the reader sees it:
//   - in Markdown, an HTML comment right above the fence:
//     <!-- doctest: needs Docker --> (or needs FUSE, long run; several
//     separated by commas), or <!-- doctest: skip REASON --> for a block
//     that cannot run inside a test (make test itself);
//   - in --help examples, at the end of the example's first comment line:
//     "(needs Docker)", "(needs FUSE)", "(long run)", and "(until Ctrl-C)"
//     for a command that serves until interrupted: the test waits for its
//     first output on stdout, sends SIGINT as Ctrl-C does and wants a clean
//     exit.
//
// `go test` (make test) runs what needs none of Docker, FUSE or a long
// run; with JOBSIM_DOCTEST=all (make e2e sets it) it runs everything.
// Each Markdown block is a session of its own; the examples of one command
// share one session (a folder, and a jobsim host started for them whose
// JOBSIM_CONTROL and JOBSIM_TOKEN are exported, as its output tells a user
// to). Whatever a session started in the background is stopped with SIGINT
// at its end.
package doctest
