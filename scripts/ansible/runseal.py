# runseal callback plugin for Ansible: a run per play, a step per task, in the runseal
# daemon; the tasks' commands join them through runseal-sh. Standard library only.
#
# Enable it (ansible.cfg):
#   [defaults]
#   callback_plugins = /usr/local/share/runseal/ansible
#   callbacks_enabled = runseal
# and make the hosts' shell runseal-sh, so that every command of a task is traced as part
# of the task's step (for connection: local; a remote host runs its own daemon):
#   ansible_shell_executable: /usr/local/bin/runseal-sh
#
# The plugin sets RUNSEAL_RUN and RUNSEAL_STEP_SEQ for the workers Ansible forks per task;
# runseal-sh reads them. RUNSEAL_SOCKET chooses the daemon's socket. Without a daemon the
# plugin warns once and does nothing (runseal-sh then refuses to run the commands untraced).
import json
import os
import socket
import struct

try:
    from ansible.plugins.callback import CallbackBase
except ImportError:  # for the tests: the plugin is plain Python apart from this base
    CallbackBase = object

DOCUMENTATION = """
    name: runseal
    type: notification
    short_description: record each play as a runseal run and each task as a step
    description:
      - Opens a run in the runseal daemon per play and a step per task, so that the
        commands the tasks run (through runseal-sh) are traced and attributed to them.
    requirements:
      - a running `runseal daemon`, and ansible_shell_executable set to runseal-sh
"""

SOCKET_DEFAULT = "/run/runseal/runseal.sock"
FRAME_MAX = 16384


class RunsealError(Exception):
    pass


class Conn:
    """One connection to the daemon, speaking docs/PROTOCOL.md (version 1)."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(path)
        self.call("hello", client="ansible-runseal")

    def _recv(self, n):
        b = b""
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            if not chunk:
                raise RunsealError("the daemon closed the connection")
            b += chunk
        return b

    def call(self, op, **fields):
        body = json.dumps(dict(v=1, op=op, **fields)).encode()
        if len(body) > FRAME_MAX:
            raise RunsealError(f"{op} request larger than {FRAME_MAX} bytes")
        self.s.sendall(struct.pack(">I", len(body)) + body)
        (n,) = struct.unpack(">I", self._recv(4))
        if not 0 < n <= FRAME_MAX:
            raise RunsealError("bad frame from the daemon")
        reply = json.loads(self._recv(n))
        if not reply.get("ok"):
            raise RunsealError(f"{op}: {reply.get('error')}: {reply.get('message')}")
        return reply

    def close(self):
        self.s.close()


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "runseal"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        if CallbackBase is not object:
            super().__init__(*args, **kwargs)
        self.conn = None
        self.disabled = False
        self.playbook = None
        self.run = None
        self.step = None
        self.step_failed = self.step_ran = False
        self.play_failed = False

    # ---- the daemon -----------------------------------------------------------------
    def _warn(self, msg):
        disp = getattr(self, "_display", None)
        if disp:
            disp.warning(f"runseal: {msg}")
        else:
            print(f"[WARNING]: runseal: {msg}")

    def _call(self, op, **fields):
        if self.disabled:
            return None
        try:
            if not self.conn:
                self.conn = Conn(os.environ.get("RUNSEAL_SOCKET") or SOCKET_DEFAULT)
            return self.conn.call(op, **fields)
        except (OSError, RunsealError, ValueError) as e:
            self._warn(f"{e}; runs are not recorded from here on")
            self.disabled = True
            return None

    def _end_step(self):
        if self.run and self.step:
            status = "failed" if self.step_failed else ("ok" if self.step_ran else "skipped")
            self._call("step_end", run=self.run, step=self.step, status=status)
        self.step = None
        os.environ.pop("RUNSEAL_STEP_SEQ", None)

    def _end_play(self):
        self._end_step()
        if self.run:
            self._call("end", run=self.run, status="failed" if self.play_failed else "ok")
        self.run = None
        os.environ.pop("RUNSEAL_RUN", None)

    # ---- Ansible's events -----------------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        self.playbook = getattr(playbook, "_file_name", None)

    def v2_playbook_on_play_start(self, play):
        self._end_play()
        name = play.get_name().strip() or "ansible"
        r = self._call("begin", runbook=name[:256], client="ansible-runseal",
                       trigger={"tool": "ansible", "playbook": str(self.playbook or ""),
                                "play": name[:256]})
        if r:
            self.run = r["run"]
            self.play_failed = False
            os.environ["RUNSEAL_RUN"] = self.run

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._end_step()
        if not self.run:
            return
        name = task.get_name().strip() or "task"
        r = self._call("step", run=self.run, name=name[:256])
        if r:
            self.step = r["step"]
            self.step_failed = self.step_ran = False
            os.environ["RUNSEAL_STEP_SEQ"] = str(self.step)

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_runner_on_ok(self, result, **kwargs):
        self.step_ran = True

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self.step_ran = True
        self.step_failed = True
        if not ignore_errors:
            self.play_failed = True

    def v2_runner_on_unreachable(self, result):
        self.v2_runner_on_failed(result)

    def v2_playbook_on_stats(self, stats):
        self._end_play()
        if self.conn:
            self.conn.close()
            self.conn = None
