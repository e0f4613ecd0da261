package hubsys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// siteAuthzSrc is a scenario with a stand-in service; SITE and CHANGED
// are replaced by site files' paths.
const siteAuthzSrc = `name: site
system:
  hub:
    users: [alice, bob, carol]
    services:
      - {name: authz, site_file: SITE}
timeline:
  - do: start
  - wait: {viewable: {alice: [bob], carol: []}, within: 30s}
  - browser: {as: alice, visit: /user/bob/, authorize: true, wait_text: UI server of bob}
  - reload_service: {service: authz, site_file: CHANGED}
  - reload_service: authz
expect:
  - {id: seen, page_shows: Signed in as alice, as: alice, at: /user/bob/, status: 200}
`

func writeSiteFiles(t *testing.T) (site, changed string) {
	t.Helper()
	dir := t.TempDir()
	site, changed = filepath.Join(dir, "authz.yaml"), filepath.Join(dir, "changed.yaml")
	for p, text := range map[string]string{site: "may_view:\n  alice: [bob]\n", changed: "may_view:\n  carol: [bob]\n"} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return site, changed
}

// TestHubServicesParse: the services block, reload_service, browser
// steps, viewable conditions and page_shows expectations parse into what
// the system runs.
func TestHubServicesParse(t *testing.T) {
	site, changed := writeSiteFiles(t)
	src := strings.NewReplacer("SITE", site, "CHANGED", changed).Replace(siteAuthzSrc)
	f, err := testVocabulary.Parse("site.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	h := ConfigOf(f)
	if len(h.Services) != 1 || h.Services[0].Name != "authz" || h.Services[0].sitePath != site {
		t.Fatalf("services: %+v", h.Services)
	}
	if r, ok := f.Timeline[3].Action.(ReloadService); !ok || r.Service != "authz" || r.sitePath != changed {
		t.Errorf("step 4: %#v, want a reload of authz with %s", f.Timeline[3].Action, changed)
	}
	if r, ok := f.Timeline[4].Action.(ReloadService); !ok || r.Service != "authz" || r.sitePath != "" {
		t.Errorf("step 5: %#v, want a plain reload of authz", f.Timeline[4].Action)
	}
	b, ok := f.Timeline[2].Action.(BrowserStep)
	if !ok || b.As != "alice" || b.Visit != "/user/bob/" || !b.Authorize || b.WaitText != "UI server of bob" {
		t.Errorf("step 3: %#v", f.Timeline[2].Action)
	}
}

// TestHubServicesErrors: bad services, steps, conditions and
// expectations are refused at file:line:col, saying what is wrong; a bad
// site file's own place is in the message.
func TestHubServicesErrors(t *testing.T) {
	site, changed := writeSiteFiles(t)
	stranger := filepath.Join(t.TempDir(), "stranger.yaml")
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(stranger, []byte("may_view:\n  eve: [bob]\n"), 0o644)
	os.WriteFile(broken, []byte("may_view:\n  alice: bob: [x]\n"), 0o644)
	base := strings.NewReplacer("SITE", site, "CHANGED", changed).Replace(siteAuthzSrc)
	for _, tc := range []struct{ name, replace, with, want string }{
		{"both", "site_file: " + site + "}", "site_file: " + site + ", command: [x]}",
			"site.yaml:6:9: service authz: give site_file: FILE"},
		{"neither", "{name: authz, site_file: " + site + "}", "{name: authz}",
			"site.yaml:6:9: service authz: give site_file: FILE"},
		{"missing site file", "site_file: " + site + "}", "site_file: /nonexistent/authz.yaml}",
			"site.yaml:6:34: service authz: authz site file: open /nonexistent/authz.yaml"},
		{"site file names a stranger", "site_file: " + site + "}", "site_file: " + stranger + "}",
			"names eve, not hub users of this scenario"},
		{"broken site file", "site_file: " + site + "}", "site_file: " + broken + "}",
			"site.yaml:6:34: service authz: " + broken + ":2:"},
		{"bad name", "{name: authz,", "{name: 'a b',", "site.yaml:6:16: service name \"a b\""},
		{"unknown key", "{name: authz,", "{name: authz, port: 1,", "site.yaml:6:23: unknown field \"port\""},
		{"reload unknown service", "reload_service: authz", "reload_service: other",
			"site.yaml:12:21: step 5: reload_service: \"other\" is not a service of system.hub.services (have authz)"},
		{"browser stranger", "browser: {as: alice,", "browser: {as: eve,", "site.yaml:10:19: step 3: browser: as \"eve\""},
		{"browser nothing to do", "browser: {as: alice, visit: /user/bob/, authorize: true, wait_text: UI server of bob}", "browser: {as: alice}",
			"site.yaml:10:14: step 3: browser: give at least one of visit"},
		{"browser relative visit", "visit: /user/bob/", "visit: user/bob/", "site.yaml:10:33: step 3: browser: visit \"user/bob/\""},
		{"viewable stranger", "carol: []}", "eve: []}", "viewable: \"eve\" is not one of the hub users"},
		{"viewable unknown service", "carol: []}, within", "carol: []}, service: other, within", "viewable: service \"other\" is not one of system.hub.services"},
		{"page_shows stranger", "as: alice, at:", "as: eve, at:", "site.yaml:14:52: expectation seen: page_shows: as \"eve\""},
		{"page_shows bad status", "status: 200", "status: 2000", "page_shows: status 2000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(base, tc.replace, tc.with, 1)
			if src == base {
				t.Fatalf("replacing %q changed nothing", tc.replace)
			}
			_, err := testVocabulary.Parse("site.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
