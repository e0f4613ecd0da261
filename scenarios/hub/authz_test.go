package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/sim/uiserver"
)

// authzFixture is fixtures/hub/authz.json: users, roles, whose servers run,
// and the expected status of each request made with a user's own token.
type authzFixture struct {
	Users   []string `json:"users"`
	Servers []string `json:"servers"`
	Roles   []Role   `json:"roles"`
	Checks  []struct {
		As     string `json:"as"`
		API    string `json:"api"`    // "METHOD /path" under /hub/api
		Server string `json:"server"` // or a user's server, through the proxy
		Path   string `json:"path"`
		Want   int    `json:"want"`
		Note   string `json:"note"`
	} `json:"checks"`
}

func loadAuthz(t *testing.T) authzFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "hub", "authz.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f authzFixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("fixtures/hub/authz.json: %v", err)
	}
	for i, c := range f.Checks {
		if (c.API == "") == (c.Server == "") || c.Want == 0 || c.As == "" {
			t.Fatalf("fixtures/hub/authz.json: check %d: want \"as\", \"want\" and one of \"api\" or \"server\": %+v", i, c)
		}
	}
	return f
}

// TestAuthorizationMatrix runs fixtures/hub/authz.json against a real hub:
// the hub's own API decisions, and the stand-in servers' decisions, which
// rest on the scopes the hub reports for each token.
func TestAuthorizationMatrix(t *testing.T) {
	fx := loadAuthz(t)
	needHub(t)
	rec := recordFile(t)
	sp := standIn()
	sp.Environment = map[string]string{uiserver.EnvRecord: rec}
	h := startHub(t, WithSpawner(sp), WithUsers(fx.Users...), WithRoles(fx.Roles...))
	c := h.Client()
	ctx := testCtx(t, 2*time.Minute)

	for _, u := range fx.Servers {
		if _, err := c.StartServer(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range fx.Servers {
		if _, err := c.WaitReady(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	for _, u := range fx.Users {
		tok, err := c.CreateToken(ctx, u, TokenRequest{Note: "authz matrix"})
		if err != nil {
			t.Fatal(err)
		}
		tokens[u] = tok.Token
	}

	for _, chk := range fx.Checks {
		as := c.WithToken(tokens[chk.As])
		var got int
		var what string
		if chk.API != "" {
			method, path, _ := strings.Cut(chk.API, " ")
			what = fmt.Sprintf("%s: %s", chk.As, chk.API)
			status, _, err := as.do(ctx, method, path, nil)
			if status == 0 {
				t.Fatalf("%s: %v", what, err)
			}
			got = status
			if method == http.MethodPost && status/100 == 2 {
				t.Errorf("%s started a server it should not have", what)
			}
		} else {
			what = fmt.Sprintf("%s: GET /user/%s/%s", chk.As, chk.Server, chk.Path)
			status, _, err := as.ServerGet(ctx, chk.Server, chk.Path)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			got = status
		}
		if got != chk.Want {
			t.Errorf("%s: %d, want %d %s", what, got, chk.Want, chk.Note)
		}
	}

	// The servers saw who came with which token.
	byCaller := map[string]map[string]int{} // server -> caller -> status
	for _, r := range readRecords(t, rec) {
		if r.Path != r.Server+"api/status" || r.Caller == "" {
			continue
		}
		if byCaller[r.Server] == nil {
			byCaller[r.Server] = map[string]int{}
		}
		byCaller[r.Server][r.Caller] = r.Status
		if r.Token != tokens[r.Caller] {
			t.Errorf("record on %s names caller %s but a token that is not theirs", r.Server, r.Caller)
		}
	}
	if byCaller["/user/bob/"]["alice"] != 200 || byCaller["/user/carol/"]["alice"] != 403 || byCaller["/user/bob/"]["dave"] != 403 {
		t.Errorf("recorded statuses by server and caller: %v; want alice 200 on bob, 403 on carol, dave 403 on bob", byCaller)
	}

	// A revoked grant is not in the fixture: but the hub's decisions move
	// with roles, so deleting alice's token must close bob's server to it.
	list, err := c.Tokens(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range list {
		if err := c.DeleteToken(ctx, "alice", tk.ID); err != nil {
			t.Fatal(err)
		}
	}
	if status, _, _ := c.WithToken(tokens["alice"]).ServerGet(ctx, "bob", "api/status"); status != http.StatusForbidden {
		t.Errorf("alice's revoked token on bob's server: %d, want 403", status)
	}
}
