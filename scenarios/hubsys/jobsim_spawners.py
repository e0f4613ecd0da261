# jobsim_spawners: stand-ins for JupyterHub spawners that are not packaged
# for Debian (written by jobsim's hub system, scenarios/hubsys).
#
# THESE ARE NOT batchspawner AND NOT LLNL's SSHSpawner. Neither package is
# in Debian bookworm and PyPI is not reachable from the machines jobsim's CI
# runs on, so the hub scenarios that spawn through a job host use these
# classes instead. Each one runs exactly the commands of the spawner it
# stands for, in the same order, parses their output with the same regular
# expressions and raises the same errors, so that a fake job host that
# serves these serves the real spawners too (package scenarios/spawners
# holds the contracts as data and tests them against the fake hosts). The
# places where a stand-in differs are marked DIFFERS below and listed in
# docs/hub-spawners.md.
#
# - PBSSpawner follows batchspawner 1.x's BatchSpawnerBase +
#   BatchSpawnerRegexStates + PBSSpawner: the rendered job script goes to
#   `{exec_prefix} qsub` on stdin, the job id is the whole stripped stdout,
#   the job is polled with `qstat -fx {job_id}` and the regular expressions
#   `job_state = [QH]` (pending), `job_state = R` (running) and
#   `exec_host = ([\w_-]+)/`, and stopped with `qdel {job_id}`.
# - SSHSpawner follows LLNL's SSHSpawner: OpenSSH with ControlMaster,
#   ControlPath, ControlPersist and BatchMode; `ssh host env`, `ssh host
#   mkdir -p <resources>`, `scp <files> host:<resources>/`, then
#   `ssh -L PORT:127.0.0.1:PORT host <resources>/start-notebook` kept
#   running as the tunnel; stop runs `ssh host stop-notebook` and ends the
#   tunnel.
import asyncio
import os
import re
import shlex
import subprocess
import tempfile

from jinja2 import Template
from jupyterhub.spawner import LocalProcessSpawner, Spawner
from jupyterhub.utils import random_port
from tornado import gen
from traitlets import Dict, Float, Integer, Unicode, default


def format_template(template, *args, **kwargs):
    """batchspawner's format_template: jinja2 when the template has {{ or
    {%, str.format otherwise."""
    if isinstance(template, Template):
        return template.render(*args, **kwargs)
    elif "{{" in template or "{%" in template:
        return Template(template).render(*args, **kwargs)
    return template.format(*args, **kwargs)


class JobStatus:
    NOTFOUND = 0
    RUNNING = 1
    PENDING = 2
    UNKNOWN = 3


class PBSSpawner(Spawner):
    """Stand-in for batchspawner.PBSSpawner (see the top of this file)."""

    start_timeout = Integer(300).tag(config=True)
    ip = Unicode("0.0.0.0").tag(config=True)

    exec_prefix = Unicode("sudo -E -u {username}").tag(config=True)
    req_queue = Unicode("").tag(config=True)
    req_host = Unicode("").tag(config=True)
    req_memory = Unicode("").tag(config=True)
    req_nprocs = Unicode("").tag(config=True)
    req_runtime = Unicode("").tag(config=True)
    req_options = Unicode("").tag(config=True)
    req_prologue = Unicode("").tag(config=True)
    req_epilogue = Unicode("").tag(config=True)
    req_username = Unicode()
    req_homedir = Unicode()
    req_keepvars = Unicode()
    # DIFFERS: batchspawner takes the home directory from the hub's passwd
    # (pwd.getpwnam); the fake host's users have no account on the hub
    # machine, so the stand-in renders this template with the user name.
    homedir_template = Unicode("/home/{username}").tag(config=True)

    @default("req_username")
    def _req_username_default(self):
        return self.user.name

    @default("req_homedir")
    def _req_homedir_default(self):
        return self.homedir_template.format(username=self.user.name)

    @default("req_keepvars")
    def _req_keepvars_default(self):
        return ",".join(self.get_env().keys())

    batch_script = Unicode(
        """#!/bin/sh
{% if queue or host %}#PBS -q {% if queue  %}{{queue}}{% endif %}\
{% if host %}@{{host}}{% endif %}{% endif %}
#PBS -l walltime={{runtime}}
#PBS -l select=1:ncpus={{nprocs}}:mem={{memory}}
#PBS -N jupyterhub-singleuser
#PBS -o {{homedir}}/.jupyterhub.pbs.out
#PBS -e {{homedir}}/.jupyterhub.pbs.err
#PBS -v {{keepvars}}
{% if options %}#PBS {{options}}{% endif %}

set -eu

{{prologue}}
{{cmd}}
{{epilogue}}
"""
    ).tag(config=True)
    batch_submit_cmd = Unicode("qsub").tag(config=True)
    batch_query_cmd = Unicode("qstat -fx {job_id}").tag(config=True)
    batch_cancel_cmd = Unicode("qdel {job_id}").tag(config=True)
    state_pending_re = Unicode(r"job_state = [QH]").tag(config=True)
    state_running_re = Unicode(r"job_state = R").tag(config=True)
    state_exechost_re = Unicode(r"exec_host = ([\w_-]+)/").tag(config=True)
    state_exechost_exp = Unicode("").tag(config=True)
    # DIFFERS: not in batchspawner. The hub resolves the execution host's
    # name with DNS; the fake host's nodes (containers) have no name the
    # hub's machine resolves, so jobsim gives their addresses here and
    # state_gethost looks the name up (names not in it are kept).
    exechost_addresses = Dict().tag(config=True)
    state_unknown_re = Unicode("").tag(config=True)
    startup_poll_interval = Float(0.5).tag(config=True)

    job_id = Unicode()
    job_status = Unicode()

    def get_req_subvars(self):
        subvars = {}
        for t in self.trait_names():
            if t.startswith("req_"):
                subvars[t[4:]] = getattr(self, t)
        return subvars

    def parse_job_id(self, output):
        return output

    def cmd_formatted_for_batch(self):
        # DIFFERS: batchspawner puts batchspawner-singleuser in front, a
        # Python wrapper that picks a port on the execution host and POSTs it
        # to the hub's /hub/api/batchspawner. The stand-in server is no
        # Python program, so the stand-in picks the port before qsub (as
        # batchspawner 0.8 did) and the server reads it from
        # JUPYTERHUB_SERVICE_URL.
        return " ".join(self.cmd + self.get_args())

    async def run_command(self, cmd, input=None, env=None):
        proc = await asyncio.create_subprocess_shell(
            cmd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        inbytes = None
        if input:
            inbytes = input.encode()
        try:
            out, eout = await proc.communicate(input=inbytes)
        except BaseException:
            proc.kill()
            out, eout = await proc.communicate()
            out = out.decode().strip()
            eout = eout.decode().strip()
            self.log.error("Subprocess returned exitcode %s" % proc.returncode)
            raise RuntimeError("{} exit status {}: {}".format(cmd, proc.returncode, eout))
        else:
            eout = eout.decode().strip()
            err = proc.returncode
            if err != 0:
                self.log.error("Subprocess returned exitcode %s" % err)
                self.log.error(eout)
                raise RuntimeError(eout)
        return out.decode().strip()

    async def submit_batch_script(self):
        subvars = self.get_req_subvars()
        cmd = " ".join(
            (
                format_template(self.exec_prefix, **subvars),
                format_template(self.batch_submit_cmd, **subvars),
            )
        )
        subvars["cmd"] = self.cmd_formatted_for_batch()
        if hasattr(self, "user_options"):
            subvars.update(self.user_options)
        script = format_template(self.batch_script, **subvars)
        self.log.info("Spawner submitting job using " + cmd)
        self.log.info("Spawner submitted script:\n" + script)
        out = await self.run_command(cmd, input=script, env=self.get_env())
        try:
            self.log.info("Job submitted. cmd: " + cmd + " output: " + out)
            self.job_id = self.parse_job_id(out)
        except Exception:
            self.log.error("Job submission failed with exit code " + out)
            self.job_id = ""
        return self.job_id

    async def query_job_status(self):
        if self.job_id is None or len(self.job_id) == 0:
            self.job_status = ""
            return JobStatus.NOTFOUND
        subvars = self.get_req_subvars()
        subvars["job_id"] = self.job_id
        cmd = " ".join(
            (
                format_template(self.exec_prefix, **subvars),
                format_template(self.batch_query_cmd, **subvars),
            )
        )
        self.log.debug("Spawner querying job: " + cmd)
        try:
            self.job_status = await self.run_command(cmd)
        except RuntimeError as e:
            self.job_status = e.args[0]
        except Exception:
            self.log.error("Error querying job " + self.job_id)
            self.job_status = ""
        if self.state_isrunning():
            return JobStatus.RUNNING
        elif self.state_ispending():
            return JobStatus.PENDING
        elif self.state_isunknown():
            return JobStatus.UNKNOWN
        return JobStatus.NOTFOUND

    async def cancel_batch_job(self):
        subvars = self.get_req_subvars()
        subvars["job_id"] = self.job_id
        cmd = " ".join(
            (
                format_template(self.exec_prefix, **subvars),
                format_template(self.batch_cancel_cmd, **subvars),
            )
        )
        self.log.info("Cancelling job " + self.job_id + ": " + cmd)
        await self.run_command(cmd)

    def load_state(self, state):
        super().load_state(state)
        self.job_id = state.get("job_id", "")
        self.job_status = state.get("job_status", "")

    def get_state(self):
        state = super().get_state()
        if self.job_id:
            state["job_id"] = self.job_id
        if self.job_status:
            state["job_status"] = self.job_status
        return state

    def clear_state(self):
        super().clear_state()
        self.job_id = ""
        self.job_status = ""

    def state_ispending(self):
        return self.job_status and re.search(self.state_pending_re, self.job_status)

    def state_isrunning(self):
        return self.job_status and re.search(self.state_running_re, self.job_status)

    def state_isunknown(self):
        if self.state_unknown_re:
            return self.job_status and re.search(self.state_unknown_re, self.job_status)

    def state_gethost(self):
        match = re.search(self.state_exechost_re, self.job_status)
        if not match:
            self.log.error("Spawner unable to match host addr in job status: " + self.job_status)
            return
        if not self.state_exechost_exp:
            host = match.groups()[0]
        else:
            host = match.expand(self.state_exechost_exp)
        return self.exechost_addresses.get(host, host)

    async def poll(self):
        status = await self.query_job_status()
        if status in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.UNKNOWN):
            return None
        self.clear_state()
        return 1

    async def start(self):
        # DIFFERS: batchspawner resets ip to the class default (0.0.0.0);
        # the stand-in keeps the configured one (jobsim: 127.0.0.1 on
        # in-process hosts, so the server binds the loopback address only;
        # 0.0.0.0 on node containers). And see
        # cmd_formatted_for_batch for the port.
        self.port = random_port()
        if self.server:
            self.server.port = self.port

        await self.submit_batch_script()
        if len(self.job_id) == 0:
            raise RuntimeError("Jupyter batch job submission failure (no jobid in output)")
        while True:
            status = await self.query_job_status()
            if status == JobStatus.RUNNING:
                break
            elif status == JobStatus.PENDING:
                self.log.debug("Job " + self.job_id + " still pending")
            elif status == JobStatus.UNKNOWN:
                self.log.debug("Job " + self.job_id + " still unknown")
            else:
                self.log.warning(
                    "Job " + self.job_id + " neither pending nor running.\n" + self.job_status
                )
                self.clear_state()
                raise RuntimeError(
                    "The Jupyter batch job has disappeared"
                    " while pending in the queue or died immediately"
                    " after starting."
                )
            await gen.sleep(self.startup_poll_interval)

        self.ip = self.state_gethost()
        self.db.commit()
        self.log.info(
            "Notebook server job {0} started at {1}:{2}".format(self.job_id, self.ip, self.port)
        )
        return self.ip, self.port

    async def stop(self, now=False):
        self.log.info("Stopping server job " + self.job_id)
        await self.cancel_batch_job()
        if now:
            return
        for i in range(10):
            status = await self.query_job_status()
            if status not in (JobStatus.RUNNING, JobStatus.UNKNOWN):
                return
            await gen.sleep(1.0)
        if self.job_id:
            self.log.warning(
                "Notebook server job {0} at {1}:{2} possibly failed to terminate".format(
                    self.job_id, self.ip, self.port
                )
            )

    async def progress(self):
        while True:
            if self.state_ispending():
                yield {"message": "Pending in queue..."}
            elif self.state_isrunning():
                yield {"message": "Cluster job running... waiting to connect"}
                return
            else:
                yield {"message": "Unknown status..."}
            await gen.sleep(1)


_script_template = """#!/bin/bash
# entrypoint for shared kernel link?
# start the notebook with appropriate args
{}
"""


class SSHSpawner(LocalProcessSpawner):
    """Stand-in for LLNL's SSHSpawner (see the top of this file)."""

    resource_path = Unicode(".jupyter/jupyterhub/resources").tag(config=True)
    known_hosts = Unicode("").tag(config=True)
    # DIFFERS: LLNL picks the host from user_options['host'] (a form) and
    # resolves it with `host`; the stand-in uses one ssh alias from the
    # ssh config the harness wrote.
    ssh_host = Unicode("").tag(config=True)
    ssh_config = Unicode("").tag(config=True)
    control_dir = Unicode("/tmp").tag(config=True)
    ssh_control_persist_time = Integer(1).tag(config=True)
    start_notebook_cmd = Unicode("start-notebook").tag(config=True)
    stop_notebook_cmd = Unicode("stop-notebook").tag(config=True)
    command_timeout = Integer(30).tag(config=True)
    reach_timeout = Integer(10).tag(config=True)

    remote_port = Integer(0)

    def ssh_opts(self, persist=180, known_hosts="", batch_mode=True):
        opts = {
            "ControlMaster": "auto",
            "ControlPath": os.path.join(self.control_dir, "%r@%h:%p"),
            "ControlPersist": persist,
            "BatchMode": "yes" if batch_mode else "no",
        }
        if known_hosts:
            opts["UserKnownHostsFile"] = known_hosts
        else:
            opts["StrictHostKeyChecking"] = "no"
        out = []
        if self.ssh_config:
            out.append("-F " + shlex.quote(self.ssh_config))
        # DIFFERS: LLNL runs ssh as the user (setuid); the stand-in runs it
        # as the hub's user with the user's key from the ssh config.
        out.append("-o User=" + shlex.quote(self.user.name))
        out += ["-o {}={}".format(k, v) for k, v in opts.items()]
        return " ".join(out)

    async def _run(self, cmd, input=None, timeout=None):
        """Run cmd (a shell line) to its end; return (status, stdout, stderr)."""
        self.log.debug("Running: %s as %s", cmd, self.user.name)
        proc = await asyncio.create_subprocess_shell(
            cmd,
            env=dict(os.environ),
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input.encode() if input is not None else None),
                timeout or self.command_timeout,
            )
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError("{}: no answer within {}s".format(cmd, timeout or self.command_timeout))
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    async def remote_env(self, host):
        opts = self.ssh_opts(known_hosts=self.known_hosts)
        self.log.info("Collecting remote environment from {}".format(host))
        status, out, err = await self._run("ssh {opts} {host} env".format(opts=opts, host=host))
        if status != 0:
            raise RuntimeError("ssh {} env: exit {}: {}".format(host, status, err.strip()))
        d = {}
        for line in out.split("\n"):
            divided = line.split("=")
            if len(divided) == 2:
                d[divided[0]] = divided[1]
        return d

    def get_env(self, other_env=None):
        env = super().get_env()
        if other_env:
            env.update(other_env)
        for key in ("VIRTUAL_ENV", "SSH_ASKPASS"):
            env.pop(key, None)
        return env

    def create_start_script(self, path, remote_env=None):
        env = self.get_env(other_env=remote_env)
        quoted_env = ["env"] + [shlex.quote("{}={}".format(k, v)) for k, v in env.items()]
        cmd = quoted_env + self.cmd + self.get_args()
        pidfile = os.path.join(self.resource_path, "notebook.pid")
        # DIFFERS: LLNL's script runs `env ... cmd`; the stand-in execs it
        # and records its pid so that stop-notebook can end it.
        body = "echo $$ > {}\nexec {}".format(shlex.quote(pidfile), " ".join(cmd))
        with open(path, "w") as fh:
            fh.write(_script_template.format(body))
        os.chmod(path, 0o700)

    def create_stop_script(self, path):
        pidfile = os.path.join(self.resource_path, "notebook.pid")
        with open(path, "w") as fh:
            fh.write(
                "#!/bin/bash\n"
                "pid=$(cat {0} 2>/dev/null) || exit 0\n"
                "kill -s TERM \"$pid\" 2>/dev/null\n"
                "rm -f {0}\n".format(shlex.quote(pidfile))
            )
        os.chmod(path, 0o700)

    def user_env(self, env):
        # DIFFERS: LocalProcessSpawner reads the hub machine's passwd; the
        # fake host's users have no account there (the remote env below
        # overrides these anyway).
        env["USER"] = self.user.name
        env["HOME"] = "/home/" + self.user.name
        env["SHELL"] = "/bin/bash"
        return env

    async def start(self):
        host = self.ssh_host
        self.ssh_target = host
        self._stopping = False
        # DIFFERS: LLNL uses one port on both ends of the tunnel. In-process
        # job hosts' processes run on the hub's own machine, so the remote
        # end gets a port of its own.
        local_port = random_port()
        self.remote_port = random_port()
        while self.remote_port == local_port:
            self.remote_port = random_port()
        remote_env = await self.remote_env(host)
        opts = self.ssh_opts(persist=self.ssh_control_persist_time, known_hosts=self.known_hosts)

        # The server binds the remote end of the tunnel (JUPYTERHUB_SERVICE_URL).
        self.ip = "127.0.0.1"
        self.port = self.remote_port
        with tempfile.TemporaryDirectory() as td:
            self.create_start_script(os.path.join(td, self.start_notebook_cmd), remote_env=remote_env)
            self.create_stop_script(os.path.join(td, self.stop_notebook_cmd))
            status, out, err = await self._run(
                "ssh {opts} {host} mkdir -p {path}".format(opts=opts, host=host, path=self.resource_path)
            )
            if status != 0:
                raise RuntimeError(
                    "ssh {} mkdir -p {}: exit {}: {}".format(host, self.resource_path, status, err.strip())
                )
            # DIFFERS: LLNL copies to dirname(resource_path) and then runs
            # the script from resource_path; the stand-in copies where it runs.
            files = " ".join(shlex.quote(os.path.join(td, f)) for f in sorted(os.listdir(td)))
            status, out, err = await self._run(
                "scp {opts} {files} {host}:{target_dir}/".format(
                    opts=opts, files=files, host=host, target_dir=self.resource_path
                )
            )
            text = out + err
            if "No such file or directory" in text:
                raise IOError("No such file or directory: {}".format(text.strip()))
            if "Could not resolve hostname" in text:
                raise RuntimeError("Could not resolve hostname {}".format(host))
            if status != 0:
                # DIFFERS: LLNL's pexpect only looks for the two texts above
                # and carries on otherwise; the stand-in stops here and says
                # why (a copy that failed leaves nothing to start).
                raise RuntimeError("scp to {}:{}: exit {}: {}".format(host, self.resource_path, status, text.strip()))
            self.log.info("Copied resources for {} to {}".format(self.user.name, host))

        cmd = "ssh {opts} -o ExitOnForwardFailure=yes -L {port}:{ip}:{rport} {host} {cmd}".format(
            ip="127.0.0.1",
            port=local_port,
            rport=self.remote_port,
            opts=opts,
            host=host,
            cmd=os.path.join(self.resource_path, self.start_notebook_cmd),
        )
        self.log.info("Starting the notebook through the tunnel: %s", cmd)
        self.proc = subprocess.Popen(
            shlex.split(cmd),
            env=dict(os.environ),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        # The hub reaches the server through the local end of the tunnel.
        self.port = local_port
        return ("127.0.0.1", local_port)

    async def poll(self):
        status = await super().poll()
        if status is not None or getattr(self, "_stopping", False):
            return status
        from jupyterhub.utils import wait_for_http_server

        url = "http://127.0.0.1:{}".format(self.port)
        try:
            await wait_for_http_server(url, timeout=self.reach_timeout)
        except Exception as e:
            self.log.warning("Unable to reach {}'s server: {}".format(self.user.name, e))
            return 1
        return None

    async def stop(self, now=False):
        self._stopping = True
        host = getattr(self, "ssh_target", "") or self.ssh_host
        self.log.info(
            "Stopping user {}'s notebook at port {} on host {}".format(self.user.name, self.port, host)
        )
        opts = self.ssh_opts(known_hosts=self.known_hosts)
        try:
            status, out, err = await self._run(
                "ssh {opts} {host} {cmd}".format(
                    opts=opts, host=host, cmd=os.path.join(self.resource_path, self.stop_notebook_cmd)
                )
            )
            if status != 0:
                self.log.warning("stop-notebook on %s: exit %s: %s", host, status, err.strip())
        except Exception as e:
            self.log.warning("stop-notebook on %s: %s", host, e)
        if self.pid:
            await super().stop(now=now)
        # End the ControlPersist master so that nothing outlives the server.
        try:
            await self._run("ssh {opts} -O exit {host}".format(opts=opts, host=host), timeout=10)
        except Exception:
            pass
