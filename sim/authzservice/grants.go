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
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"

	yaml "go.yaml.in/yaml/v3"
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
	g, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("authz site file %s: %w", path, err)
	}
	return g, nil
}

// Parse reads a site file's contents; errors name the line.
func Parse(b []byte) (Grants, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f siteFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) || len(bytes.TrimSpace(b)) == 0 {
			return nil, errors.New("empty: want a may_view: mapping of viewer to the users whose servers they may open")
		}
		return nil, err
	}
	if f.MayView == nil {
		return nil, errors.New("no may_view: mapping (viewer: [users whose servers they may open])")
	}
	lines := viewerLines(&root)
	g := Grants{}
	for viewer, owners := range f.MayView {
		at := fmt.Sprintf("line %d: may_view: %s", lines[viewer], viewer)
		if !userName.MatchString(viewer) {
			return nil, fmt.Errorf("%s: %q is not a user name", at, viewer)
		}
		for _, o := range owners {
			if o != Everyone && !userName.MatchString(o) {
				return nil, fmt.Errorf("%s: %q is not a user name (or %q for everyone)", at, o, Everyone)
			}
		}
		g[viewer] = append([]string(nil), owners...)
	}
	return g, nil
}

// viewerLines maps each key of may_view to its line, for messages.
func viewerLines(root *yaml.Node) map[string]int {
	out := map[string]int{}
	if root == nil || len(root.Content) == 0 {
		return out
	}
	doc := root.Content[0]
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "may_view" {
			continue
		}
		m := doc.Content[i+1]
		for j := 0; j+1 < len(m.Content); j += 2 {
			out[m.Content[j].Value] = m.Content[j].Line
		}
	}
	return out
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
