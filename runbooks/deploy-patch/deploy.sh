#!/bin/sh
# deploy.sh: the steps of deploy-patch.yaml, kept in one script so that the runbook and
# tests/integration/test_examples.sh run exactly the same commands.
#
# Usage: deploy.sh prepare TARGET            copy the bundled app to TARGET if it is absent
#        deploy.sh backup TARGET             copy TARGET to TARGET.bak (replacing an old one)
#        deploy.sh apply TARGET [PATCH]      apply PATCH (default: bundled fix.patch) with -p1
#        deploy.sh verify TARGET [SUMS]      sha256sum -c SUMS (default: bundled expected.sha256)
#        deploy.sh restore TARGET            put TARGET.bak back in place of TARGET
#        deploy.sh cleanup TARGET            remove TARGET.bak once the deploy is verified
set -eu

prog=deploy.sh
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

die() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 1
}

[ $# -ge 2 ] || die "usage: deploy.sh prepare|backup|apply|verify|restore|cleanup TARGET [FILE]"
cmd=$1
target=$2
arg=${3:-}

# TARGET is removed and replaced by restore: insist on an absolute path that is not a
# top-level directory, so a typo cannot replace / or /etc.
while :; do
	case $target in
	?*/) target=${target%/} ;;
	*) break ;;
	esac
done
case $target in
/*/*) ;;
/*) die "target '$target' is a top-level directory; use a dedicated directory such as /tmp/runseal-demo/app" ;;
*) die "target '$target' must be an absolute path" ;;
esac
case $target in
*/../* | */.. | */./* | */.) die "target '$target' must not contain '.' or '..' components" ;;
esac
bak=$target.bak

case $cmd in
prepare)
	if [ -d "$target" ]; then
		echo "$target exists; deploying onto it"
		exit 0
	fi
	[ ! -e "$target" ] || die "$target exists and is not a directory"
	mkdir -p -- "$(dirname -- "$target")"
	# Copy beside the target and rename, so an interrupted copy never looks like an app.
	rm -rf -- "$target.new"
	cp -a -- "$here/app" "$target.new"
	mv -- "$target.new" "$target"
	echo "copied the bundled app to $target"
	;;
backup)
	[ -d "$target" ] || die "$target is not a directory; run prepare first"
	rm -rf -- "$bak" "$bak.new"
	cp -a -- "$target" "$bak.new"
	mv -- "$bak.new" "$bak"
	echo "backed up $target to $bak"
	;;
apply)
	p=${arg:-$here/fix.patch}
	[ -r "$p" ] || die "patch file '$p' is missing or unreadable"
	[ -d "$target" ] || die "$target is not a directory; run prepare first"
	# A second run finds the patch applied already: that is success, not a conflict.
	if patch -p1 -R --dry-run -s -f -d "$target" <"$p" >/dev/null 2>&1; then
		echo "$p is already applied to $target; nothing to do"
		exit 0
	fi
	# Dry run first: a patch that does not apply cleanly must leave the target untouched.
	if ! patch -p1 -N --dry-run -f -d "$target" <"$p"; then
		die "$p does not apply cleanly to $target; nothing was changed"
	fi
	patch -p1 -N -f --no-backup-if-mismatch -d "$target" <"$p"
	;;
verify)
	sums=${arg:-$here/expected.sha256}
	[ -r "$sums" ] || die "checksum file '$sums' is missing or unreadable"
	case $sums in
	/*) ;;
	*) sums=$(pwd)/$sums ;;
	esac
	cd -- "$target" || die "cannot enter $target"
	sha256sum --strict -c -- "$sums" || die "$target does not match $sums"
	;;
restore)
	[ -d "$bak" ] || die "no backup at $bak; cannot restore $target"
	rm -rf -- "$target"
	mv -- "$bak" "$target"
	echo "restored $target from $bak"
	;;
cleanup)
	rm -rf -- "$bak" "$bak.new" "$target.new"
	echo "removed the backup $bak"
	;;
*) die "unknown command '$cmd': expected prepare, backup, apply, verify, restore or cleanup" ;;
esac
