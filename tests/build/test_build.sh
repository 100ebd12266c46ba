#!/bin/bash
# The build as a packager uses it, in a copy of the tracked sources (the work tree is not
# touched): the user's CFLAGS/CPPFLAGS/LDFLAGS reach the compiler and the linker next to the
# flags the build needs, a header change rebuilds what includes it (tests too), a parallel
# build from scratch works, a failed recipe leaves no half-written target, and install and
# uninstall honour PREFIX and DESTDIR with a man page made from the --help texts.
# Needs no root. Prints "N passed, M failed, K skipped" last.
set -u
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/runseal-build.XXXXXX) || exit 1
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 130' INT TERM
passed=0
failed=0
skipped=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | tail -15 | sed 's/^/     /'; }
check() { # DESC CMD...
	local d=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then ok "$d"; else bad "$d" "$(cat "$tmp/out")"; fi
}

src=$tmp/src
mkdir "$src"
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$root" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 cp --parents -t "$src")
else
	(cd "$root" && tar --exclude=./build --exclude=./runseal -cf - .) | tar -xf - -C "$src"
fi
m() { make -C "$src" --no-print-directory "$@"; }

# A parallel build from nothing, with a distribution's kind of flags.
check "make -j2 with CFLAGS=-O0, CPPFLAGS and LDFLAGS builds" \
	m -j2 CFLAGS=-O0 CPPFLAGS=-DRS_PACKAGER_TEST LDFLAGS=-Wl,-z,now all
check "the binary built runs" "$src/runseal" version
check "a second make has nothing to do" m -q CFLAGS=-O0 CPPFLAGS=-DRS_PACKAGER_TEST \
	LDFLAGS=-Wl,-z,now all

# What the compiler and linker were given (dry runs of a rebuild).
m -n -B CFLAGS=-O0 CPPFLAGS=-DRS_PACKAGER_TEST LDFLAGS=-Wl,-z,now runseal build/test_logfmt \
	>"$tmp/dry" 2>&1
cc_lines=$(grep -E '^(cc|gcc)\b.* -c user/' "$tmp/dry")
link_line=$(grep -E '^(cc|gcc)\b.* -o runseal ' "$tmp/dry")
if [ -n "$cc_lines" ] && ! echo "$cc_lines" | grep -q -- ' -O2' &&
	! echo "$cc_lines" | grep -vq -- '-O0'; then
	ok "CFLAGS=-O0 replaces the default optimisation"
else
	bad "CFLAGS=-O0 replaces the default optimisation" "$cc_lines"
fi
if [ -n "$cc_lines" ] && ! echo "$cc_lines" | grep -v -- '-Wall -Wextra -Werror' | grep -q . &&
	! echo "$cc_lines" | grep -v -- '-DRS_PACKAGER_TEST' | grep -q .; then
	ok "the needed flags and CPPFLAGS stay on every compile line"
else
	bad "the needed flags and CPPFLAGS stay on every compile line" "$cc_lines"
fi
if echo "$link_line" | grep -q -- '-Wl,-z,now' &&
	grep -E ' -o build/test_logfmt ' "$tmp/dry" | grep -q -- '-Wl,-z,now'; then
	ok "LDFLAGS reach the link lines"
else
	bad "LDFLAGS reach the link lines" "$link_line"
fi

# A header change rebuilds every object that includes it, the unit tests' too.
sleep 1
touch "$src/user/logfmt.h"
m -j2 CFLAGS=-O0 CPPFLAGS=-DRS_PACKAGER_TEST LDFLAGS=-Wl,-z,now all build/test_logfmt \
	build/test_verify >"$tmp/rebuild" 2>&1
for o in build/logfmt.o build/verify.o build/sealer.o build/test_logfmt.o build/test_verify.o; do
	if [ "$src/$o" -nt "$src/user/logfmt.h" ]; then
		ok "touching user/logfmt.h rebuilds $o"
	else
		bad "touching user/logfmt.h rebuilds $o" "$(cat "$tmp/rebuild")"
	fi
done
if grep -q ' -c user/json.c' "$tmp/rebuild"; then
	bad "touching user/logfmt.h leaves json.o alone" "$(cat "$tmp/rebuild")"
else
	ok "touching user/logfmt.h leaves json.o alone"
fi

# A recipe that fails half-way leaves no target that the next make would trust.
rm -f "$src/build/runseal.1"
mv "$src/runseal" "$src/runseal.real"
printf '#!/bin/sh\n[ "$2" = verify ] && { echo partial; exit 1; }\nexec "%s" "$@"\n' \
	"$src/runseal.real" >"$src/runseal"
chmod +x "$src/runseal"
touch "$src/scripts/mkman"
if m build/runseal.1 >"$tmp/out" 2>&1; then
	bad "a failing man page recipe fails make"
elif [ -e "$src/build/runseal.1" ]; then
	bad "a failing man page recipe leaves no build/runseal.1" "$(head -5 "$src/build/runseal.1")"
else
	ok "a failing man page recipe leaves no build/runseal.1"
fi
mv "$src/runseal.real" "$src/runseal"

# The unit tests need no root: as root, run them as nobody in the copy (nobody owns it).
if [ "$(id -u)" -eq 0 ]; then
	if id nobody >/dev/null 2>&1; then
		chown -R nobody "$src"
		chmod 0755 "$tmp"
		check "make unit passes as user nobody" su nobody -s /bin/sh -c \
			"cd '$src' && TMPDIR=/tmp make --no-print-directory CFLAGS=-O0 CPPFLAGS=-DRS_PACKAGER_TEST LDFLAGS=-Wl,-z,now unit"
		chown -R 0:0 "$src"
	else
		skipped=$((skipped + 1))
		echo "skip make unit as nobody: no user nobody (install passwd)"
	fi
fi

# install / uninstall with PREFIX and DESTDIR.
dest=$tmp/dest
check "make install DESTDIR PREFIX" m install DESTDIR="$dest" PREFIX=/usr
man1=$dest/usr/share/man/man1/runseal.1
for f in usr/bin/runseal usr/share/man/man1/runseal.1 usr/share/runseal/runbooks/restart-service.yaml \
	usr/share/doc/runseal/FORMAT.md usr/share/doc/runseal/README.md; do
	check "installed $f" test -s "$dest/$f"
done
check "installed binary is 0755" test "$(stat -c %a "$dest/usr/bin/runseal")" = 755
check "installed binary runs" "$dest/usr/bin/runseal" version
check "nothing is installed outside DESTDIR/PREFIX" \
	test -z "$(cd "$dest" && find . -mindepth 1 -maxdepth 1 ! -name usr)"
if MANWIDTH=100 man -l "$man1" >"$tmp/man.txt" 2>"$tmp/man.err" && [ ! -s "$tmp/man.err" ]; then
	ok "man -l renders the page without warnings"
else
	bad "man -l renders the page without warnings" "$(cat "$tmp/man.err")"
fi
# Every command's usage line of the real --help is on the page.
for c in $("$src/runseal" help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\).*/\1/p'); do
	[ "$c" = help ] || [ "$c" = version ] && continue
	u=$("$src/runseal" help "$c" | head -1 | tr -s ' ')
	if tr -s ' ' <"$tmp/man.txt" | grep -qF -- "$u"; then
		ok "man page has: $u"
	else
		bad "man page has: $u"
	fi
done
# check_with TOOL DESC CMD...: a check that needs TOOL (scripts/install-deps installs it).
check_with() {
	local tool=$1
	shift
	if command -v "$tool" >/dev/null; then
		check "$@"
	else
		skipped=$((skipped + 1))
		echo "skip $1: $tool is not installed"
	fi
}
check_with groff "groff -ww finds nothing to warn about" \
	sh -c "groff -man -ww -z '$man1' 2>&1 | { ! grep .; }"
check_with mandoc "mandoc -Tlint finds no errors or warnings" \
	sh -c "mandoc -Tlint -Wwarning '$man1'"
check "make uninstall DESTDIR PREFIX" m uninstall DESTDIR="$dest" PREFIX=/usr
check "uninstall leaves no runseal file" test -z "$(find "$dest" -name '*runseal*' -o -name '*.md')"

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
