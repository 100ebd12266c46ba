# runseal: `make` builds ./runseal, `make check` runs every test (integration tests need root).
# CFLAGS, CPPFLAGS and LDFLAGS are the user's (a distribution's, or `make CFLAGS=-O0`); the
# flags the build cannot do without are in RS_CFLAGS and are added to them.
CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
ARCH     := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
VERSION  := 0.1.0
B        := build

PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DATADIR  ?= $(PREFIX)/share/runseal
DOCDIR   ?= $(PREFIX)/share/doc/runseal
INSTALL  ?= install

CFLAGS   ?= -O2 -g
RS_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wno-format-truncation \
	     -DRUNSEAL_VERSION=\"$(VERSION)\" -I$(B) -Ibpf -Iuser -MMD -MP
ALL_CFLAGS = $(CPPFLAGS) $(RS_CFLAGS) $(CFLAGS)
LDLIBS   := -lbpf -lelf -lz -lyaml -lcrypto -larchive -pthread
TESTLIBS := -lyaml -lcrypto -lcmocka -lz

# Pipeline order: runbook -> runner -> (bpf) -> collector -> record -> sinks.
USER_SRCS := user/main.c user/util.c user/json.c user/runbook.c user/redact.c user/decode.c \
	     user/record.c user/collector.c user/runner.c user/progress.c user/keys.c \
	     user/logfmt.c user/sealer.c user/verify.c user/guard.c
# Modules without BPF or I/O side effects, linked into every unit test.
PURE := user/util.c user/json.c user/redact.c user/decode.c user/keys.c user/logfmt.c
# The one table of record and entry kinds and their fields (writers and readers).
USER_SRCS += user/schema.c
PURE += user/schema.c
# The SHA-256 of each executed file, for exec records (called by the collector).
USER_SRCS += user/digest.c
# Reading the log back: the reader, the reports (user/report/) and their commands (user/cli/).
USER_SRCS += user/trigger.c user/logread.c user/bundle.c user/report/model.c user/report/runs.c \
	     user/report/escape.c user/report/normalize.c user/report/doc.c user/report/report.c \
	     user/report/render_md.c user/report/render_html.c user/report/render_json.c \
	     user/report/diff.c user/report/replay.c user/report/export.c user/cli/common.c user/cli/runs.c \
	     user/cli/report.c user/cli/replay.c user/cli/diff.c \
	     user/cli/evidence.c user/cli/export.c user/cli/verify.c user/cli/show.c \
	     user/cli/readlog.c
# The daemon (user/daemon/) and the engine it owns (user/engine/).
DAEMON_SRCS := user/daemon/proto.c user/daemon/config.c user/daemon/client.c \
	       user/daemon/server.c user/cli/daemon.c user/engine/engine.c
USER_SRCS += $(DAEMON_SRCS)
USER_OBJS := $(patsubst user/%.c,$(B)/%.o,$(USER_SRCS))
PURE_OBJS := $(patsubst user/%.c,$(B)/%.o,$(PURE))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/%,$(wildcard tests/unit/test_*.c))
HELPERS := $(B)/actions $(B)/forge $(B)/storm $(B)/attack

# A recipe that fails leaves no half-written target behind for the next make to trust.
.DELETE_ON_ERROR:
# Kept, so that a second make finds nothing to do.
.SECONDARY: $(patsubst %,%.o,$(UNIT_TESTS))

all: runseal $(HELPERS) $(B)/runseal.1

$(B):
	mkdir -p $@

$(B)/vmlinux.h: | $(B)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(B)/runseal.bpf.o: bpf/runseal.bpf.c bpf/runseal.h $(B)/vmlinux.h
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) -I$(B) -Ibpf -c $< -o $@

$(B)/runseal.skel.h: $(B)/runseal.bpf.o
	$(BPFTOOL) gen skeleton $< name runseal_bpf > $@.tmp && mv $@.tmp $@

# The skeleton is generated: the first build must make it before anything includes it.
$(B)/collector.o: $(B)/runseal.skel.h

$(B)/%.o: user/%.c | $(B)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

runseal: $(USER_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(B)/actions $(B)/storm: $(B)/%: tests/helpers/%.c | $(B)
	$(CC) $(ALL_CFLAGS) -pthread $(LDFLAGS) $< -o $@

$(B)/attack: tests/helpers/attack.c | $(B)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< -o $@ -lbpf

$(B)/forge.o: tests/helpers/forge.c | $(B)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/forge: $(B)/forge.o $(PURE_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ -o $@ -lcrypto -lz

# Each unit test links its module and the pure modules it may use.
$(B)/test_%.o: tests/unit/test_%.c | $(B)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/test_%: $(B)/test_%.o $(B)/%.o $(PURE_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(sort $^) -o $@ $(TESTLIBS)

# The verifier's rules, and its two commands (show reads through logread).
$(B)/test_verify: $(B)/test_verify.o $(B)/verify.o $(B)/cli/verify.o $(B)/cli/show.o \
		  $(B)/logread.o $(B)/bundle.o $(B)/report/escape.o $(B)/cli/readlog.o \
		  $(B)/daemon/client.o $(B)/daemon/proto.o $(B)/daemon/config.o $(PURE_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(sort $^) -o $@ $(TESTLIBS) -larchive

# The report escapers and normalisation live under user/report/.
$(B)/test_digest: $(B)/test_digest.o $(B)/digest.o $(B)/record.o $(PURE_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(sort $^) -o $@ $(TESTLIBS)

$(B)/test_render: $(B)/test_render.o $(B)/report/escape.o $(B)/report/normalize.o $(PURE_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(sort $^) -o $@ $(TESTLIBS)

$(B)/test_proto: $(B)/test_proto.o $(B)/daemon/proto.o $(B)/daemon/config.o $(PURE_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(sort $^) -o $@ $(TESTLIBS)

# The man page is made from the program's own --help texts, so the two cannot disagree.
$(B)/runseal.1: runseal scripts/mkman
	python3 scripts/mkman ./runseal $(VERSION) > $@

# Coverage-guided fuzzing of every parser of outside input, each bounded in time: segments
# and the verifier, runbooks and params, HEAD, key files. Seeds (and kept crashes) are in
# tests/fuzz/corpus-NAME (the segment target's in tests/fuzz/corpus).
FUZZ_SECONDS ?= 60
FUZZ_CC      := $(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -Iuser -Ibpf
FUZZ_TARGETS := segment runbook head keys
FUZZ_VERIFY  := user/logfmt.c user/verify.c user/keys.c user/util.c user/json.c user/schema.c
$(B)/fuzz_segment: tests/fuzz/fuzz_segment.c $(FUZZ_VERIFY) $(wildcard user/*.h) | $(B)
	$(FUZZ_CC) $(filter %.c,$^) -o $@ -lcrypto -lz
$(B)/fuzz_head: tests/fuzz/fuzz_head.c user/sealer.c $(FUZZ_VERIFY) $(wildcard user/*.h) | $(B)
	$(FUZZ_CC) $(filter %.c,$^) -o $@ -lcrypto -lz
$(B)/fuzz_runbook: tests/fuzz/fuzz_runbook.c user/runbook.c $(wildcard user/*.h) | $(B)
	$(FUZZ_CC) $(filter %.c,$^) -o $@ -lyaml -lcrypto
$(B)/fuzz_keys: tests/fuzz/fuzz_keys.c user/keys.c user/util.c $(wildcard user/*.h) | $(B)
	$(FUZZ_CC) $(filter %.c,$^) -o $@ -lcrypto

fuzz: $(patsubst %,$(B)/fuzz_%,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
		seeds=tests/fuzz/corpus-$$t; [ $$t = segment ] && seeds=tests/fuzz/corpus; \
		mkdir -p $(B)/fuzz-corpus-$$t; echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; \
		$(B)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 \
			$(B)/fuzz-corpus-$$t $$seeds > $(B)/fuzz_$$t.log 2>&1 || \
			{ tail -40 $(B)/fuzz_$$t.log; exit 1; }; tail -1 $(B)/fuzz_$$t.log; done

# The unit and integration tests again with ASan and UBSan, in build-san/ so that the normal
# build is untouched: any report stops the process (halt_on_error) and fails its test.
SAN_DIR   := build-san
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# Reports also go to files: a test that does not look at the exit status still fails.
SAN_LOG   := $(abspath $(SAN_DIR))/report
SAN_ENV   := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:log_path=$(SAN_LOG) \
	     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(SAN_LOG)
$(B)/runseal: $(USER_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

check-sanitize: all
	CFLAGS="$(SAN_FLAGS)" $(MAKE) --no-print-directory B=$(SAN_DIR) $(SAN_DIR)/runseal \
		$(patsubst $(B)/%,$(SAN_DIR)/%,$(UNIT_TESTS))
	rm -f $(SAN_LOG).*
	@for t in $(patsubst $(B)/%,$(SAN_DIR)/%,$(UNIT_TESTS)); do echo "== $$t"; \
		$(SAN_ENV) ./$$t > $$t.log 2>&1 || { cat $$t.log; exit 1; }; tail -1 $$t.log; done
	@rc=0; for t in tests/integration/test_*.py; do echo "== $$t (sanitized)"; \
		$(SAN_ENV) RUNSEAL=$(abspath $(SAN_DIR))/runseal timeout 900 python3 $$t || rc=1; done; \
	if ls $(SAN_LOG).* > /dev/null 2>&1; then cat $(SAN_LOG).*; exit 1; fi; \
	echo "check-sanitize: no sanitizer reports"; exit $$rc

# The JSON scanner, escapers and normalisation the reports use, on arbitrary bytes.
.PHONY: fuzz-json
fuzz-json: | $(B)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -Iuser tests/fuzz/fuzz_json.c \
		user/json.c user/util.c user/report/escape.c user/report/normalize.c \
		-o $(B)/fuzz_json
	mkdir -p $(B)/fuzz-json-corpus
	$(B)/fuzz_json -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 $(B)/fuzz-json-corpus \
		tests/fuzz/corpus

# The daemon's protocol decoder, the same way.
fuzz-proto: | $(B)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -Iuser -Ibpf -Iuser/daemon \
		tests/fuzz/fuzz_proto.c user/daemon/proto.c user/json.c user/util.c -o $(B)/fuzz_proto
	mkdir -p $(B)/fuzz-proto-corpus
	$(B)/fuzz_proto -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 \
		$(B)/fuzz-proto-corpus tests/fuzz/proto-corpus

unit: $(UNIT_TESTS)
	@for t in $(UNIT_TESTS); do echo "== $$t"; ./$$t || exit 1; done

check: all $(UNIT_TESTS)
	tests/run-all

# The main job on the built-in example: restart the demo service, then what a user came for:
# the run replayed step by step, the verify result, an HTML report and an evidence bundle.
# (Every record as JSON: add --events - to the run, or `runseal show`.)
DEMO_LOG  ?= /var/lib/runseal/log
DEMO_KEYS ?= /etc/runseal
DEMO_DIRS = --key-dir $(DEMO_KEYS)
demo: all
	./runseal run --log-dir $(DEMO_LOG) $(DEMO_DIRS) runbooks/restart-service.yaml \
		-p service=demo-web --trigger demo="make demo"
	./runseal replay $(DEMO_LOG) last $(DEMO_DIRS) --kind exec,connect
	./runseal verify $(DEMO_LOG) $(DEMO_DIRS)
	./runseal report $(DEMO_LOG) last $(DEMO_DIRS) --format html -o $(B)/demo-report.html
	./runseal evidence $(DEMO_LOG) last $(DEMO_DIRS) -o $(B)/demo-evidence.tar.gz
	@echo "HTML report:     $(B)/demo-report.html"
	@echo "evidence bundle: $(B)/demo-evidence.tar.gz (check it anywhere: runseal verify $(B)/demo-evidence.tar.gz)"

# Side by side with auditd and the bare tracepoint floor; writes docs/benchmarks.*
bench: all
	python3 scripts/bench --out docs

install: runseal $(B)/runseal.1
	$(INSTALL) -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(DATADIR)/runbooks $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0755 runseal $(DESTDIR)$(BINDIR)/runseal
	$(INSTALL) -m 0644 $(B)/runseal.1 $(DESTDIR)$(MANDIR)/man1/runseal.1
	$(INSTALL) -m 0644 runbooks/*.yaml $(DESTDIR)$(DATADIR)/runbooks/
	$(INSTALL) -m 0644 README.md docs/*.md LICENSE $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -d -m 0755 $(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(DATADIR)/ansible
	$(INSTALL) -m 0755 scripts/runseal-sh $(DESTDIR)$(BINDIR)/runseal-sh
	sed 's#/usr/local/bin/runseal#$(BINDIR)/runseal#' scripts/runseal.service \
		> $(DESTDIR)$(SYSTEMDDIR)/runseal.service
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/runseal.service
	$(INSTALL) -m 0644 scripts/ansible/runseal.py $(DESTDIR)$(DATADIR)/ansible/runseal.py
	$(INSTALL) -m 0644 scripts/runseal.conf $(DESTDIR)$(DATADIR)/runseal.conf.example

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/runseal $(DESTDIR)$(MANDIR)/man1/runseal.1
	rm -f $(DESTDIR)$(BINDIR)/runseal-sh $(DESTDIR)$(SYSTEMDDIR)/runseal.service
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)

LINT_C := bpf/*.c bpf/*.h user/*.c user/*.h user/*/*.c user/*/*.h tests/unit/*.c tests/helpers/*.c tests/fuzz/*.c \
	  tests/vectors/*.c
lint:
	clang-format --dry-run -Werror $(LINT_C)
	cppcheck -q --enable=warning,style,performance --error-exitcode=1 --inline-suppr \
		--suppress=missingIncludeSystem -Iuser -Ibpf user/*.c user/*/*.c tests/unit/*.c tests/helpers/*.c \
		tests/fuzz/*.c tests/vectors/*.c
	python3 -m py_compile scripts/bench scripts/mkman tests/integration/*.py
	python3 -m py_compile scripts/ansible/runseal.py
	sh -n scripts/runseal-sh

clean:
	rm -rf $(B) $(SAN_DIR) runseal

# The timer that erases ended epochs' keys when nothing runs (`runseal keys tick`): a
# systemd unit and timer under PREFIX, and a cron line in DATADIR. Installing on the host
# itself (no DESTDIR) also turns it on: the timer where systemd is PID 1, else the cron line
# in /etc/cron.d (cron reads no other place).
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
install: install-keys-tick
uninstall: uninstall-keys-tick
install-keys-tick:
	$(INSTALL) -d -m 0755 $(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(DATADIR)
	sed 's|/usr/local/bin/runseal|$(BINDIR)/runseal|' scripts/runseal-keys-tick.service \
		> $(DESTDIR)$(SYSTEMDDIR)/runseal-keys-tick.service
	$(INSTALL) -m 0644 scripts/runseal-keys-tick.timer $(DESTDIR)$(SYSTEMDDIR)/
	sed 's|/usr/local/bin/runseal|$(BINDIR)/runseal|' scripts/runseal-keys-tick.cron \
		> $(DESTDIR)$(DATADIR)/runseal-keys-tick.cron
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/runseal-keys-tick.service \
		$(DESTDIR)$(DATADIR)/runseal-keys-tick.cron
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload && systemctl enable --now runseal-keys-tick.timer; \
	elif [ -z "$(DESTDIR)" ] && [ -d /etc/cron.d ]; then \
		$(INSTALL) -m 0644 $(DATADIR)/runseal-keys-tick.cron /etc/cron.d/runseal-keys-tick; fi
uninstall-keys-tick:
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now runseal-keys-tick.timer || true; fi
	if [ -z "$(DESTDIR)" ]; then rm -f /etc/cron.d/runseal-keys-tick; fi
	rm -f $(DESTDIR)$(SYSTEMDDIR)/runseal-keys-tick.service \
		$(DESTDIR)$(SYSTEMDDIR)/runseal-keys-tick.timer $(DESTDIR)$(DATADIR)/runseal-keys-tick.cron

.PHONY: all unit check demo lint clean fuzz bench install uninstall install-keys-tick uninstall-keys-tick \
	check-sanitize fuzz-proto

-include $(wildcard $(B)/*.d $(B)/*/*.d)
