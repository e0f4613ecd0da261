package authzservice

import (
	"slices"
	"strings"
	"testing"
)

func TestParseGrants(t *testing.T) {
	g, err := Parse("site.yaml", []byte("# site\nmay_view:\n  alice: [bob, carol]\n  helpdesk: [\"*\"]\n  bob: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"alice", "bob", "carol", "dave", "helpdesk"}
	for _, c := range []struct {
		viewer string
		want   []string
	}{
		{"alice", []string{"bob", "carol"}},
		{"helpdesk", []string{"alice", "bob", "carol", "dave"}},
		{"bob", nil},
		{"dave", nil},
	} {
		if got := g.Viewable(c.viewer, users); !slices.Equal(got, c.want) {
			t.Errorf("Viewable(%s) = %v, want %v", c.viewer, got, c.want)
		}
	}
	if got := g.Viewers("bob", users); !slices.Equal(got, []string{"alice", "helpdesk"}) {
		t.Errorf("Viewers(bob) = %v", got)
	}
	if got := g.Unknown([]string{"alice", "bob"}); !slices.Equal(got, []string{"carol", "helpdesk"}) {
		t.Errorf("Unknown = %v", got)
	}
}

func TestParseGrantsErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "empty"},
		{"viewers:\n  alice: [bob]\n", `site.yaml:1:1: unknown field "viewers"`},
		{"may_view:\n  alice: [bob\n", "site.yaml:2:"},
		{"may_view:\n  alice: [bob]\n  'x y': [bob]\n", `site.yaml:3:3: may_view: x y: "x y" is not a user name`},
		{"may_view:\n  alice: [\"b/c\"]\n", `site.yaml:2:3: may_view: alice: "b/c" is not a user name (or "*" for everyone)`},
		{"may_view:\n", "no may_view"},
	} {
		_, err := Parse("site.yaml", []byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", c.in, err, c.want)
		}
	}
}

func TestRoles(t *testing.T) {
	r := Roles("bob")
	if len(r) != 1 || r[0].Name != "viewers-of-bob" || !slices.Equal(r[0].Groups, []string{"viewers-of-bob"}) ||
		!slices.Equal(r[0].Scopes, []string{"access:servers!user=bob", "read:servers!user=bob"}) {
		t.Errorf("Roles(bob) = %+v", r)
	}
}
