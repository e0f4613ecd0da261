package hubsys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/authzservice"
)

// ServiceEvent is a hub-managed service being reloaded by a
// reload_service step. Fields: service, site_file (the file now in force,
// when the step names one), status (reloaded, refused), message.
const ServiceEvent events.Kind = "hub.service"

// ServiceSpec is one entry of system.hub.services: a site-authorization
// service the hub starts and manages. Either SiteFile (jobsim's stand-in,
// `jobsim authz-service`, reading that file: `may_view: {viewer:
// [owners]}`) or Command (the site's own service, started by the hub like
// any managed service, with JUPYTERHUB_API_TOKEN and the OAuth settings in
// its environment).
type ServiceSpec struct {
	// Name is the service's name: /services/<name>/ (default authz).
	Name string `yaml:"name"`
	// SiteFile is the stand-in's site file, relative to the scenario
	// file. The run works on a copy, which reload_service may replace.
	SiteFile string `yaml:"site_file"`
	// Command is the site's own service's command line.
	Command []string `yaml:"command"`
	// Environment is added to the service's environment.
	Environment map[string]string `yaml:"environment"`

	sitePath string // SiteFile resolved, checked at load
}

// resolveNear resolves a path a scenario names relative to the scenario
// file (the working directory for a file without a path).
func resolveNear(f *scenario.File, p string) string {
	if filepath.IsAbs(p) || f.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(f.Path), p)
}

// validateServices checks system.hub.services: names, one of site_file
// or command, the site file read and checked (its own file:line:col in
// the message) and naming only hub users.
func validateServices(f *scenario.File, h *Config, at scenario.Where) error {
	seen := map[string]bool{}
	for i := range h.Services {
		sv := &h.Services[i]
		w := at.Key("services").Index(i)
		if sv.Name == "" {
			sv.Name = hub.DefaultAuthzService
		}
		if !scenario.ValidName(sv.Name) {
			return w.Key("name").Errorf("service name %q: use letters, digits, '.', '_' and '-'", sv.Name)
		}
		if seen[sv.Name] {
			return w.Key("name").Errorf("service %s is named twice", sv.Name)
		}
		seen[sv.Name] = true
		if (sv.SiteFile == "") == (len(sv.Command) == 0) {
			return w.Errorf("service %s: give site_file: FILE (jobsim's stand-in reading that site file) or command: [ARGV...] (the site's own service)", sv.Name)
		}
		if sv.SiteFile == "" {
			continue
		}
		sv.sitePath = resolveNear(f, sv.SiteFile)
		if err := checkSiteFile(sv.sitePath, h.Users); err != nil {
			return w.Key("site_file").Errorf("service %s: %v", sv.Name, err)
		}
	}
	return nil
}

// checkSiteFile reads a stand-in site file and checks that it names only
// hub users (or everyone).
func checkSiteFile(path string, users []string) error {
	g, err := authzservice.LoadFile(path)
	if err != nil {
		return err
	}
	if unknown := g.Unknown(users); len(unknown) > 0 {
		return fmt.Errorf("site file %s names %s, not hub users of this scenario (%v)", path, strings.Join(unknown, ", "), users)
	}
	return nil
}

// service returns the spec of the scenario's service name.
func (h *Config) service(name string) (*ServiceSpec, bool) {
	for i := range h.Services {
		if h.Services[i].Name == name {
			return &h.Services[i], true
		}
	}
	return nil, false
}

// ReloadService is a reload_service step: the service re-reads its site
// file (POST /services/<name>/reload with the service's token). With
// SiteFile, the run's copy of the stand-in's site file is first replaced
// by that file (relative to the scenario file).
type ReloadService struct {
	Service  string `yaml:"service"`
	SiteFile string `yaml:"site_file"`

	sitePath string
}

func (r ReloadService) String() string {
	if r.SiteFile != "" {
		return fmt.Sprintf("reload service %s with %s", r.Service, r.SiteFile)
	}
	return "reload service " + r.Service
}

// parseReload reads `reload_service: NAME` or `reload_service: {service:
// NAME, site_file: FILE}`.
func parseReload(f *scenario.File, h *Config, v scenario.Value) (scenario.Action, error) {
	var r ReloadService
	var name string
	if err := v.Decode(&name); err == nil {
		r.Service = name
	} else if err := v.Decode(&r); err != nil {
		return nil, v.Where().Errorf("reload_service: want a service name, or {service: NAME, site_file: FILE}: %v", err)
	}
	sv, ok := h.service(r.Service)
	if !ok {
		names := make([]string, 0, len(h.Services))
		for _, s := range h.Services {
			names = append(names, s.Name)
		}
		return nil, v.Where().Errorf("reload_service: %q is not a service of system.hub.services (have %s)", r.Service, check.OrNone(names))
	}
	if r.SiteFile != "" {
		if sv.SiteFile == "" {
			return nil, v.Where().Key("site_file").Errorf("reload_service: service %s is the site's own command; only the stand-in (site_file:) takes a new site file", r.Service)
		}
		r.sitePath = resolveNear(f, r.SiteFile)
		if err := checkSiteFile(r.sitePath, h.Users); err != nil {
			return nil, v.Where().Key("site_file").Errorf("reload_service: %v", err)
		}
	}
	return r, nil
}

// serviceSiteCopy is where the run keeps its copy of a stand-in's site
// file.
func (p *plan) serviceSiteCopy(name string) string {
	return filepath.Join(p.dir, "services", name+".yaml")
}

// scenarioServices turns system.hub.services into the hub's services.
func (p *plan) scenarioServices(o options, h *Config) ([]*hub.SiteAuthz, error) {
	var out []*hub.SiteAuthz
	for _, sv := range h.Services {
		a := &hub.SiteAuthz{Name: sv.Name, Command: slices.Clone(sv.Command), Environment: sv.Environment, Owners: h.Users}
		if sv.SiteFile != "" {
			a.Command = []string{o.jobsim, "authz-service", "--config", p.serviceSiteCopy(sv.Name)}
		}
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("hub: service %s token: %w", sv.Name, err)
		}
		a.Token = hex.EncodeToString(b)
		out = append(out, a)
	}
	return out, nil
}

// writeServices puts the stand-ins' site files in place.
func (p *plan) writeServices() error {
	for _, sv := range p.s.spec.Services {
		if sv.sitePath == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p.serviceSiteCopy(sv.Name)), 0o755); err != nil {
			return fmt.Errorf("hubsys: services: %w", err)
		}
		if err := copyFile(sv.sitePath, p.serviceSiteCopy(sv.Name), 0o644); err != nil {
			return fmt.Errorf("hubsys: service %s site file: %w", sv.Name, err)
		}
	}
	return nil
}

// serviceToken is the API token of a scenario's service.
func (s *System) serviceToken(name string) (string, bool) {
	for _, a := range s.plan.services {
		if a.Name == name {
			return a.Token, true
		}
	}
	return "", false
}

// reloadService performs a reload_service step. A refused reload (the
// service answers non-200, e.g. a site file that does not parse) is
// recorded and returned.
func (s *System) reloadService(ctx context.Context, c *hub.Client, r ReloadService) error {
	token, ok := s.serviceToken(r.Service)
	if !ok {
		return fmt.Errorf("hubsys: no service %s", r.Service)
	}
	fields := map[string]any{"service": r.Service}
	if r.sitePath != "" {
		if err := copyFile(r.sitePath, s.plan.serviceSiteCopy(r.Service), 0o644); err != nil {
			return fmt.Errorf("hubsys: reload %s: %w", r.Service, err)
		}
		fields["site_file"] = r.SiteFile
	}
	rep, err := c.ReloadService(ctx, r.Service, token)
	if err != nil {
		fields["status"], fields["message"] = "refused", err.Error()
		s.log.Record(events.Event{Kind: ServiceEvent, Msg: fmt.Sprintf("service %s reload refused: %v", r.Service, err), Fields: fields})
		return err
	}
	msg := fmt.Sprintf("service %s reloaded", r.Service)
	if r.SiteFile != "" {
		msg += " with " + r.SiteFile
	}
	fields["status"] = "reloaded"
	if rep != nil {
		fields["message"] = fmt.Sprintf("%+v", *rep)
	}
	s.log.Record(events.Event{Kind: ServiceEvent, Msg: msg, Fields: fields})
	return nil
}
