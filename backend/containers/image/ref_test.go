package image

import "testing"

// An image is jobsim's only when its name is what Build gives and its
// labels agree: the label alone (an image built elsewhere may carry it)
// is not enough, so sweep --list never shows, and prune never removes,
// someone else's image.
func TestIsJobsimRef(t *testing.T) {
	ours := map[string]string{LabelImage: "job-host", LabelUserland: "bind"}
	for _, c := range []struct {
		ref    string
		labels map[string]string
		want   bool
	}{
		{"jobsim-host:bind-0123456789abcdef", ours, true},
		{"jobsim-host:rootfs-0123456789abcdef", map[string]string{LabelImage: "job-host", LabelUserland: "rootfs"}, true},
		{"someone/else:latest", ours, false},                              // the label on another image
		{"jobsim-host:latest", ours, false},                               // our repository, not our tag
		{"jobsim-host:rootfs-0123456789abcdef", ours, false},              // tag and label disagree
		{"jobsim-host:bind-0123456789abcdef", map[string]string{}, false}, // our name, no label
		{"evil/jobsim-host:bind-0123456789abcdef", ours, false},           // another repository
		{"jobsim-host:bind-0123456789abcdef0", ours, false},               // not 16 digits
		{"jobsim-host:bind-0123456789ABCDEF", ours, false},                // not Build's hex
		{"jobsim-host:bind-0123456789abcdef", map[string]string{LabelImage: "x", LabelUserland: "bind"}, false},
	} {
		if got := IsJobsimRef(c.ref, c.labels); got != c.want {
			t.Errorf("IsJobsimRef(%q, %v) = %v, want %v", c.ref, c.labels, got, c.want)
		}
	}
}
