# imgproc: build, test, demo and install.  `make help` lists the targets.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
BUILD     ?= build
CC        ?= cc
RPCGEN    ?= rpcgen

# libsystemd: sd_notify, so a unit of Type=notify knows when the daemons serve.
PKGS      := libtirpc vips sqlite3 libpq libcrypto libsystemd krb5-gssapi
# Recursive (=) so that the flags are read when a recipe runs, after `make deps`.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OPT       ?= -O2 -g
SANITIZE  ?=
CFLAGS    ?=
ALL_CFLAGS = -std=gnu11 $(OPT) $(WARN) $(SANITIZE) $(CPPFLAGS) $(CFLAGS) -D_GNU_SOURCE \
             -DIMGPROC_VERSION='"$(VERSION)"' -I$(BUILD)/gen -Icommon $(PKG_CFLAGS)
# rpcgen's output is not ours to fix: build it without the warnings it trips.
GEN_CFLAGS = -std=gnu11 $(OPT) $(SANITIZE) $(CPPFLAGS) $(CFLAGS) -Wall -Werror \
             -Wno-unused-variable -I$(BUILD)/gen $(PKG_CFLAGS)
LDLIBS     = $(PKG_LIBS) -lpthread -lm
# The client needs no libvips.
CLIENT_LIBS = $(shell pkg-config --libs libtirpc libcrypto krb5-gssapi 2>/dev/null) -lpthread -lm

GEN_H     := $(BUILD)/gen/imgproc.h
GEN_XDR   := $(BUILD)/gen/imgproc_xdr.c
GEN_CLNT  := $(BUILD)/gen/imgproc_clnt.c

# common/: what both sides use, and (CALLER_SRC) what every RPC caller uses.
CALLER_SRC := common/connect.c common/fetch.c
COMMON_SRC := $(filter-out $(CALLER_SRC),$(wildcard common/*.c))
SERVER_SRC := $(wildcard server/*.c)
CLIENT_SRC := $(wildcard client/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC)) $(BUILD)/obj/gen/imgproc_xdr.o
SERVER_OBJ := $(call obj,$(SERVER_SRC))
CALLER_OBJ := $(call obj,$(CALLER_SRC)) $(BUILD)/obj/gen/imgproc_clnt.o
CLIENT_OBJ := $(call obj,$(CLIENT_SRC)) $(CALLER_OBJ)
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCH_BIN  := $(BUILD)/bench/bench
QUEUE_BIN  := $(BUILD)/bench/queue
CORPUS_DIFF := $(BUILD)/tests/corpus-diff
TEST_BIN   := $(UNIT_BIN) $(BUILD)/tests/hostile $(BENCH_BIN) $(QUEUE_BIN) $(CORPUS_DIFF)

SERVER_BIN := $(BUILD)/imgprocd
CLIENT_BIN := $(BUILD)/imgproc
WEB_SRC    := $(wildcard web/*.c)
WEB_OBJ    := $(call obj,$(WEB_SRC)) $(BUILD)/obj/web/assets.o $(CALLER_OBJ)
WEB_BIN    := $(BUILD)/imgproc-web
# The web gateway: civetweb for HTTP; the RPC side is the client's (no libvips).
WEB_LIBS    = $(CLIENT_LIBS) -lcivetweb $(shell pkg-config --libs libsystemd 2>/dev/null) $(shell xmlrpc-c-config server-util --libs 2>/dev/null)

.PHONY: all deps check unit integration demo install uninstall clean help \
        check-asan check-valgrind bench corpus check-corpus check-stress check-cluster fuzz fuzz-build \
        deb check-package check-container check-interop

all: $(SERVER_BIN) $(CLIENT_BIN) $(WEB_BIN)

help:
	@echo "make              build $(SERVER_BIN), $(CLIENT_BIN) and $(WEB_BIN)"
	@echo "make deps         install the Debian packages needed (as root)"
	@echo "make check        unit and integration tests (starts rpcbind if needed), the"
	@echo "                  differential suite on the real-image corpus included"
	@echo "make check-corpus the differential suite's larger matrix (about 10 minutes)"
	@echo "make corpus       fetch the real-image corpus (once; cached in ~/.cache/imgproc)"
	@echo "make demo         every operation on a sample image, end to end"
	@echo "make bench        benchmarks: the server against in-process libvips, one table"
	@echo "make check-asan   the tests against an ASan/UBSan build"
	@echo "make check-stress the hostile-caller attacks at full size, with their figures"
	@echo "make check-cluster   three hosts in network namespaces sharing one queue in a"
	@echo "                  throwaway PostgreSQL: kill -9, a cut link, database restarts (root)"
	@echo "make check-valgrind  the tests with the server under valgrind"
	@echo "make fuzz         the libFuzzer harnesses (clang), FUZZ_SECONDS=$(FUZZ_SECONDS) each"
	@echo "make install      to \$$(DESTDIR)\$$(PREFIX) (PREFIX=$(PREFIX)); make uninstall"
	@echo "make deb          the Debian packages, in $(BUILD)/deb (lintian-checked)"
	@echo "make check-package   the .debs installed here, started and called"
	@echo "make check-container the container image built and smoke-tested (podman)"
	@echo "make check-interop   a Java client (remotetea) against imgprocd"
	@echo "make clean"

deps:
	@sh .ci/deps.sh

# ---- generated stubs: rpcgen -M (reentrant: results in caller storage)
$(GEN_H): imgproc.x
	@mkdir -p $(@D)
	rm -f $@
	$(RPCGEN) -M -h -o $@ imgproc.x
$(GEN_XDR): imgproc.x $(GEN_H)
	rm -f $@
	$(RPCGEN) -M -c -o $@ imgproc.x
$(GEN_CLNT): imgproc.x $(GEN_H)
	rm -f $@
	$(RPCGEN) -M -l -o $@ imgproc.x

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(GEN_CFLAGS) -Wno-cast-function-type -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

$(SERVER_BIN): $(SERVER_OBJ) $(COMMON_OBJ)
	$(CC) $(OPT) $(SANITIZE) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(CLIENT_BIN): $(CLIENT_OBJ) $(COMMON_OBJ)
	$(CC) $(OPT) $(SANITIZE) $(LDFLAGS) -o $@ $^ $(CLIENT_LIBS)

# The OpenAPI document and the page, built into the gateway (.incbin: no
# tool beyond the assembler, and no files to find at run time).
$(BUILD)/obj/web/assets.o: web/assets.S web/openapi.json $(wildcard web/page/*)
	@mkdir -p $(@D)
	$(CC) -c -o $@ web/assets.S

$(WEB_BIN): $(WEB_OBJ) $(COMMON_OBJ)
	$(CC) $(OPT) $(SANITIZE) $(LDFLAGS) -o $@ $^ $(WEB_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CLIENT_LIBS) -lcmocka

# The server's modules in-process: the store (SQLite), the operations with libvips.
$(BUILD)/tests/test_store: tests/unit/test_store.c $(BUILD)/obj/server/store.o \
                           $(BUILD)/obj/server/store_sqlite.o $(BUILD)/obj/server/store_pg.o \
                           $(BUILD)/obj/server/log.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iserver -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/test_ops: tests/unit/test_ops.c $(BUILD)/obj/server/ops.o \
                         $(BUILD)/obj/server/log.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iserver -o $@ $^ $(LDLIBS) -lcmocka

# A client that sends what the real one never would: for the hostile-input tests.
$(BUILD)/tests/hostile: tests/hostile.c $(COMMON_OBJ) $(BUILD)/obj/gen/imgproc_clnt.o
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CLIENT_LIBS)

# The differential suite's reference: plain libvips, none of our code.
$(CORPUS_DIFF): tests/corpus/diff.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(shell pkg-config --libs vips) -lm

# The benchmark tool links the server's image code (the in-process reference)
# and the client's transfer loops (the RPC side).
$(BUILD)/obj/bench/bench.o: ALL_CFLAGS += -Iclient -Iserver
$(BENCH_BIN): $(BUILD)/obj/bench/bench.o $(BUILD)/obj/server/ops.o $(BUILD)/obj/server/log.o \
              $(BUILD)/obj/client/taskio.o $(BUILD)/obj/client/conn.o $(BUILD)/obj/client/io.o \
              $(BUILD)/obj/client/report.o $(BUILD)/obj/client/progress.o \
              $(CALLER_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(OPT) $(SANITIZE) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The task queue alone (bench/cluster.sh): the store's code, no server, no images.
$(BUILD)/obj/bench/queue.o: ALL_CFLAGS += -Iserver
$(QUEUE_BIN): $(BUILD)/obj/bench/queue.o $(BUILD)/obj/server/store.o \
              $(BUILD)/obj/server/store_sqlite.o $(BUILD)/obj/server/store_pg.o \
              $(BUILD)/obj/server/log.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(OPT) $(SANITIZE) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# BENCH_ARGS=--tiny: both at tiny sizes, in seconds.
bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN) $(QUEUE_BIN)
	BUILD=$(BUILD) bash bench/run.sh $(BENCH_ARGS)
	BUILD=$(BUILD) bash bench/cluster.sh $(BENCH_ARGS)

# ---- tests: every test prints TAP; prove runs them and prints the verdict
# TESTS picks files: make check TESTS=tests/integration/06-tasks.t
TESTS ?= $(UNIT_BIN) tests/integration/*.t
check: deps corpus
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	BUILD=$(BUILD) prove -f $(TESTS)

# The real-image corpus of the differential suite: fetched once from Debian
# packages, cached outside the tree ($$IMGPROC_CORPUS or ~/.cache/imgproc/corpus).
corpus: deps
	@bash tests/corpus/fetch.sh --quiet >/dev/null

check-corpus: deps corpus
	@$(MAKE) --no-print-directory all $(CORPUS_DIFF)
	BUILD=$(BUILD) CORPUS_FULL=1 prove -v tests/integration/10-corpus.t

# The attacks of the hostile-caller tests at full size; prints the figures.
check-stress: deps
	@$(MAKE) --no-print-directory all $(BUILD)/tests/hostile
	BUILD=$(BUILD) prove -v tests/stress/*.t

# Three imgprocd hosts, each in a network namespace with its own rpcbind, one
# queue in a throwaway PostgreSQL 15 (tests/cluster; as root, else skipped).
check-cluster: deps corpus
	@$(MAKE) --no-print-directory all
	BUILD=$(BUILD) prove -v tests/cluster/*.t

unit: all $(UNIT_BIN)
	prove -v $(UNIT_BIN)

check-asan:
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	$(MAKE) BUILD=build-asan OPT='-O1 -g -fno-omit-frame-pointer' \
	    SANITIZE='-fsanitize=address,undefined -fno-sanitize-recover=all' check

# VIPS_NOVECTOR: valgrind cannot follow the SIMD code libvips generates at run time (orc).
# The differential suite runs on four small real images there (all of it would take hours),
# and the work budgets are an hour: everything runs 20 to 50 times slower.
check-valgrind: deps
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	VIPS_NOVECTOR=1 BUILD=$(BUILD) IMGPROCD_WRAPPER='valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=$(CURDIR)/tests/valgrind.supp' \
	    IMGPROC_WEB_WRAPPER='valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=$(CURDIR)/tests/valgrind.supp' \
	    IMGPROCD_FLAGS='--max-request-seconds 3600 --max-task-seconds 3600' \
	    CORPUS_ONLY='tiff-video-frame|png-palette-alpha-photo|jpeg-camera-orient-6|gif-animated' \
	    CORPUS_SKIP='blur=1000|sharpen=100' \
	    prove -v -f tests/integration/*.t

# ---- fuzzing: libFuzzer harnesses (tests/fuzz/README.md), built by clang in
# build-fuzz.  The server's and common objects get coverage and the
# sanitizers (fuzzer-no-link); each harness links them with libFuzzer's main.
FUZZ_BUILD    := build-fuzz
FUZZ_SECONDS  ?= 60
FUZZ_CC       ?= clang
FUZZ_SANITIZE := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer
FUZZ_NAMES    := dispatch steps image
# The server's objects without its main().
FUZZ_SERVER_OBJ = $(filter-out $(BUILD)/obj/server/main.o,$(SERVER_OBJ))
# dispatch.c's calls into the task queue, wrapped by the harness: the store
# is opened on an input's first use, and TASK_WAIT does not block.
FUZZ_WRAP     := tasks_load tasks_create tasks_upload tasks_start tasks_status \
                 tasks_wait tasks_result tasks_cancel tasks_delete tasks_list \
                 tasks_batch_add tasks_batch_collect tasks_counts
comma         := ,

# rpcgen's inline XDR code reads 32-bit words straight out of libtirpc's
# record buffer, misaligned after a record whose length is not a multiple
# of 4 (harmless on x86; tests/fuzz/found/README.md).  Generated code is not
# ours to fix, so UBSan does not check its alignment.
$(FUZZ_BUILD)/obj/gen/imgproc_xdr.o: GEN_CFLAGS += -fno-sanitize=alignment

$(BUILD)/fuzz/fuzz_dispatch: tests/fuzz/fuzz_dispatch.c $(BUILD)/obj/tests/fuzz/frame.o \
                             $(FUZZ_SERVER_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iserver -fsanitize=fuzzer -o $@ $^ \
	    $(patsubst %,-Wl$(comma)--wrap=%,$(FUZZ_WRAP)) $(LDLIBS)

$(BUILD)/fuzz/fuzz_steps: tests/fuzz/fuzz_steps.c $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(CLIENT_LIBS)

$(BUILD)/fuzz/fuzz_image: tests/fuzz/fuzz_image.c $(BUILD)/obj/server/ops.o $(BUILD)/obj/server/log.o \
                          $(BUILD)/obj/server/config.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iserver -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# Real calls in the dispatch harness's format (tests/fuzz/frame.h).
$(BUILD)/fuzz/seeds: tests/fuzz/seeds.c $(BUILD)/obj/tests/fuzz/frame.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CLIENT_LIBS)

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT='-O1 -g' \
	    SANITIZE='$(FUZZ_SANITIZE)' $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz/fuzz_%) \
	    $(FUZZ_BUILD)/fuzz/seeds

# Each harness for FUZZ_SECONDS on its corpus in build-fuzz/corpus (kept:
# the next run builds on it), seeded from real calls, steps and images.
fuzz: deps corpus fuzz-build
	BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_NAMES)

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash scripts/demo.sh

# ---- install: the layout of a Debian RPC daemon (daemons in sbin/).  The
# package (debian/) runs this with PREFIX=/usr UNITDIR=/lib/systemd/system.
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
COMPDIR    ?= $(DATADIR)/bash-completion/completions
MANPAGES   := docs/man/imgproc.1 docs/man/imgprocd.8 docs/man/imgproc-web.8
UNITS      := imgprocd.service imgproc-web.service
DEFAULTS   := imgprocd imgproc-web
# Every file install writes, so that uninstall removes exactly those.
INSTALLED  := $(SBINDIR)/imgprocd $(SBINDIR)/imgproc-web $(BINDIR)/imgproc \
              $(DATADIR)/imgproc/imgproc.x $(MANDIR)/man1/imgproc.1 \
              $(MANDIR)/man8/imgprocd.8 $(MANDIR)/man8/imgproc-web.8 \
              $(UNITS:%=$(UNITDIR)/%) $(DEFAULTS:%=$(SYSCONFDIR)/default/%) \
              $(COMPDIR)/imgproc

# The units name the installed paths.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DATADIR)/imgproc \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/default $(DESTDIR)$(COMPDIR)
	install -m 755 $(SERVER_BIN) $(WEB_BIN) $(DESTDIR)$(SBINDIR)/
	install -m 755 $(CLIENT_BIN) $(DESTDIR)$(BINDIR)/
	install -m 644 imgproc.x $(DESTDIR)$(DATADIR)/imgproc/
	install -m 644 docs/man/imgproc.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 docs/man/imgprocd.8 docs/man/imgproc-web.8 $(DESTDIR)$(MANDIR)/man8/
	for u in $(UNITS); do \
	    sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/$$u.in \
	        >$(DESTDIR)$(UNITDIR)/$$u && chmod 644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 644 dist/imgprocd.default $(DESTDIR)$(SYSCONFDIR)/default/imgprocd
	install -m 644 dist/imgproc-web.default $(DESTDIR)$(SYSCONFDIR)/default/imgproc-web
	install -m 644 dist/imgproc.bash-completion $(DESTDIR)$(COMPDIR)/imgproc

uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)%)
	-rmdir $(DESTDIR)$(DATADIR)/imgproc 2>/dev/null

# ---- the Debian packages, built from a copy of the tree in $(BUILD)/deb (the
# .debs land there), then checked by lintian.
deb:
	@sh .ci/deps.sh && sh .ci/deps.sh package
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/imgproc-$(VERSION)
	tar --exclude='./build*' --exclude=./.git --exclude=./demo-out -cf - . | \
	    tar -xf - -C $(BUILD)/deb/imgproc-$(VERSION)
	cd $(BUILD)/deb/imgproc-$(VERSION) && dpkg-buildpackage -us -uc -b
	lintian --fail-on error $(BUILD)/deb/*.changes

# The .debs installed on this machine, the server started as the package
# says (its init script), called by name, stopped, then purged.
check-package: deb
	BUILD=$(BUILD) prove -v tests/package/package.t

# The container image (dist/container/), built and answering in a pod.
check-container: deps corpus
	@sh .ci/deps.sh container
	bash tests/container/run.sh

# A Java client generated by remotetea's jrpcgen from the installed imgproc.x.
check-interop: deps corpus
	@sh .ci/deps.sh interop
	@$(MAKE) --no-print-directory all
	BUILD=$(BUILD) bash tests/interop/run.sh

clean:
	rm -rf build build-asan build-fuzz demo-out
