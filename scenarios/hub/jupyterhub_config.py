# jupyterhub_config.py written by jobsim's hub driver (scenarios/hub).
#
# This file is static: all the data is in the JSON spec next to it
# (jobsim-hub.json, or the file named by $JOBSIM_HUB_SPEC), which the Go
# driver writes from its Config structs. Keeping the data in JSON means no
# Go value is ever pasted into Python source.
import importlib
import json
import os

c = get_config()  # noqa: F821 (provided by traitlets)

_spec_path = os.environ.get("JOBSIM_HUB_SPEC") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "jobsim-hub.json"
)
with open(_spec_path) as _f:
    _spec = json.load(_f)

# Modules a site's configuration imports (`import batchspawner` adds the
# hub's /hub/api/batchspawner handler).
for _module in _spec.get("imports") or []:
    importlib.import_module(_module)

# Where the hub lives: its own ports, database, secrets and pid files.
_hub = _spec["hub"]
c.JupyterHub.bind_url = _hub["bind_url"]
c.JupyterHub.hub_bind_url = _hub["hub_bind_url"]
c.JupyterHub.db_url = _hub["db_url"]
c.JupyterHub.cookie_secret_file = _hub["cookie_secret_file"]
c.JupyterHub.pid_file = _hub["pid_file"]
c.JupyterHub.log_level = _hub["log_level"]
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.ConfigurableHTTPProxy.api_url = _hub["proxy_api_url"]
c.ConfigurableHTTPProxy.auth_token = _hub["proxy_auth_token"]
c.ConfigurableHTTPProxy.pid_file = _hub["proxy_pid_file"]
# Named servers: several servers per user besides the default one.
c.JupyterHub.allow_named_servers = bool(_hub.get("allow_named_servers"))
c.JupyterHub.named_server_limit_per_user = int(_hub.get("named_server_limit_per_user") or 0)

# Who may log in.
_auth = _spec["authenticator"]
c.JupyterHub.authenticator_class = _auth["class"]
if _auth.get("password"):
    c.DummyAuthenticator.password = _auth["password"]
c.Authenticator.allowed_users = set(_auth.get("allowed_users") or [])
c.Authenticator.admin_users = set(_auth.get("admin_users") or [])

# How servers are started.
_sp = _spec["spawner"]
c.JupyterHub.spawner_class = _sp["class"]
_sp_section = getattr(c, _sp["class"].rpartition(".")[2])
_sp_section.cmd = _sp["cmd"]
_sp_section.args = _sp.get("args") or []
_sp_section.start_timeout = _sp["start_timeout"]
_sp_section.http_timeout = _sp["http_timeout"]
_sp_section.poll_interval = _sp["poll_interval"]
_sp_section.environment = _sp.get("environment") or {}
if _sp.get("home_dir_template"):
    _sp_section.home_dir_template = _sp["home_dir_template"]
for _name, _value in (_sp.get("traits") or {}).items():
    setattr(_sp_section, _name, _value)

_user_env = _sp.get("user_environment") or {}
_user_traits = _sp.get("user_traits") or {}
if _user_env or _user_traits:

    def _jobsim_pre_spawn_hook(spawner):
        """Add the per-user environment and traits the driver asked for."""
        extra = _user_env.get(spawner.user.name)
        if extra:
            spawner.environment = dict(spawner.environment, **extra)
        for name, template in _user_traits.items():
            setattr(spawner, name, template.format(username=spawner.user.name))

    _sp_section.pre_spawn_hook = _jobsim_pre_spawn_hook

# A spawn form: its fields (a select of choices, or a text checked by a
# pattern), and their answers checked and turned into user_options.
_form = _sp.get("options_form") or []
if _form:
    import html as _html
    import re as _re

    def _jobsim_form_html(fields):
        parts = []
        for f in fields:
            name = _html.escape(f["name"])
            label = _html.escape(f.get("label") or f["name"])
            default = f.get("default") or ""
            if f.get("choices"):
                options = "".join(
                    '<option value="{0}"{1}>{0}</option>'.format(
                        _html.escape(c), " selected" if c == default else ""
                    )
                    for c in f["choices"]
                )
                field = '<select class="form-control" id="{0}" name="{0}">{1}</select>'.format(name, options)
            else:
                field = '<input class="form-control" id="{0}" name="{0}" value="{1}">'.format(
                    name, _html.escape(default)
                )
            parts.append('<div class="form-group"><label for="{0}">{1}</label>{2}</div>'.format(name, label, field))
        return "\n".join(parts)

    def _jobsim_options_from_form(formdata):
        """Check each answer; refuse the first one a field does not allow."""
        options = {}
        for f in _form:
            value = (formdata.get(f["name"]) or [f.get("default") or ""])[0].strip()
            if f.get("choices"):
                ok = value in f["choices"]
            else:
                ok = _re.fullmatch(f["pattern"], value) is not None
            if not ok:
                raise ValueError(
                    f.get("message") or "{}: {!r} is not allowed".format(f.get("label") or f["name"], value)
                )
            options[f["name"]] = value
        return options

    _sp_section.options_form = _jobsim_form_html(_form)
    _sp_section.options_from_form = _jobsim_options_from_form

# Authorization: roles with scopes, and API-only services.
c.JupyterHub.load_roles = _spec.get("roles") or []
c.JupyterHub.services = _spec.get("services") or []

# Anything else, as "Class.trait": value.
for _key, _value in (_spec.get("traits") or {}).items():
    _cls, _, _trait = _key.partition(".")
    setattr(getattr(c, _cls), _trait, _value)
