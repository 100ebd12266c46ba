#!/bin/bash
# Smoke test of the example runbooks' scripts, without runseal: demo-service/demo-web and the
# deploy-patch commands, exactly as the runbooks call them. When python3-yaml is installed, the
# runbooks themselves are also run step by step with the runner's template rules.
#
# Run as root from the repository root or anywhere: tests/integration/test_examples.sh
# Prints one final line "N passed, M failed, K skipped" and exits non-zero if anything failed.
set -u

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
svc=$root/scripts/demo-service
web=$root/scripts/demo-web
deploy=$root/runbooks/deploy-patch/deploy.sh
# The same environment runseal gives a step: the scripts must not rely on anything else.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8

tmp=$(mktemp -d /tmp/runseal-examples.XXXXXX) || exit 1
export RUNSEAL_DEMO_DIR=$tmp/demo
blocker_pid=

cleanup() {
	local d pid
	[ -n "$blocker_pid" ] && kill "$blocker_pid" 2>/dev/null
	# Kill every service this test started, even when a test failed half-way.
	for d in "$RUNSEAL_DEMO_DIR"/*/; do
		[ -f "$d/pid" ] || continue
		pid=$(cat "$d/pid" 2>/dev/null)
		[ -n "$pid" ] && kill "$pid" 2>/dev/null
	done
	rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
skipped=0
ok() {
	passed=$((passed + 1))
	echo "ok   $1"
}
bad() {
	failed=$((failed + 1))
	echo "FAIL $1"
	[ -z "${2:-}" ] || printf '     %s\n' "$2"
}
# expect DESC WANT_RC CMD...: CMD's output is kept in $out for further checks.
expect() {
	local desc=$1 want=$2 rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$desc"
	else
		bad "$desc" "exit $rc, expected $want: $(printf '%s' "$out" | tail -3 | tr '\n' ' ')"
	fi
}
# check DESC CMD...: passes when CMD succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else bad "$desc"; fi
}
not() {
	! "$@"
}
# contains DESC TEXT: checks the output of the last expect.
contains() {
	case $out in
	*"$2"*) ok "$1" ;;
	*) bad "$1" "output lacks '$2': $(printf '%s' "$out" | tail -3 | tr '\n' ' ')" ;;
	esac
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

key_hash() {
	sha256sum <"$1" | cut -c1-64
}

[ "$(id -u)" -eq 0 ] || echo "warning: not running as root; runbooks are meant to run as root" >&2

port=$(free_port)
port2=$(free_port)
name=ex-web

# ---- demo-service: argument checks
expect "invalid name is refused with exit 2" 2 "$svc" start 'Bad_Name'
contains "invalid name message names the problem" "invalid service name"
expect "path traversal in name is refused" 2 "$svc" status '../x'
expect "unknown subcommand exits 2" 2 "$svc" frobnicate "$name"
expect "bad port is refused" 2 "$svc" start "$name" --port 99999
expect "keyfile prints the key path" 0 "$svc" keyfile "$name"
check "keyfile path is in the state dir" [ "$out" = "$RUNSEAL_DEMO_DIR/$name/key" ]

# ---- start, status, check
start_s=$(date +%s%N)
# Through a pipe: start must not keep the caller's stdout open (the service daemonizes).
out=$(timeout 15 "$svc" start "$name" --port "$port" --version 2.0.0 2>&1 | cat)
elapsed=$((($(date +%s%N) - start_s) / 1000000))
case $out in
*"started $name"*) ok "start reports the service started" ;;
*) bad "start reports the service started" "$out" ;;
esac
check "start returns through a pipe promptly (${elapsed} ms)" [ "$elapsed" -lt 6000 ]
check "state dir has mode 0700" [ "$(stat -c %a "$RUNSEAL_DEMO_DIR/$name")" = 700 ]
pid=$(cat "$RUNSEAL_DEMO_DIR/$name/pid" 2>/dev/null)
check "pid file names a live process" kill -0 "${pid:-0}"
# Double fork: the service is in a new session (detached from ours) but does not lead it.
session_of() {
	# Field 6 of /proc/PID/stat, counted after the parenthesised command name.
	sed -n 's/^.*) [A-Za-z] [0-9-]* [0-9-]* \([0-9-]*\) .*/\1/p' "/proc/$1/stat" 2>/dev/null
}
sid=$(session_of "${pid:-0}")
mysid=$(session_of $$)
check "service runs in a session of its own" [ "${sid:-$mysid}" != "$mysid" ]
expect "start when running exits 0" 0 "$svc" start "$name"
contains "start when running says so" "already running"
expect "status when running exits 0" 0 "$svc" status "$name"
contains "status shows the version" "version 2.0.0"
expect "check exits 0" 0 "$svc" check "$name"
contains "check reports healthy without a key" "key sha256 none"
body=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
	"http://127.0.0.1:$port/health")
expected='{"status": "ok", "service": "ex-web", "version": "2.0.0", "key_sha256": null}'
check "/health JSON" [ "$body" = "$expected" ]

# ---- port already in use
expect "start on a busy port fails" 1 "$svc" start other-web --port "$port"
contains "busy port error is clear" "already in use"

# ---- credential rotation, as rotate-credential.yaml does it
key=$("$svc" keyfile "$name")
(umask 077 && openssl rand -hex -out "$key.new" 32)
check "generated key has mode 0600" [ "$(stat -c %a "$key.new")" = 600 ]
: >"$key.absent"
mv -f -- "$key.new" "$key"
h1=$(key_hash "$key")
expect "reload exits 0" 0 "$svc" reload "$name"
expect "check sees the new key after reload" 0 "$svc" check "$name" --expect-key-sha256 "$h1"
expect "check with a wrong key hash fails" 1 "$web" probe --name "$name" --port "$port" \
	--expect-key-sha256 "$(printf '%064d' 0)" --wait 0.5
expect "check refuses a malformed hash" 2 "$svc" check "$name" --expect-key-sha256 nothex
ln -f -- "$key" "$key.old"
(umask 077 && openssl rand -hex -out "$key.new" 32)
mv -f -- "$key.new" "$key"
h2=$(key_hash "$key")
"$svc" reload "$name" >/dev/null
expect "second rotation is served" 0 "$svc" check "$name" --expect-key-sha256 "$h2"
# Rollback path of rotate-credential: restore-key puts key.old back.
mv -f -- "$key.old" "$key"
"$svc" reload "$name" >/dev/null
expect "restored key is served after reload" 0 "$svc" check "$name" --expect-key-sha256 "$h1"
# An unreadable key must not make the service drop the one it has.
mv -- "$key" "$key.keep"
mkdir -- "$key"
"$svc" reload "$name" >/dev/null
sleep 0.3
expect "unreadable key on reload keeps the old key" 0 "$svc" check "$name" --expect-key-sha256 "$h1"
check "unreadable key is logged" grep -q "keeping the previous key" "$RUNSEAL_DEMO_DIR/$name/log"
rmdir -- "$key"
mv -- "$key.keep" "$key"
check "the key itself never reaches the log" not grep -qF "$(cat "$key")" "$RUNSEAL_DEMO_DIR/$name/log"

# ---- restart, and the rollback of restart-service.yaml
expect "stop exits 0" 0 "$svc" stop "$name"
contains "stop reports the pid" "stopped $name"
# Not kill -0: the exited daemon may linger as a zombie until its adoptive parent reaps it.
check "service no longer listens after stop" not python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null
check "service process has exited after stop" not grep -qs demo-web "/proc/${pid:-0}/cmdline"
check "SIGTERM exit is clean (logged)" grep -q "INFO stopped" "$RUNSEAL_DEMO_DIR/$name/log"
check "pid file removed on exit" [ ! -e "$RUNSEAL_DEMO_DIR/$name/pid" ]
expect "stop when stopped exits 0" 0 "$svc" stop "$name"
contains "stop when stopped says so" "not running"
expect "status when stopped exits 3" 3 "$svc" status "$name"
expect "reload when stopped fails" 1 "$svc" reload "$name"
expect "restart: start again" 0 "$svc" start "$name"
expect "restart: check" 0 "$svc" check "$name" --expect-key-sha256 "$h1"
"$svc" stop "$name" >/dev/null
# Someone else takes the new port: the start fails and --previous brings back the old port.
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)' "$port2" &
blocker_pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
	python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
		"$port2" 2>/dev/null && break
	sleep 0.1
done
expect "start on a port taken by another process fails" 1 "$svc" start "$name" --port "$port2"
expect "rollback: start --previous" 0 "$svc" start "$name" --previous
expect "rollback: previous port answers" 0 "$web" probe --name "$name" --port "$port" --wait 2
expect "another service on the port is not accepted" 1 "$web" probe --name "$name" --port "$port2" --wait 0.3
kill "$blocker_pid" 2>/dev/null
wait "$blocker_pid" 2>/dev/null
blocker_pid=
expect "final stop" 0 "$svc" stop "$name"

# ---- deploy-patch commands
target=$tmp/deploy/app
expect "deploy: relative target is refused" 1 "$deploy" prepare relative/app
expect "deploy: top-level target is refused" 1 "$deploy" prepare /etc
expect "deploy: prepare copies the app" 0 "$deploy" prepare "$target"
check "deploy: app is in place" [ -f "$target/app.conf" ]
expect "deploy: backup" 0 "$deploy" backup "$target"
expect "deploy: apply" 0 "$deploy" apply "$target" ""
expect "deploy: verify" 0 "$deploy" verify "$target" ""
check "deploy: patch changed the config" grep -q '^tls_verify = true$' "$target/app.conf"
expect "deploy: apply again is a no-op" 0 "$deploy" apply "$target"
contains "deploy: apply again says already applied" "already applied"
check "deploy: no .orig/.rej left" [ -z "$(find "$target" -name '*.orig' -o -name '*.rej')" ]
expect "deploy: cleanup" 0 "$deploy" cleanup "$target"
check "deploy: backup removed" [ ! -e "$target.bak" ]
# Failure path: a tampered file fails verify and restore brings back the backup.
"$deploy" backup "$target" >/dev/null
echo tampered >>"$target/README"
expect "deploy: verify detects a modified file" 1 "$deploy" verify "$target"
expect "deploy: restore" 0 "$deploy" restore "$target"
expect "deploy: verify after restore" 0 "$deploy" verify "$target"
expect "deploy: restore without backup fails" 1 "$deploy" restore "$target"
# A patch that does not apply leaves the target untouched.
printf -- '--- a/VERSION\n+++ b/VERSION\n@@ -1 +1 @@\n-9.9.9\n+9.9.10\n' >"$tmp/bad.patch"
before=$(cd "$target" && sha256sum ./*)
expect "deploy: conflicting patch fails" 1 "$deploy" apply "$target" "$tmp/bad.patch"
check "deploy: conflicting patch changed nothing" [ "$(cd "$target" && sha256sum ./*)" = "$before" ]
expect "deploy: missing patch file is reported" 1 "$deploy" apply "$target" "$tmp/none.patch"
contains "deploy: missing patch message names the file" "$tmp/none.patch"

# ---- the runbooks themselves, step by step (needs python3-yaml, as runseal is not used here)
if python3 -c 'import yaml' 2>/dev/null; then
	run_runbook() {
		python3 - "$@" <<'EOF'
import os, re, subprocess, sys, yaml
path = os.path.abspath(sys.argv[1])
rb = yaml.safe_load(open(path))
vals = {k: str(v.get("default", "")) for k, v in (rb.get("params") or {}).items()}
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    vals[k] = v
vals.update(runbook_dir=os.path.dirname(path), run_id="test-examples")
env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "RUNSEAL_DEMO_DIR") if k in os.environ}
env.update({"RUNSEAL_PARAM_" + k: v for k, v in vals.items()}, RUNSEAL_RUN_ID="test-examples")
names = set()
def run(step):
    assert re.fullmatch(r"[A-Za-z0-9._-]+", step["name"]) and step["name"] not in names, step["name"]
    names.add(step["name"])
    e = dict(env, RUNSEAL_STEP=step["name"])
    e.update({k: re.sub(r"\{\{(\w+)\}\}", lambda m: vals[m.group(1)], v)
              for k, v in (step.get("env") or {}).items()})
    cmd = re.sub(r"\{\{(\w+)\}\}", lambda m: '"$RUNSEAL_PARAM_%s"' % m.group(1), step["run"])
    return subprocess.run(["sh", "-c", cmd], env=e, timeout=60).returncode == 0
for s in rb["steps"]:
    if not run(s):
        print("step %s failed" % s["name"])
        if s.get("on_failure") == "rollback":
            for r in rb.get("rollback") or []:
                run(r)
        sys.exit(1)
EOF
	}
	rbs=$root/runbooks
	# The runbooks use the default port 18080, which may be taken on this machine: a service
	# started once on a free port keeps that port through the runbooks' starts.
	expect "prepare rb-web on a free port" 0 "$svc" start rb-web --port "$(free_port)"
	expect "runbook restart-service" 0 run_runbook "$rbs/restart-service.yaml" service=rb-web
	expect "runbook restart-service again" 0 run_runbook "$rbs/restart-service.yaml" service=rb-web
	expect "runbook rotate-credential" 0 run_runbook "$rbs/rotate-credential.yaml" service=rb-web
	h=$(key_hash "$("$svc" keyfile rb-web)")
	expect "runbook rotate-credential again" 0 run_runbook "$rbs/rotate-credential.yaml" service=rb-web
	check "second rotation changed the key" [ "$(key_hash "$("$svc" keyfile rb-web)")" != "$h" ]
	case $out in
	*demo-token-not-secret*) bad "the api_token value is not printed" ;;
	*) ok "the api_token value is not printed" ;;
	esac
	leftovers=$(find "$RUNSEAL_DEMO_DIR/rb-web" -name 'key.*')
	check "rotation leaves no key.* temp files" [ -z "$leftovers" ]
	expect "runbook deploy-patch" 0 run_runbook "$rbs/deploy-patch.yaml" target="$tmp/rb-app"
	expect "runbook deploy-patch again" 0 run_runbook "$rbs/deploy-patch.yaml" target="$tmp/rb-app"
	echo tampered >>"$tmp/rb-app/README"
	expect "runbook deploy-patch rolls back a failed verify" 1 run_runbook "$rbs/deploy-patch.yaml" \
		target="$tmp/rb-app"
	contains "deploy-patch rollback ran" "restored $tmp/rb-app"
	"$svc" stop rb-web >/dev/null
else
	skipped=$((skipped + 1))
	echo "skip runbook runs: python3-yaml is not installed for $(command -v python3)"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
