// Package authzservice is a stand-in for a site's authorization service
// for JupyterHub: a hub-managed service (the hub starts it, proxies it at
// /services/<name>/ and logs users into it with OAuth) that reads a site
// file saying who may open whose UI server, makes the hub enforce it, and
// shows each logged-in user the list of servers they may open.
//
// JupyterHub 3 has no REST API for roles, so the service works with
// groups, which the API does change: the hub's configuration holds, per
// user bob, a role "viewers-of-bob" with the scopes access:servers!user=bob
// and read:servers!user=bob, given to the group "viewers-of-bob" (Roles
// says what to put in load_roles); the service keeps each such group's
// members equal to the viewers the site file names. The hub then decides
// every request itself: its OAuth authorize page refuses (403) a user
// outside the group, and a removed viewer loses access at once.
package authzservice

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"

	"github.com/jobsim/jobsim/internal/yamlfile"
)

// Everyone in a viewer's list stands for every user of the hub.
const Everyone = "*"

// GroupPrefix starts the name of the group (and of the role) that holds
// the viewers of one user's servers: "viewers-of-bob".
const GroupPrefix = "viewers-of-"

// Group is the group, and the role, of the viewers of owner's servers.
func Group(owner string) string { return GroupPrefix + owner }

// RoleScopes are the scopes the role of Group(owner) grants its members:
// opening owner's servers (the hub's OAuth check) and seeing them in the
// hub's API.
func RoleScopes(owner string) []string {
	return []string{"access:servers!user=" + owner, "read:servers!user=" + owner}
}

// ServiceScopes are the scopes the service's own token needs: list users,
// see their servers, create groups and change their members, and read
// which roles a group carries (to warn about a group no role uses).
var ServiceScopes = []string{"list:users", "read:servers", "admin:groups"}

// RoleSpec is one role for the hub's load_roles.
type RoleSpec struct {
	Name   string
	Scopes []string
	Groups []string
}

// Roles are the roles a hub's configuration must define (load_roles) for
// the service to grant views of owners' servers: one per owner.
func Roles(owners ...string) []RoleSpec {
	out := make([]RoleSpec, 0, len(owners))
	for _, o := range owners {
		out = append(out, RoleSpec{Name: Group(o), Scopes: RoleScopes(o), Groups: []string{Group(o)}})
	}
	return out
}

// Grants says who may open whose servers: viewer -> owners (Everyone for
// all). A user may always open their own server; that needs no grant.
type Grants map[string][]string

// siteFile is the YAML a site writes:
//
//	# Who may open whose UI server.
//	may_view:
//	  alice: [bob, carol]
//	  helpdesk: ["*"]
type siteFile struct {
	MayView map[string][]string `yaml:"may_view"`
}

// userName is what a hub user name may be in the file.
var userName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]*$`)

// LoadFile reads and checks a site file.
func LoadFile(path string) (Grants, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authz site file: %w", err)
	}
	return Parse(path, b)
}

// Parse reads a site file's contents (name is for messages); errors say
// name:line:col and what.
func Parse(name string, b []byte) (Grants, error) {
	root, err := yamlfile.Parse(name, b)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &yamlfile.Error{File: name, Msg: "empty: want a may_view: mapping of viewer to the users whose servers they may open"}
	}
	var f siteFile
	if err := yamlfile.Decode(name, root, &f); err != nil {
		return nil, err
	}
	mv := yamlfile.Child(root, "may_view")
	if f.MayView == nil || mv == nil {
		return nil, &yamlfile.Error{File: name, Line: 1, Column: 1, Msg: "no may_view: mapping (viewer: [users whose servers they may open])"}
	}
	g := Grants{}
	for _, pair := range yamlfile.Pairs(mv) {
		viewer := yamlfile.Key(pair)
		owners := f.MayView[viewer]
		line, col := yamlfile.Pos(pair.Key)
		at := func(format string, args ...any) error {
			return &yamlfile.Error{File: name, Line: line, Column: col, Msg: "may_view: " + viewer + ": " + fmt.Sprintf(format, args...)}
		}
		if !userName.MatchString(viewer) {
			return nil, at("%q is not a user name", viewer)
		}
		for _, o := range owners {
			if o != Everyone && !userName.MatchString(o) {
				return nil, at("%q is not a user name (or %q for everyone)", o, Everyone)
			}
		}
		g[viewer] = append([]string(nil), owners...)
	}
	return g, nil
}

// Viewable lists, sorted, the users among users whose servers viewer may
// open by a grant (not viewer itself).
func (g Grants) Viewable(viewer string, users []string) []string {
	var out []string
	for _, u := range users {
		if u != viewer && g.may(viewer, u) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// Viewers lists, sorted, the users among users granted a view of owner's
// servers.
func (g Grants) Viewers(owner string, users []string) []string {
	var out []string
	for _, u := range users {
		if u != owner && g.may(u, owner) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// Unknown lists, sorted, the names in g that are not among users.
func (g Grants) Unknown(users []string) []string {
	seen := map[string]bool{}
	for v, owners := range g {
		for _, n := range append([]string{v}, owners...) {
			if n != Everyone && !slices.Contains(users, n) {
				seen[n] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (g Grants) may(viewer, owner string) bool {
	owners := g[viewer]
	return slices.Contains(owners, owner) || slices.Contains(owners, Everyone)
}
