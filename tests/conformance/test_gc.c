/*
 * test_gc.c - garbage collection never deletes a pinned path (invariant 3)
 * and leaves no half-deleted path or temporary (invariant 6): after a crash
 * before or after each of its steps and recovery, after a rollback, while
 * deploys run concurrently, and after pruning. Deploys here go to the local
 * machine (so that their generations are GC roots) with every live path
 * inside the test's directory.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "store/store.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home, *units, *progs[3];

static void write_prog(int v)
{
	struct sbuf p = SBUF_INIT, rel = SBUF_INIT;
	sbuf_printf(&p,
		    "module Lib { pname = \"lib\" version = \"%d\" recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT/lib && echo lib %d > $OUTPUT/lib/x\" } }\n"
		    "module App { pname = \"app\" version = \"%d\" recipe = \"std.shell\" deps = [\"Lib\"]\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf '#!/bin/sh\\\\n' > $OUTPUT/bin/app && "
		    "chmod +x $OUTPUT/bin/app\" } }\n"
		    "module Junk%d { pname = \"junk\" version = \"%d\" recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT && echo unpinned > $OUTPUT/j\" } }\n"
		    "module S { backend = \"systemd\" storeModules = [\"App\"]\n"
		    "  services = [{ name = \"app\" package = \"App\" binary = \"app\" }]\n"
		    "  configFiles = [{ path = \"%s/live/app.conf\" content = \"v = %d\\n\" }] }\n",
		    v, v, v, v, v, t.path, v);
	sbuf_printf(&rel, "p%d/prog.pcl", v);
	tdir_write(&t, rel.sb_buf, p.sb_buf);
	progs[v] = tdir_at(&t, rel.sb_buf);
	sbuf_free(&p);
	sbuf_free(&rel);
}

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	units = tdir_at(&t, "units");
	for (int v = 0; v < 3; v++)
		write_prog(v);
}

static void teardown(void)
{
	unsetenv("PUNIX_CRASH_AT");
	free(home);
	free(units);
	for (int v = 0; v < 3; v++)
		free(progs[v]);
	tdir_free(&t);
}

static int run(const char *const *args)
{
	struct proc_result r = punix_run(home, args);
	int st = r.status;
	if (st != 0 && st != 128 + SIGKILL)
		cr_log_info("punix %s %s: %d\n%s%s", args[0], args[1] ? args[1] : "", st, r.out, r.err);
	proc_result_free(&r);
	return st;
}

static int deploy(int v)
{
	const char *a[] = {"service", "deploy", "S", "--file", progs[v], "--unit-dir", units, NULL};
	return run(a);
}

static int build_all(int v)
{
	const char *a[] = {"build", progs[v], NULL};
	return run(a);
}

static int gc(void)
{
	const char *a[] = {"store", "gc", NULL};
	return run(a);
}

/* Invariant 3: every path pinned by every generation is registered and intact. */
static size_t check_pins(const char *when)
{
	struct store s;
	struct sbuf err = SBUF_INIT, dep = SBUF_INIT, logs = SBUF_INIT, st = SBUF_INIT;
	sbuf_printf(&st, "%s/store", home);
	sbuf_printf(&logs, "%s/logs", home);
	sbuf_printf(&dep, "%s/deployments/S", home);
	cr_assert_eq(store_open(&s, ops_local(), st.sb_buf, NULL, logs.sb_buf, STORE_CREATE, &err), 0);
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "cat %s/gen-*.json 2>/dev/null | grep -o '\"/[^\"]*-[a-z]*-[0-9]*\"' | tr -d '\"' | sort -u",
		    dep.sb_buf);
	FILE *f = popen(cmd.sb_buf, "r");
	char line[1024];
	size_t n = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, st.sb_buf, st.sb_len) != 0)
			continue; /* a config file path, not a store path */
		cr_assert(store_is_valid(&s, line), "%s: pinned %s is gone", when, line);
		/* and its dependencies */
		char **deps;
		size_t nd;
		cr_assert_eq(store_path_deps(&s, line, &deps, &nd), 0);
		for (size_t i = 0; i < nd; i++) {
			cr_assert(store_is_valid(&s, deps[i]), "%s: dependency %s of a pin is gone", when, deps[i]);
			free(deps[i]);
		}
		free(deps);
		n++;
	}
	pclose(f);
	struct store_entry *e;
	size_t ne;
	cr_assert_eq(store_list(&s, &e, &ne, &err), 0);
	for (size_t i = 0; i < ne; i++)
		cr_assert_eq(store_verify_entry(&s, &e[i]), 0, "%s: %s is not intact", when, e[i].path);
	store_entries_free(e, ne);
	/* invariant 6: no trash, no unregistered path, no temporary */
	sbuf_reset(&cmd);
	sbuf_printf(&cmd, "test ! -e %s/.trash || test -z \"$(ls -A %s/.trash)\"", st.sb_buf, st.sb_buf);
	cr_assert_eq(system(cmd.sb_buf), 0, "%s: the trash is empty", when);
	char **names;
	size_t nn;
	cr_assert_eq(ops_local()->list_dir(ops_local(), st.sb_buf, &names, &nn), 0);
	for (size_t i = 0; i < nn; i++) {
		if (names[i][0] == '.')
			continue;
		char p[1024];
		snprintf(p, sizeof(p), "%s/%s", st.sb_buf, names[i]);
		cr_assert(store_is_valid(&s, p), "%s: %s is in the store but not registered", when, p);
	}
	ops_free_names(names, nn);
	store_close(&s);
	sbuf_free(&cmd);
	sbuf_free(&err);
	sbuf_free(&dep);
	sbuf_free(&logs);
	sbuf_free(&st);
	return n;
}

static size_t store_count(void)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "ls %s/store/.meta | grep -c json", home);
	FILE *f = popen(cmd.sb_buf, "r");
	size_t n = 0;
	if (fscanf(f, "%zu", &n) != 1)
		n = 0;
	pclose(f);
	sbuf_free(&cmd);
	return n;
}

Test(gc, keeps_every_generation_and_collects_the_rest, .init = setup, .fini = teardown, .timeout = 120)
{
	cr_assert_eq(deploy(0), 0);
	cr_assert_eq(deploy(1), 0);
	cr_assert_eq(build_all(2), 0); /* lib, app and junk of v2: pinned by nothing */
	cr_assert_eq(build_all(1), 0);
	size_t before = store_count();
	cr_assert_eq(gc(), 0);
	check_pins("after gc");
	/* v0 and v1 lib+app stay (4), junk 0..2 and v2's lib and app go */
	cr_expect_eq(store_count(), 4, "from %zu paths", before);
	/* a rollback after GC works: gen-001's pins were kept */
	const char *rb[] = {"service", "rollback", "S", "--unit-dir", units, NULL};
	cr_expect_eq(run(rb), 0);
	char *conf = tdir_read(&t, "live/app.conf");
	cr_expect_str_eq(conf, "v = 0\n");
	free(conf);
}

Test(gc, a_crash_at_every_step_then_recover, .init = setup, .fini = teardown, .timeout = 300)
{
	const char *steps[] = {"plan", "mark", "sweep"};
	for (int s = 0; s < 3; s++) {
		for (int w = 0; w < 2; w++) {
			char label[64];
			snprintf(label, sizeof(label), "gc:%s:%s", steps[s], w ? "after" : "before");
			cr_assert_eq(deploy(0), 0);
			cr_assert_eq(build_all(1), 0);
			cr_assert_eq(build_all(2), 0);
			setenv("PUNIX_CRASH_AT", label, 1);
			cr_assert_eq(gc(), 128 + SIGKILL, "%s: punix dies there", label);
			unsetenv("PUNIX_CRASH_AT");
			const char *rec[] = {"recover", NULL};
			cr_assert_eq(run(rec), 0, "%s: recover", label);
			check_pins(label);
			cr_assert_eq(gc(), 0, "%s: the next gc", label);
			check_pins(label);
		}
	}
}

Test(gc, deploys_running_during_gc_lose_nothing, .init = setup, .fini = teardown, .timeout = 600)
{
	cr_assert_eq(deploy(0), 0);
	char *log = tdir_at(&t, "deploys.txt");
	for (int round = 0; round < 100; round++) {
		/* a deploy (building new paths) and a gc at the same time */
		const char *d[] = {"service", "deploy", "S", "--file", progs[round % 3], "--unit-dir", units, NULL};
		pid_t p = punix_start(home, d, log);
		usleep((useconds_t)((round * 7919) % 30000));
		cr_assert_eq(gc(), 0, "round %d: gc", round);
		cr_assert_eq(punix_wait(p), 0, "round %d: the deploy", round);
		char label[32];
		snprintf(label, sizeof(label), "round %d", round);
		check_pins(label);
		if (round % 10 == 9) {
			const char *pr[] = {"service", "prune", "S", "--keep", "2", "--unit-dir", units, NULL};
			cr_assert_eq(run(pr), 0);
		}
	}
	free(log);
}

Test(gc, a_store_path_deleted_by_hand_stops_rollback, .init = setup, .fini = teardown, .timeout = 120)
{
	cr_assert_eq(deploy(0), 0);
	cr_assert_eq(deploy(1), 0);
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "chmod -R u+w %s/store/*-app-0 && rm -rf %s/store/*-app-0", home, home);
	cr_assert_eq(system(cmd.sb_buf), 0);
	const char *rb[] = {"service", "rollback", "S", "--unit-dir", units, NULL};
	struct proc_result r = punix_run(home, rb);
	cr_expect_eq(r.status, 1);
	cr_expect(strncmp(r.err, "error: [E12] stack 'S' gen-001: pinned store path missing:\n  ", 60) == 0, "%s",
		  r.err);
	cr_expect(strstr(r.err, "This usually means GC ran with the wrong root set. Recover by\nre-realising: punix build") !=
		  NULL, "%s", r.err);
	char *conf = tdir_read(&t, "live/app.conf");
	cr_expect_str_eq(conf, "v = 1\n", "nothing was flipped");
	free(conf);
	proc_result_free(&r);
	sbuf_free(&cmd);
}

Test(gc, prune_keeps_the_current_and_the_newest, .init = setup, .fini = teardown, .timeout = 120)
{
	for (int i = 0; i < 4; i++)
		cr_assert_eq(deploy(i % 2), 0);
	const char *sc[] = {"service", "set-current", "S", "1", "--unit-dir", units, NULL};
	cr_assert_eq(run(sc), 0);
	const char *pr[] = {"service", "prune", "S", "--keep", "1", "--unit-dir", units, NULL};
	struct proc_result r = punix_run(home, pr);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_str_eq(r.out, "pruned: stack S: 2 generation(s) deleted; current is gen-001\n");
	proc_result_free(&r);
	const char *st[] = {"service", "status", "S", "--unit-dir", units, NULL};
	r = punix_run(home, st);
	cr_expect(strstr(r.out, "* gen-001") && strstr(r.out, "  gen-004") && !strstr(r.out, "gen-002") &&
		      !strstr(r.out, "gen-003"),
		  "%s", r.out);
	proc_result_free(&r);
	cr_assert_eq(gc(), 0);
	check_pins("after prune and gc");
}

/* The one store path of pname-version in the store (its name), or NULL. */
static char *store_name_of(const char *pv)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "ls %s/store | grep -- '-%s$'", home, pv);
	FILE *f = popen(cmd.sb_buf, "r");
	char line[512];
	char *name = fgets(line, sizeof(line), f) ? strndup(line, strcspn(line, "\n")) : NULL;
	pclose(f);
	sbuf_free(&cmd);
	return name;
}

/*
 * A sweep cut short after a path's registration went but before its tree
 * did leaves the tree unregistered; the next gc rolls the sweep forward
 * and that finishes it, without `punix recover`.
 */
Test(gc, a_sweep_cut_short_is_finished_by_the_next_gc, .init = setup, .fini = teardown, .timeout = 120)
{
	cr_assert_eq(deploy(0), 0);
	cr_assert_eq(build_all(1), 0);
	char *junk = store_name_of("junk-1");
	cr_assert(junk);
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "cp -a %s/store/%s %s/aside", home, junk, t.path);
	cr_assert_eq(system(cmd.sb_buf), 0);
	setenv("PUNIX_CRASH_AT", "gc:sweep:after", 1);
	cr_assert_eq(gc(), 128 + SIGKILL);
	unsetenv("PUNIX_CRASH_AT");
	/* what the sweep would have left had it died between the registration and the tree */
	sbuf_reset(&cmd);
	sbuf_printf(&cmd, "test ! -e %s/store/%s && cp -a %s/aside %s/store/%s", home, junk, t.path, home, junk);
	cr_assert_eq(system(cmd.sb_buf), 0);
	cr_assert_eq(gc(), 0);
	sbuf_reset(&cmd);
	sbuf_printf(&cmd, "test ! -e %s/store/%s", home, junk);
	cr_expect_eq(system(cmd.sb_buf), 0, "the rolled-forward sweep removed what was left of %s", junk);
	check_pins("after the rolled-forward sweep");
	free(junk);
	sbuf_free(&cmd);
}

/*
 * A sweep rolled forward decides again under the lock: paths it planned as
 * dead that were built and pinned again meanwhile are kept.
 */
Test(gc, a_rolled_forward_sweep_keeps_what_became_live, .init = setup, .fini = teardown, .timeout = 120)
{
	cr_assert_eq(deploy(0), 0);
	cr_assert_eq(build_all(1), 0); /* lib-1 and app-1: dead, planned */
	setenv("PUNIX_CRASH_AT", "gc:sweep:after", 1);
	cr_assert_eq(gc(), 128 + SIGKILL);
	unsetenv("PUNIX_CRASH_AT");
	char *app = store_name_of("app-1");
	cr_assert_null(app, "the sweep ran before the crash");
	cr_assert_eq(deploy(1), 0); /* built again and pinned, while the gc op is still in flight */
	app = store_name_of("app-1");
	cr_assert(app);
	cr_assert_eq(gc(), 0); /* rolls the old sweep forward first, then collects */
	char *again = store_name_of("app-1");
	cr_expect(again && !strcmp(again, app), "app-1 was pinned again and stays");
	check_pins("after the rolled-forward sweep");
	free(app);
	free(again);
}

/*
 * A home that only ever deployed into a rebased tree collects: its own
 * deployments root is made by its first op, so "none deployed here yet" is
 * not taken for "the root went missing". A --deployments-root that does
 * not exist is still refused, deleting nothing.
 */
Test(gc, a_home_that_only_deployed_elsewhere_collects, .init = setup, .fini = teardown, .timeout = 120)
{
	char *tree = tdir_at(&t, "tree");
	cr_assert_eq(mkdir(tree, 0755), 0);
	const char *d[] = {"service", "deploy", "S", "--file", progs[1], "--transport-root", tree, NULL};
	cr_assert_eq(run(d), 0);
	cr_assert_eq(build_all(2), 0); /* Junk2 and the v2 packages: pinned by nothing */
	char *missing = tdir_at(&t, "no-such-root");
	const char *bad[] = {"store", "gc", "--deployments-root", missing, NULL};
	struct proc_result r = punix_run(home, bad);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "cannot be read") != NULL && strstr(r.err, "deletes nothing") != NULL, "%s", r.err);
	proc_result_free(&r);
	const char *g[] = {"store", "gc", NULL};
	r = punix_run(home, g);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "removed: ") != NULL && strstr(r.out, "removed: 0 paths") == NULL, "%s", r.out);
	proc_result_free(&r);
	/* what the rebased generation pins is still there */
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd,
		    "set -e; n=0; for p in $(cat %s%s/deployments/S/gen-001.json | grep -o '\"/[^\"]*/store/[^\"]*\"' | "
		    "tr -d '\"' | sort -u); do test -d \"$p\"; n=$((n+1)); done; test $n -gt 0",
		    tree, home);
	cr_expect_eq(system(cmd.sb_buf), 0, "a pin of the rebased generation was collected (%s)", cmd.sb_buf);
	sbuf_free(&cmd);
	free(missing);
	free(tree);
}
