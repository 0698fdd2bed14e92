/*
 * test_engine_crash.c - the guarantees of deploy, rollback and set-current
 * (ARCHITECTURE.md, invariants 1, 2, 4, 5, 6, 8), checked after a crash
 * before and after every step of every op, followed by `punix recover`.
 *
 * Every deploy goes to a target rebased under a directory of the test
 * (--transport-root), so nothing outside it is touched.
 */
#include <criterion/criterion.h>
#include <jansson.h>
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
static char *home, *target, *prog1, *prog2, *dep;

/* gen A has /etc/app/a.conf and /etc/app/old.conf; gen B changes a.conf,
 * drops old.conf, adds new.conf, and adds a service. */
static const char *const version_a =
	"module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf '#!/bin/sh\\\\nsleep 1000\\\\n' > $OUTPUT/bin/app "
	"&& chmod +x $OUTPUT/bin/app\" } }\n"
	"module Web { backend = \"systemd\" storeModules = [\"App\"]\n"
	"  services = [{ name = \"web\" package = \"App\" binary = \"app\" args = [\"--port\", \"80\"] }]\n"
	"  configFiles = [{ path = \"/etc/app/a.conf\" content = \"version = a\\n\" },\n"
	"                 { path = \"/etc/app/old.conf\" content = \"only in a\\n\" }] }\n";

static const char *const version_b =
	"module App { pname = \"app\" version = \"2\" recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf '#!/bin/sh\\\\nsleep 2000\\\\n' > $OUTPUT/bin/app "
	"&& chmod +x $OUTPUT/bin/app\" } }\n"
	"module Web { backend = \"systemd\" storeModules = [\"App\"]\n"
	"  services = [{ name = \"web\" package = \"App\" binary = \"app\" dependsOn = [\"db\"] },\n"
	"              { name = \"db\" package = \"App\" binary = \"app\" }]\n"
	"  configFiles = [{ path = \"/etc/app/a.conf\" content = \"version = b\\n\" },\n"
	"                 { path = \"/etc/app/new.conf\" content = \"only in b\\n\" }] }\n";

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	target = tdir_at(&t, "target");
	dep = tdir_at(&t, "home/deployments");
	tdir_write(&t, "a/prog.pcl", version_a);
	tdir_write(&t, "b/prog.pcl", version_b);
	prog1 = tdir_at(&t, "a/prog.pcl");
	prog2 = tdir_at(&t, "b/prog.pcl");
	mkdir(target, 0755);
}

static void teardown(void)
{
	unsetenv("PUNIX_CRASH_AT");
	free(home);
	free(target);
	free(dep);
	free(prog1);
	free(prog2);
	tdir_free(&t);
}

static int punix(const char *const *args, char **out)
{
	struct proc_result r = punix_run(home, args);
	if (out)
		*out = strdup(r.out);
	int st = r.status;
	if (st != 0 && st != 128 + SIGKILL && !out)
		cr_log_info("punix %s: %d\n%s%s", args[0], st, r.out, r.err);
	proc_result_free(&r);
	return st;
}

static int deploy(const char *prog)
{
	const char *a[] = {"service", "deploy", "Web", "--file", prog, "--transport-root", target, NULL};
	return punix(a, NULL);
}

static int rollback(void)
{
	const char *a[] = {"service", "rollback", "Web", "--transport-root", target, NULL};
	return punix(a, NULL);
}

static int set_current(const char *n)
{
	const char *a[] = {"service", "set-current", "Web", n, "--transport-root", target, NULL};
	return punix(a, NULL);
}

static int recover(void)
{
	const char *a[] = {"recover", NULL};
	return punix(a, NULL);
}

/* A path on the target. */
static char *on_target(const char *path)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s%s", target, path);
	return sbuf_detach(&sb, NULL);
}

static char *read_path(const char *path, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	if (ops_local()->read_file(ops_local(), path, 1 << 24, &buf, &n) < 0)
		return NULL;
	if (len)
		*len = n;
	return buf;
}

static long current_gen(void)
{
	struct sbuf cur = SBUF_INIT;
	sbuf_printf(&cur, "%s%s/Web/current", target, dep);
	char buf[64] = "";
	ssize_t n = readlink(cur.sb_buf, buf, sizeof(buf) - 1);
	sbuf_free(&cur);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long g = 0;
	cr_assert_eq(sscanf(buf, "gen-%ld.json", &g), 1, "current names '%s'", buf);
	return g;
}

static json_t *manifest(long gen)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "%s%s/Web/gen-%03ld.json", target, dep, gen);
	json_error_t je;
	json_t *m = json_load_file(p.sb_buf, JSON_REJECT_DUPLICATES, &je);
	cr_assert_not_null(m, "%s: %s", p.sb_buf, je.text);
	sbuf_free(&p);
	return m;
}

static void sha_hex(const char *buf, size_t len, char out[65])
{
	unsigned char h[32];
	store_sha256(buf, len, h);
	store_hex(h, 32, out);
}

/* Invariants 1 and 2 for the current generation; and no temporary files (6). */
static void check_invariants(const char *when)
{
	long gen = current_gen();
	cr_assert_gt(gen, 0, "%s: current names a generation", when);
	json_t *m = manifest(gen);
	json_t *files = json_object_get(m, "config_files"), *pins = json_object_get(m, "store_paths");
	for (size_t i = 0; i < json_array_size(pins); i++) {
		const char *p = json_string_value(json_array_get(pins, i));
		char *tp = on_target(p);
		struct stat st;
		cr_assert_eq(stat(tp, &st), 0, "%s: pinned %s is on the target", when, p);
		free(tp);
	}
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		struct sbuf kept = SBUF_INIT;
		sbuf_printf(&kept, "%s%s/Web/gen-%03ld.files%s", target, dep, gen, path);
		size_t len;
		char *k = read_path(kept.sb_buf, &len), hex[65];
		cr_assert_not_null(k, "%s: the generation keeps %s", when, path);
		sha_hex(k, len, hex);
		cr_assert_str_eq(hex, sha, "%s: kept %s matches the manifest", when, path);
		free(k);
		char *live = on_target(path);
		char *l = read_path(live, &len);
		cr_assert_not_null(l, "%s: live %s exists", when, path);
		sha_hex(l, len, hex);
		cr_assert_str_eq(hex, sha, "%s: live %s equals gen-%03ld's", when, path, gen);
		struct stat st;
		stat(live, &st);
		cr_assert_eq(st.st_mode & 07777, 0644, "%s: live %s has its mode", when, path);
		free(l);
		free(live);
		sbuf_free(&kept);
	}
	/* old.conf belongs only to version a, new.conf only to b */
	const char *only_a = "/etc/app/old.conf", *only_b = "/etc/app/new.conf";
	bool has_a = false, has_b = false;
	for (size_t i = 0; i < json_array_size(files); i++) {
		const char *p = json_string_value(json_object_get(json_array_get(files, i), "path"));
		has_a |= !strcmp(p, only_a);
		has_b |= !strcmp(p, only_b);
	}
	char *la = on_target(only_a), *lb = on_target(only_b);
	struct stat st;
	if (!has_a)
		cr_assert_neq(stat(la, &st), 0, "%s: %s of another generation is gone", when, only_a);
	if (!has_b)
		cr_assert_neq(stat(lb, &st), 0, "%s: %s of another generation is gone", when, only_b);
	free(la);
	free(lb);
	json_decref(m);

	/* 6: no temporary file anywhere on the target */
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "find %s -name '*.tmp-*' -o -name '*.push-*' | grep -c . ", target);
	FILE *f = popen(cmd.sb_buf, "r");
	int n = -1;
	cr_assert_eq(fscanf(f, "%d", &n), 1);
	pclose(f);
	cr_assert_eq(n, 0, "%s: no temporary files survive recovery", when);
	sbuf_free(&cmd);
}

static const char *const deploy_steps[] = {"plan", "build", "stage", "verify", "flip", "materialise", "activate"};
static const char *const switch_steps[] = {"plan", "verify", "flip", "materialise", "activate"};

Test(crash, deploy_at_every_step_then_recover, .init = setup, .fini = teardown, .timeout = 600)
{
	for (size_t s = 0; s < 6; s++) {
		for (int w = 0; w < 2; w++) {
			const char *when = w ? "after" : "before";
			char label[64];
			snprintf(label, sizeof(label), "deploy:%s:%s", deploy_steps[s], when);
			ops_remove_tree(ops_local(), target);
			mkdir(target, 0755);
			cr_assert_eq(deploy(prog1), 0, "the first deploy");
			cr_assert_eq(current_gen(), 1);
			setenv("PUNIX_CRASH_AT", label, 1);
			cr_assert_eq(deploy(prog2), 128 + SIGKILL, "%s: punix dies there", label);
			unsetenv("PUNIX_CRASH_AT");
			cr_assert_eq(recover(), 0, "%s: recover", label);
			check_invariants(label);
			/* at or after the flip's intent the op rolls forward */
			bool forward = s > 4 || (s == 4 && w == 1);
			cr_assert_eq(current_gen(), forward ? 2 : 1, "%s: current after recovery", label);
			cr_assert_eq(deploy(prog2), 0, "%s: the next deploy works", label);
			check_invariants(label);
		}
	}
}

static void switch_at_every_step(const char *kind)
{
	for (size_t s = 0; s < 4; s++) {
		for (int w = 0; w < 2; w++) {
			const char *when = w ? "after" : "before";
			char label[64];
			snprintf(label, sizeof(label), "%s:%s:%s", kind, switch_steps[s], when);
			ops_remove_tree(ops_local(), target);
			mkdir(target, 0755);
			cr_assert_eq(deploy(prog1), 0);
			cr_assert_eq(deploy(prog2), 0);
			cr_assert_eq(current_gen(), 2);
			setenv("PUNIX_CRASH_AT", label, 1);
			int st = strcmp(kind, "rollback") == 0 ? rollback() : set_current("1");
			unsetenv("PUNIX_CRASH_AT");
			cr_assert_eq(st, 128 + SIGKILL, "%s: punix dies there", label);
			cr_assert_eq(recover(), 0, "%s: recover", label);
			check_invariants(label);
			bool forward = s > 2 || (s == 2 && w == 1);
			cr_assert_eq(current_gen(), forward ? 1 : 2, "%s: current after recovery", label);
		}
	}
}

Test(crash, rollback_at_every_step_then_recover, .init = setup, .fini = teardown, .timeout = 600)
{
	switch_at_every_step("rollback");
}

Test(crash, set_current_at_every_step_then_recover, .init = setup, .fini = teardown, .timeout = 600)
{
	switch_at_every_step("set-current");
}

Test(crash, a_new_op_recovers_its_stack_first, .init = setup, .fini = teardown, .timeout = 120)
{
	cr_assert_eq(deploy(prog1), 0);
	setenv("PUNIX_CRASH_AT", "deploy:materialise:before", 1);
	cr_assert_eq(deploy(prog2), 128 + SIGKILL);
	unsetenv("PUNIX_CRASH_AT");
	/* no punix recover: the next op on the stack does it */
	cr_assert_eq(rollback(), 0);
	check_invariants("rollback after an interrupted deploy");
	cr_assert_eq(current_gen(), 1);
}

Test(guarantees, rollback_and_set_current_refuse_a_missing_pin, .init = setup, .fini = teardown, .timeout = 120)
{
	cr_assert_eq(deploy(prog1), 0);
	cr_assert_eq(deploy(prog2), 0);
	json_t *m = manifest(1);
	const char *pin = json_string_value(json_array_get(json_object_get(m, "store_paths"), 0));
	char *tp = on_target(pin);
	ops_remove_tree(ops_local(), tp);
	const char *a[] = {"service", "rollback", "Web", "--transport-root", target, NULL};
	struct proc_result r = punix_run(home, a);
	cr_expect_eq(r.status, 1);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want, "error: [E12] stack 'Web' gen-001: pinned store path missing:\n  %s\n", pin);
	cr_expect(strncmp(r.err, want.sb_buf, want.sb_len) == 0, "got:\n%s", r.err);
	cr_expect_eq(current_gen(), 2, "nothing changed");
	check_invariants("after a refused rollback");
	proc_result_free(&r);
	const char *b[] = {"service", "set-current", "Web", "1", "--transport-root", target, NULL};
	r = punix_run(home, b);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "[E12]") != NULL, "%s", r.err);
	cr_expect_eq(current_gen(), 2);
	proc_result_free(&r);
	const char *c[] = {"service", "set-current", "Web", "7", "--transport-root", target, NULL};
	r = punix_run(home, c);
	cr_expect_eq(r.status, 1);
	cr_expect_str_eq(r.err, "error: [E12] stack 'Web' has no generation 7 (it has: gen-001, gen-002)\n");
	proc_result_free(&r);
	sbuf_free(&want);
	free(tp);
	json_decref(m);
}

Test(guarantees, a_dry_run_touches_only_its_scratch, .init = setup, .fini = teardown, .timeout = 120)
{
	const char *a[] = {"service", "deploy", "Web", "--file", prog1, "--dry-run", NULL};
	char *out;
	cr_assert_eq(punix(a, &out), 0);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want,
		    "deployed: stack Web \u2192 gen-001 (3 config file(s), 1 store path(s) pinned)\nscratch: "
		    "%s/.dry-run/\n",
		    dep);
	cr_expect_str_eq(out, want.sb_buf);
	struct stat st;
	cr_expect_neq(stat("/etc/app/a.conf", &st), 0, "the real /etc is untouched");
	cr_expect_neq(stat("/etc/systemd/system/web.service", &st), 0);
	char *real_current = tdir_at(&t, "home/deployments/Web");
	cr_expect_neq(stat(real_current, &st), 0, "the real deployments root has no stack");
	free(real_current);
	free(out);
	sbuf_free(&want);
}

Test(guarantees, two_ops_on_one_stack_never_interleave, .init = setup, .fini = teardown, .timeout = 120)
{
	/* a slow build holds the stack while the second deploy arrives */
	tdir_write(&t, "slow/prog.pcl",
		   "module App { pname = \"slow\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"sleep 2 && mkdir -p $OUTPUT/bin\" } }\n"
		   "module Web { backend = \"systemd\" storeModules = [\"App\"] }\n");
	char *slow = tdir_at(&t, "slow/prog.pcl"), *log = tdir_at(&t, "first.txt");
	const char *a[] = {"service", "deploy", "Web", "--file", slow, "--transport-root", target, NULL};
	pid_t first = punix_start(home, a, log);
	usleep(700 * 1000);
	struct proc_result r = punix_run(home, a);
	cr_expect_eq(r.status, 4, "%s", r.err);
	cr_expect(strstr(r.err, "error: stack 'Web' is busy: held by pid ") != NULL, "%s", r.err);
	cr_expect_eq(punix_wait(first), 0);
	proc_result_free(&r);
	free(slow);
	free(log);
}

Test(bad_input, hand_edited_current_and_manifest_are_refused, .init = setup, .fini = teardown, .timeout = 120)
{
	cr_assert_eq(deploy(prog1), 0);
	cr_assert_eq(deploy(prog2), 0);
	struct sbuf cur = SBUF_INIT, man = SBUF_INIT;
	sbuf_printf(&cur, "%s%s/Web/current", target, dep);
	sbuf_printf(&man, "%s%s/Web/gen-001.json", target, dep);
	unlink(cur.sb_buf);
	cr_assert_eq(symlink("../../../../etc/passwd", cur.sb_buf), 0);
	const char *a[] = {"service", "rollback", "Web", "--transport-root", target, NULL};
	struct proc_result r = punix_run(home, a);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "which is not a generation") != NULL, "%s", r.err);
	proc_result_free(&r);
	unlink(cur.sb_buf);
	cr_assert_eq(symlink("gen-002.json", cur.sb_buf), 0);

	/* a truncated manifest */
	char *m = read_path(man.sb_buf, NULL);
	FILE *f = fopen(man.sb_buf, "w");
	fwrite(m, 1, strlen(m) / 2, f);
	fclose(f);
	r = punix_run(home, a);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "gen-001.json: not a valid manifest") != NULL, "%s", r.err);
	cr_expect_eq(current_gen(), 2, "nothing changed");
	proc_result_free(&r);
	free(m);
	sbuf_free(&cur);
	sbuf_free(&man);
}

/* ---- faults at random moments and at every effect ----------------------------- */

static int setenv_long(const char *name, long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%ld", v);
	return setenv(name, buf, 1);
}

/* After recovery: the invariants hold, or nothing was ever made current. */
static void check_after_recovery(const char *label)
{
	cr_assert_eq(recover(), 0, "%s: recover", label);
	if (current_gen() > 0)
		check_invariants(label);
}

Test(faults, sigkill_at_random_moments_in_200_random_ops, .init = setup, .fini = teardown, .timeout = 900)
{
	unsigned long seed = 20261122;
	int killed = 0;
	char *log = tdir_at(&t, "op.txt");
	for (int round = 0; round < 200; round++) {
		seed = seed * 6364136223846793005UL + 1442695040888963407UL;
		unsigned pick = (unsigned)(seed >> 33) % 4;
		const char *gen = (seed >> 40) % 2 ? "1" : "2";
		const char *d1[] = {"service", "deploy", "Web", "--file", prog1, "--transport-root", target, NULL};
		const char *d2[] = {"service", "deploy", "Web", "--file", prog2, "--transport-root", target, NULL};
		const char *rb[] = {"service", "rollback", "Web", "--transport-root", target, NULL};
		const char *sc[] = {"service", "set-current", "Web", gen, "--transport-root", target, NULL};
		const char *const *ops[] = {d1, d2, rb, sc};
		pid_t pid = punix_start(home, ops[pick], log);
		/* 0 to 60 ms: an op here takes a few tens of milliseconds */
		usleep((useconds_t)((seed >> 20) % 60000));
		kill(pid, SIGKILL);
		killed += punix_wait(pid) == 128 + SIGKILL;
		char label[64];
		snprintf(label, sizeof(label), "round %d (op %u)", round, pick);
		check_after_recovery(label);
	}
	cr_log_info("%d of 200 ops were killed mid-way", killed);
	cr_expect_gt(killed, 50, "most kills must land while the op runs (%d did)", killed);
	free(log);
}

/* Restores the target and home saved after the first deploy. */
static void restore(void)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "rm -rf %s/target %s/home && cp -a %s/saved-target %s/target && cp -a %s/saved-home %s/home",
		    t.path, t.path, t.path, t.path, t.path, t.path);
	cr_assert_eq(system(cmd.sb_buf), 0);
	sbuf_free(&cmd);
}

static void eio_at_every_effect(bool forever)
{
	cr_assert_eq(deploy(prog1), 0);
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "cp -a %s/target %s/saved-target && cp -a %s/home %s/saved-home", t.path, t.path, t.path,
		    t.path);
	cr_assert_eq(system(cmd.sb_buf), 0);
	sbuf_free(&cmd);
	long n;
	int failures = 0;
	for (n = 1; n < 2000; n++) {
		restore();
		setenv_long("PUNIX_FAULT_EIO_AT", n);
		if (forever)
			setenv("PUNIX_FAULT_EIO_FOREVER", "1", 1);
		int st = deploy(prog2);
		unsetenv("PUNIX_FAULT_EIO_AT");
		unsetenv("PUNIX_FAULT_EIO_FOREVER");
		char label[64];
		snprintf(label, sizeof(label), "EIO at effect %ld%s", n, forever ? " and after" : "");
		cr_assert(st == 0 || st == 1 || st == 3, "%s: a clean failure, not a crash (%d)", label, st);
		failures += st != 0;
		check_after_recovery(label);
		long cur = current_gen();
		cr_assert(cur == 1 || cur == 2, "%s: one generation or the other (%ld)", label, cur);
		if (forever && st == 0)
			break; /* n is past the deploy's last effect */
		if (!forever && n > 400)
			break;
	}
	cr_log_info("%s: %ld effects tried, %d deploys failed", forever ? "forever" : "once", n, failures);
	cr_expect_gt(failures, 20, "faults must land in the deploy");
}

Test(faults, eio_once_at_every_effect_of_a_deploy, .init = setup, .fini = teardown, .timeout = 1200)
{
	eio_at_every_effect(false);
}

Test(faults, eio_forever_from_every_effect_of_a_deploy, .init = setup, .fini = teardown, .timeout = 1200)
{
	eio_at_every_effect(true);
}
