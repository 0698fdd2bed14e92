/*
 * test_lossy.c - crashes that lose what was not synced (PUNIX_FAULT_LOSSY=1,
 * engine/fault.c): at the crash every directory change not yet made
 * durable by an fsync of its directory is undone, and every file written
 * but not fsynced is emptied; then `punix recover` must restore the
 * invariants (ARCHITECTURE.md 1, 2, 3, 6) for deploy, rollback and GC.
 *
 * A durable-write protocol that skipped one fsync (of a file before its
 * rename, of a directory after it) fails here: the survivor would be an
 * empty manifest, a current link to nothing, or a registration of a path
 * whose files are gone.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home, *target, *prog1, *prog2, *dep;

static const char *const version_a =
	"module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf a > $OUTPUT/bin/app\" } }\n"
	"module Web { backend = \"systemd\" storeModules = [\"App\"]\n"
	"  services = [{ name = \"web\" package = \"App\" binary = \"app\" }]\n"
	"  configFiles = [{ path = \"/etc/app/a.conf\" content = \"version = a\\n\" },\n"
	"                 { path = \"/etc/app/old.conf\" content = \"only in a\\n\" }] }\n";

static const char *const version_b =
	"module App { pname = \"app\" version = \"2\" recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf b > $OUTPUT/bin/app\" } }\n"
	"module Web { backend = \"systemd\" storeModules = [\"App\"]\n"
	"  services = [{ name = \"web\" package = \"App\" binary = \"app\" }]\n"
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
	unsetenv("PUNIX_FAULT_LOSSY");
	unsetenv("PUNIX_FAULT_KILL_AT");
	unsetenv("PUNIX_CRASH_AT");
	free(home);
	free(target);
	free(dep);
	free(prog1);
	free(prog2);
	tdir_free(&t);
}

static int run(const char *const *a)
{
	struct proc_result r = punix_run(home, a);
	int st = r.status;
	if (st != 0 && st != 128 + SIGKILL)
		cr_log_info("punix %s %s: %d\n%s%s", a[0], a[1] ? a[1] : "", st, r.out, r.err);
	proc_result_free(&r);
	return st;
}

static int deploy(const char *prog)
{
	const char *a[] = {"service", "deploy", "Web", "--file", prog, "--transport-root", target, NULL};
	return run(a);
}

static int rollback(void)
{
	const char *a[] = {"service", "rollback", "Web", "--transport-root", target, NULL};
	return run(a);
}

/* Collects the target's copy of the store (the deploys went there). */
static int gc(void)
{
	const char *a[] = {"store", "gc", "--transport-root", target, NULL};
	return run(a);
}

static int recover(void)
{
	const char *a[] = {"recover", NULL};
	return run(a);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct sbuf sb = SBUF_INIT;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sbuf_append(&sb, buf, n);
	fclose(f);
	if (len)
		*len = sb.sb_len;
	if (!sb.sb_buf)
		sbuf_puts(&sb, "");
	return sbuf_detach(&sb, NULL);
}

static long current_gen(void)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "%s%s/Web/current", target, dep);
	char buf[64];
	ssize_t n = readlink(p.sb_buf, buf, sizeof(buf) - 1);
	sbuf_free(&p);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf + 4, NULL, 10);
}

/* Invariants 1 and 2 on the target; 6: no temporary left anywhere. */
static void check(const char *label)
{
	long gen = current_gen();
	cr_assert_gt(gen, 0, "%s: current names a generation", label);
	struct sbuf mp = SBUF_INIT;
	sbuf_printf(&mp, "%s%s/Web/gen-%03ld.json", target, dep, gen);
	char *text = slurp(mp.sb_buf, NULL);
	cr_assert_not_null(text, "%s: the current manifest exists", label);
	json_t *m = json_loads(text, 0, NULL);
	cr_assert_not_null(m, "%s: the current manifest is whole:\n%s", label, text);
	json_t *pins = json_object_get(m, "store_paths"), *files = json_object_get(m, "config_files");
	for (size_t i = 0; i < json_array_size(pins); i++) {
		const char *p = json_string_value(json_array_get(pins, i));
		struct sbuf tp = SBUF_INIT;
		sbuf_printf(&tp, "%s%s/bin/app", target, p);
		size_t len;
		char *app = slurp(tp.sb_buf, &len);
		cr_assert(app && len == 1, "%s: pinned %s is whole on the target", label, p);
		free(app);
		sbuf_free(&tp);
	}
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		struct sbuf lp = SBUF_INIT;
		sbuf_printf(&lp, "%s%s", target, path);
		size_t len;
		char *live = slurp(lp.sb_buf, &len);
		cr_assert_not_null(live, "%s: live %s exists", label, path);
		unsigned char h[32];
		SHA256((const unsigned char *)live, len, h);
		char hex[65];
		for (int k = 0; k < 32; k++)
			snprintf(hex + 2 * k, 3, "%02x", h[k]);
		cr_assert_str_eq(hex, sha, "%s: live %s equals gen-%03ld's", label, path, gen);
		free(live);
		sbuf_free(&lp);
	}
	json_decref(m);
	free(text);
	sbuf_free(&mp);
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "find %s %s -name '*.tmp-*' -o -name '.punix-lossy-*'", target, home);
	FILE *f = popen(cmd.sb_buf, "r");
	char left[512] = "";
	size_t got = f ? fread(left, 1, sizeof(left) - 1, f) : 0;
	left[got] = '\0';
	if (f)
		pclose(f);
	cr_assert_eq(got, 0, "%s: a temporary survived recovery:\n%s", label, left);
	sbuf_free(&cmd);
	/* the local store is whole (invariant 3 for gc) */
	const char *v[] = {"store", "verify", NULL};
	cr_assert_eq(run(v), 0, "%s: store verify", label);
}

/* Saves and restores home and target, so that each crash starts alike. */
static void save(void)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "rm -rf %s/s && mkdir %s/s && cp -a %s %s %s/s/", t.path, t.path, home, target, t.path);
	cr_assert_eq(system(cmd.sb_buf), 0);
	sbuf_free(&cmd);
}

static void restore(void)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "rm -rf %s %s && cp -a %s/s/home %s/s/target %s/", home, target, t.path, t.path, t.path);
	cr_assert_eq(system(cmd.sb_buf), 0);
	sbuf_free(&cmd);
}

/*
 * Runs op killed at effect n = 1, 1+stride, ... (lossy), recovering and
 * checking after each, until an op runs to its end without being killed.
 */
static void lossy_at_effects(const char *what, int (*op)(void), long stride)
{
	save();
	int runs = 0;
	for (long n = 1;; n += stride) {
		restore();
		char num[32];
		snprintf(num, sizeof(num), "%ld", n);
		setenv("PUNIX_FAULT_LOSSY", "1", 1);
		setenv("PUNIX_FAULT_KILL_AT", num, 1);
		int st = op();
		unsetenv("PUNIX_FAULT_KILL_AT");
		unsetenv("PUNIX_FAULT_LOSSY");
		char label[64];
		snprintf(label, sizeof(label), "%s killed at effect %ld", what, n);
		cr_assert_eq(recover(), 0, "%s: recover", label);
		check(label);
		runs++;
		if (st != 128 + SIGKILL)
			break; /* the op got past its last effect */
	}
	cr_log_info("%s: %d lossy crashes", what, runs);
	cr_expect_gt(runs, 5, "%s: the crashes landed inside the op", what);
}

static int deploy_b(void)
{
	return deploy(prog2);
}

Test(lossy, deploy_crashes_lose_only_what_was_never_promised, .init = setup, .fini = teardown, .timeout = 900)
{
	cr_assert_eq(deploy(prog1), 0);
	lossy_at_effects("deploy", deploy_b, 9);
}

Test(lossy, rollback_crashes_lose_only_what_was_never_promised, .init = setup, .fini = teardown, .timeout = 900)
{
	cr_assert_eq(deploy(prog1), 0);
	cr_assert_eq(deploy(prog2), 0);
	lossy_at_effects("rollback", rollback, 3);
}

Test(lossy, gc_crashes_lose_only_what_was_never_promised, .init = setup, .fini = teardown, .timeout = 900)
{
	cr_assert_eq(deploy(prog1), 0);
	cr_assert_eq(deploy(prog2), 0);
	/* gen-001 goes: its package becomes dead in the target's store */
	const char *p[] = {"service", "prune", "Web", "--keep", "1", "--transport-root", target, NULL};
	cr_assert_eq(run(p), 0);
	lossy_at_effects("gc", gc, 2);
	/* and the collection did collect: app-1 is gone from the target's store */
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "test -z \"$(find %s -maxdepth 6 -name '*-app-1')\"", target);
	cr_expect_eq(system(cmd.sb_buf), 0, "gc removed the dead path on the target");
	sbuf_free(&cmd);
}

Test(lossy, crash_points_of_every_step_with_lossy_sync, .init = setup, .fini = teardown, .timeout = 900)
{
	static const char *const points[] = {"deploy:stage:after", "deploy:flip:after", "deploy:materialise:after",
					     "deploy:verify:before"};
	cr_assert_eq(deploy(prog1), 0);
	save();
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		restore();
		setenv("PUNIX_FAULT_LOSSY", "1", 1);
		setenv("PUNIX_CRASH_AT", points[i], 1);
		cr_assert_eq(deploy(prog2), 128 + SIGKILL, "%s", points[i]);
		unsetenv("PUNIX_CRASH_AT");
		unsetenv("PUNIX_FAULT_LOSSY");
		cr_assert_eq(recover(), 0, "%s: recover", points[i]);
		check(points[i]);
	}
}

/* An I/O error at every effect of a collection (the store's effects and the journal's commits count): it fails cleanly or finishes, and recovery leaves every pin in place. */
Test(faults, gc_with_io_errors_from_every_effect_on, .init = setup, .fini = teardown, .timeout = 900)
{
	cr_assert_eq(deploy(prog1), 0);
	cr_assert_eq(deploy(prog2), 0);
	const char *p[] = {"service", "prune", "Web", "--keep", "1", "--transport-root", target, NULL};
	cr_assert_eq(run(p), 0);
	save();
	int failed = 0;
	long n;
	for (n = 1; n < 1000; n++) {
		restore();
		char num[32];
		snprintf(num, sizeof(num), "%ld", n);
		setenv("PUNIX_FAULT_EIO_AT", num, 1);
		setenv("PUNIX_FAULT_EIO_FOREVER", "1", 1);
		int st = gc();
		unsetenv("PUNIX_FAULT_EIO_AT");
		unsetenv("PUNIX_FAULT_EIO_FOREVER");
		char label[64];
		snprintf(label, sizeof(label), "gc with EIO from effect %ld on", n);
		cr_assert(st == 0 || st == 1 || st == 3, "%s: a clean failure, not a crash (%d)", label, st);
		failed += st != 0;
		cr_assert_eq(recover(), 0, "%s: recover", label);
		check(label);
		if (st == 0)
			break; /* n is past the collection's last effect */
	}
	cr_log_info("gc: %ld effects tried, %d collections failed", n, failed);
	cr_expect_gt(failed, 10, "the errors landed in the collection");
}
