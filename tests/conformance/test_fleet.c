/*
 * test_fleet.c - `punix fleet apply|rollback|status` (frontends/cli/cmd_fleet.c,
 * docs/pcl.md "Fleet") driven as an operator would.
 *
 * Suite fleet: rebased hosts (--transport-root R, no SSH): host H with
 * target ssh://deploy@H lands in R/deploy@H_22/, so its generations are
 * R/deploy@H_22/<home>/deployments/<Stack>, its live files
 * R/deploy@H_22/<path> and its store R/deploy@H_22/<home>/store. Each host
 * has a program of its own (a package and a stack) under the fleet's
 * directory: twenty hosts deployed at once and again; failures of one host
 * (a missing secret, a type error, a file out of the fleet's directory, an
 * absolute one, a stack held by another op) that leave the others deployed;
 * --fail-fast; --on; rollback in reverse order; status; --dry-run; hosts
 * sharing one program (built once); fleet files that cannot be used; the
 * deployer killed mid-fleet and recovered; three bugs it found, fixed, kept as tests.
 *
 * Suite fleet_ssh: three real sshd on 127.0.0.1 (own host keys, ports,
 * authorized_keys files), set up as test_host_mode.c does. The three
 * targets are this machine, so each host's program has its own stack,
 * service and config file under the test's directory, and the fleet runs
 * with --deployments-root and --unit-dir in the test's directory. The
 * target's punix (host mode) is a wrapper on each sshd's PATH that runs the
 * punix under test with a PUNIX_HOME of its own (its journal) and this
 * run's sanitizer settings.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "store/store.h"
#include "tests/support/proc.h"

#define ARROW "\u2192"

static struct tdir t;
static char *home, *store, *dep, *tr, *fleet_file;

/* ---- helpers ------------------------------------------------------------------------------ */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	struct sbuf sb = SBUF_INIT;
	va_list ap;
	va_start(ap, f);
	sbuf_vprintf(&sb, f, ap);
	va_end(ap);
	return sbuf_detach(&sb, NULL);
}

static int sh(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int shf(const char *f, ...) __attribute__((format(printf, 1, 2)));
static int shf(const char *f, ...)
{
	struct sbuf c = SBUF_INIT;
	va_list ap;
	va_start(ap, f);
	sbuf_vprintf(&c, f, ap);
	va_end(ap);
	int r = sh(c.sb_buf);
	sbuf_free(&c);
	return r;
}

static char *read_path(const char *path)
{
	char *buf = NULL;
	size_t len;
	if (ops_local()->read_file(ops_local(), path, 64 << 20, &buf, &len) < 0)
		return NULL;
	return buf;
}

static void write_path(const char *path, const char *text, mode_t mode)
{
	cr_assert_eq(ops_write_atomic(ops_local(), path, text, strlen(text), mode), 0, "write %s", path);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static int count_of(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The n-th line (0-based) of text, malloc'd ("" past the end). */
static char *line_of(const char *text, int n)
{
	const char *p = text;
	for (int i = 0; i < n && p; i++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (!p)
		return strdup("");
	size_t len = strcspn(p, "\n");
	return strndup(p, len);
}

static int nlines(const char *text)
{
	return count_of(text, "\n");
}

static json_t *json_of(const char *out)
{
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	cr_assert_not_null(j, "not JSON (%s): %s", je.text, out);
	return j;
}

static const char *jstr(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));
	return s ? s : "(none)";
}

static long jint(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);
	cr_assert(json_is_integer(v), "no integer \"%s\"", key);
	return (long)json_integer_value(v);
}

static void sha_hex(const char *buf, size_t len, char out[65])
{
	unsigned char h[32];
	store_sha256(buf, len, h);
	store_hex(h, 32, out);
}

/* `punix fleet SUB <fleet_file> ARGS...` with this test's home. */
static struct proc_result fleet_v(const char *sub, va_list ap)
{
	const char *a[64];
	int n = 0;
	a[n++] = "fleet";
	a[n++] = sub;
	a[n++] = fleet_file;
	for (const char *x; (x = va_arg(ap, const char *)) && n < 63;)
		a[n++] = x;
	a[n] = NULL;
	struct proc_result r = punix_run(home, a);
	/*
	 * A host whose build failed names its log, which goes with the test's
	 * directory: its text is kept in the error output, where a failed
	 * assertion shows it.
	 */
	for (const char *l = r.out; r.status != 0 && (l = strstr(l, "(log: ")) != NULL; l += 6) {
		char path[512];
		size_t k = strcspn(l + 6, ")\n");
		if (k >= sizeof(path))
			continue;
		memcpy(path, l + 6, k);
		path[k] = '\0';
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		char buf[2048];
		size_t got = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[got] = '\0';
		/* first: a long progress log after it is what a truncated report drops */
		char *both = fmt("--- %s:\n%s\n---\n%s", path, buf, r.err);
		free(r.err);
		r.err = both;
	}
	return r;
}

static struct proc_result fleet(const char *sub, ...)
{
	va_list ap;
	va_start(ap, sub);
	struct proc_result r = fleet_v(sub, ap);
	va_end(ap);
	return r;
}

/* The deployer's journal, one op a line: "ID\tSTATE\tKIND\tSTACK\tTIME". */
static char *journal(void)
{
	const char *a[] = {"journal", "show", NULL};
	struct proc_result r = punix_run(home, a);
	cr_expect_eq(r.status, 0, "the deployer's journal: %s", r.err);
	free(r.err);
	return r.out;
}

/* ---- a fleet of rebased hosts ------------------------------------------------------------- */

struct fh {
	char file[128];    /* as the fleet names it */
	char stack[32];
	char target[128];
	char machine[32];  /* "" for none */
};

/*
 * Writes fleet/<rel> under the test directory: package App (pname "app-<tag>",
 * its build first runs `pre` when not NULL) and stack <stack>, whose
 * /etc/<tag>.conf says "<tag> v<v>"; env_extra (or NULL) is put in the
 * service's record (an `environment = { ... }`, say).
 */
static void write_prog(const char *rel, const char *tag, const char *stack, int v, const char *pre,
		       const char *svc_extra)
{
	char *text = fmt("module App { pname = \"app-%s\" version = \"%d\" recipe = \"std.shell\"\n"
			 "  recipeArgs = { command = \"%s%smkdir -p $OUTPUT/bin && echo %s-%d > $OUTPUT/bin/app && "
			 "chmod +x $OUTPUT/bin/app\" } }\n"
			 "module %s { backend = \"systemd\" storeModules = [\"App\"]\n"
			 "  services = [{ name = \"app-%s\" package = \"App\" binary = \"app\" %s }]\n"
			 "  configFiles = [{ path = \"/etc/%s.conf\" content = \"%s v%d\\n\" }] }\n",
			 tag, v, pre ? pre : "", pre ? " && " : "", tag, v, stack, tag, svc_extra ? svc_extra : "", tag,
			 tag, v);
	char *path = fmt("fleet/%s", rel);
	tdir_write(&t, path, text);
	free(path);
	free(text);
}

static void write_fleet(const struct fh *hs, int n)
{
	struct sbuf f = SBUF_INIT;
	sbuf_puts(&f, "# the fleet under test\nmodule Fleet {\n  hosts = [\n");
	for (int i = 0; i < n; i++) {
		sbuf_printf(&f, "    { file = \"%s\" stack = \"%s\" target = \"%s\"", hs[i].file, hs[i].stack, hs[i].target);
		if (hs[i].machine[0])
			sbuf_printf(&f, " machine = \"%s\"", hs[i].machine);
		sbuf_puts(&f, " }\n");
	}
	sbuf_puts(&f, "  ]\n}\n");
	tdir_write(&t, "fleet/fleet.pcl", f.sb_buf);
	sbuf_free(&f);
}

/*
 * n hosts hNN.example.com (NN from 01), each with its own program
 * hosts/hNN.pcl (tag hNN, stack SNN, version v), machine mNN.
 */
static void simple_fleet(struct fh *hs, int n, int v, const char *pre)
{
	for (int i = 0; i < n; i++) {
		memset(&hs[i], 0, sizeof(hs[i]));
		snprintf(hs[i].file, sizeof(hs[i].file), "hosts/h%02d.pcl", i + 1);
		snprintf(hs[i].stack, sizeof(hs[i].stack), "S%02d", i + 1);
		snprintf(hs[i].target, sizeof(hs[i].target), "ssh://deploy@h%02d.example.com", i + 1);
		snprintf(hs[i].machine, sizeof(hs[i].machine), "m%02d", i + 1);
		char tag[16];
		snprintf(tag, sizeof(tag), "h%02d", i + 1);
		write_prog(hs[i].file, tag, hs[i].stack, v, pre, NULL);
	}
	write_fleet(hs, n);
}

/* Where a rebased host lands: R/<user@host_port> from its target. */
static char *host_root(const char *base, const struct fh *h)
{
	const char *s = h->target + strlen("ssh://");
	const char *at = strchr(s, '@');
	const char *colon = strrchr(at ? at : s, ':');
	if (colon)
		return fmt("%s/%.*s_%s", base, (int)(colon - s), s, colon + 1);
	return fmt("%s/%s_22", base, s);
}

/* The host's current generation (0: none). */
static long current_at(const char *root, const char *d, const char *stack)
{
	char *cur = fmt("%s%s/%s/current", root, d, stack);
	char buf[64] = "";
	ssize_t n = readlink(cur, buf, sizeof(buf) - 1);
	free(cur);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long g = 0;
	cr_assert_eq(sscanf(buf, "gen-%ld.json", &g), 1, "current names '%s'", buf);
	return g;
}

/* How many generations (manifests) the host has. */
static int ngens_at(const char *root, const char *d, const char *stack)
{
	char *dir = fmt("%s%s/%s", root, d, stack);
	DIR *dd = opendir(dir);
	free(dir);
	if (!dd)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dd))) {
		size_t l = strlen(e->d_name);
		n += !strncmp(e->d_name, "gen-", 4) && l > 5 && !strcmp(e->d_name + l - 5, ".json");
	}
	closedir(dd);
	return n;
}

/*
 * The host is wholly at its current generation: each config file of the
 * current manifest is live with the manifest's hash, each pinned store path
 * is in the host's store and registered there, no temporaries are left.
 * Returns the current generation.
 */
static long wholly_current(const char *root, const char *d, const char *stack, const char *store_root,
			   const char *when)
{
	long gen = current_at(root, d, stack);
	cr_assert_gt(gen, 0, "%s: %s: current names a generation", when, root);
	char *mp = fmt("%s%s/%s/gen-%03ld.json", root, d, stack, gen);
	json_error_t je;
	json_t *m = json_load_file(mp, 0, &je);
	cr_assert_not_null(m, "%s: %s: %s", when, mp, je.text);
	json_t *files = json_object_get(m, "config_files"), *pins = json_object_get(m, "store_paths");
	cr_assert_gt(json_array_size(files), 0, "%s: the manifest %s lists its files", when, mp);
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		char *live = fmt("%s%s", root, path);
		char *buf = NULL;
		size_t len = 0;
		cr_assert_eq(ops_local()->read_file(ops_local(), live, 1 << 24, &buf, &len), 0, "%s: live %s exists",
			     when, live);
		char hex[65];
		sha_hex(buf, len, hex);
		cr_expect_str_eq(hex, sha, "%s: live %s equals gen-%03ld's", when, live, gen);
		free(buf);
		free(live);
	}
	for (size_t i = 0; i < json_array_size(pins); i++) {
		const char *p = json_string_value(json_array_get(pins, i));
		const char *name = strrchr(p, '/') + 1;
		char *tp = fmt("%s%s", root, p), *meta = fmt("%s%s/.meta/%s.json", root, store_root, name);
		cr_expect(exists(tp), "%s: pinned %s is in the host's store", when, tp);
		cr_expect(exists(meta), "%s: pinned %s is registered there", when, tp);
		free(tp);
		free(meta);
	}
	json_decref(m);
	free(mp);
	return gen;
}

/* The live config file of a rebased host of simple_fleet (host i, 0-based). */
static char *live_conf_of(const char *root, int i)
{
	char *p = fmt("%s/etc/h%02d.conf", root, i + 1);
	char *c = read_path(p);
	free(p);
	return c;
}

static void setup(void)
{
	tdir_make(&t);
	unsetenv("PUNIX_HOME");
	unsetenv("PUNIX_STATE_DIR");
	unsetenv("PUNIX_STORE_DIR");
	unsetenv("PUNIX_HOST_ROOT");
	unsetenv("PUNIX_CRASH_AT");
	unsetenv("PUNIX_FAULT_KILL_AT");
	unsetenv("FLEET_TEST_UNSET_SECRET");
	setenv("PUNIX_STATIC", "/nonexistent/punix-static", 1);
	home = tdir_at(&t, "home");
	store = tdir_at(&t, "home/store");
	dep = tdir_at(&t, "home/deployments");
	tr = tdir_at(&t, "tr");
	fleet_file = tdir_at(&t, "fleet/fleet.pcl");
	mkdir(home, 0755);
}

static void teardown(void)
{
	free(home);
	free(store);
	free(dep);
	free(tr);
	free(fleet_file);
	tdir_free(&t);
}

TestSuite(fleet, .init = setup, .fini = teardown, .timeout = 120);

/* ---- 1. twenty hosts ---------------------------------------------------------------------- */

#define N20 20

static void expect_all_deployed(const struct proc_result *r, struct fh *hs, int n, long gen, const char *when)
{
	cr_expect_eq(r->status, 0, "%s: %s%s", when, r->out, r->err);
	cr_expect_eq(nlines(r->out), n, "%s: one line per host: %s", when, r->out);
	for (int i = 0; i < n; i++) {
		char *want = fmt("host h%02d.example.com " ARROW " deployed: gen-%03ld", i + 1, gen), *got = line_of(r->out, i);
		cr_expect_str_eq(got, want, "%s: line %d in declared order", when, i + 1);
		free(want);
		free(got);
		char *root = host_root(tr, &hs[i]);
		char *mp = fmt("%s%s/%s/gen-%03ld.json", root, dep, hs[i].stack, gen);
		cr_expect(exists(mp), "%s: %s has its manifest %s", when, hs[i].target, mp);
		cr_expect_eq(wholly_current(root, dep, hs[i].stack, store, when), gen, "%s: host %d", when, i + 1);
		char *c = live_conf_of(root, i), *wc = fmt("h%02d v1\n", i + 1);
		cr_expect_str_eq(c ? c : "(none)", wc, "%s: host %d's own program", when, i + 1);
		free(c);
		free(wc);
		free(mp);
		free(root);
	}
}

Test(fleet, twenty_hosts_each_with_its_own_program_are_deployed_in_declared_order)
{
	struct fh hs[N20];
	simple_fleet(hs, N20, 1, NULL);
	struct proc_result r = fleet("apply", "--transport-root", tr, NULL);
	expect_all_deployed(&r, hs, N20, 1, "first apply");
	/* the exact lines: "host", the name padded to the widest, the arrow, the outcome */
	cr_expect(strstr(r.out, "host h01.example.com " ARROW " deployed: gen-001\n") == r.out, "%s", r.out);
	cr_expect(strstr(r.out, "\nhost h07.example.com " ARROW " deployed: gen-001\n"), "%s", r.out);
	cr_expect(strstr(r.out, "\nhost h20.example.com " ARROW " deployed: gen-001\n"), "%s", r.out);
	proc_result_free(&r);
	/* a host's directory is <user@host_port>, port 22 when the URL names none */
	char *d1 = fmt("%s/deploy@h01.example.com_22", tr);
	cr_expect(exists(d1), "%s", d1);
	free(d1);

	r = fleet("apply", "--transport-root", tr, NULL);
	expect_all_deployed(&r, hs, N20, 2, "second apply");
	proc_result_free(&r);

	r = fleet("apply", "--transport-root", tr, "--parallel", "3", NULL);
	expect_all_deployed(&r, hs, N20, 3, "--parallel 3");
	proc_result_free(&r);

	r = fleet("apply", "--transport-root", tr, "--parallel", "3", "--json", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	json_t *j = json_of(r.out);
	cr_expect(json_is_true(json_object_get(j, "ok")), "%s", r.out);
	cr_expect_str_eq(jstr(j, "op"), "apply");
	json_t *a = json_object_get(j, "hosts");
	cr_assert_eq(json_array_size(a), N20, "%s", r.out);
	for (int i = 0; i < N20; i++) {
		json_t *h = json_array_get(a, (size_t)i);
		char *name = fmt("h%02d.example.com", i + 1);
		cr_expect_str_eq(jstr(h, "host"), name);
		cr_expect_str_eq(jstr(h, "stack"), hs[i].stack);
		cr_expect_str_eq(jstr(h, "target"), hs[i].target);
		cr_expect_str_eq(jstr(h, "machine"), hs[i].machine);
		cr_expect_str_eq(jstr(h, "status"), "ok");
		cr_expect_eq(jint(h, "generation"), 4);
		cr_expect_eq(jint(h, "previous"), 3);
		cr_expect(json_is_number(json_object_get(h, "seconds")) &&
				  json_number_value(json_object_get(h, "seconds")) >= 0,
			  "%s", r.out);
		cr_expect_null(json_object_get(h, "error"));
		free(name);
	}
	json_decref(j);
	proc_result_free(&r);

	/* the deployer's journal: one deploy per host per apply, all done */
	char *jl = journal();
	cr_expect_eq(count_of(jl, "\tdone\tdeploy\t"), 4 * N20, "%s", jl);
	cr_expect_eq(count_of(jl, "\trunning\t"), 0, "%s", jl);
	free(jl);

	r = fleet("status", "--transport-root", tr, NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_eq(nlines(r.out), N20, "%s", r.out);
	cr_expect(strstr(r.out, "host h01.example.com " ARROW " S01: current gen-004 (rebased)\n") == r.out, "%s", r.out);
	cr_expect(strstr(r.out, "\nhost h20.example.com " ARROW " S20: current gen-004 (rebased)\n"), "%s", r.out);
	proc_result_free(&r);
}

/* --dry-run: each host into <deployments-root>/.dry-run/<user@host_port>/, nothing under --transport-root's. */
Test(fleet, dry_run_rebases_each_host_under_the_deployments_roots_dry_run)
{
	struct fh hs[3];
	simple_fleet(hs, 3, 1, NULL);
	struct proc_result r = fleet("apply", "--dry-run", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_eq(nlines(r.out), 3, "%s", r.out);
	proc_result_free(&r);
	char *base = fmt("%s/.dry-run", dep);
	for (int i = 0; i < 3; i++) {
		char *root = host_root(base, &hs[i]);
		cr_expect_eq(wholly_current(root, dep, hs[i].stack, store, "dry run"), 1);
		free(root);
	}
	free(base);
	char *direct = fmt("%s/S01", dep);
	cr_expect(!exists(direct), "a dry run deploys nothing outside .dry-run: %s", direct);
	free(direct);
	r = fleet("apply", "--dry-run", "--transport-root", tr, NULL);
	cr_expect_eq(r.status, 2, "--dry-run with --transport-root is a usage error: %s%s", r.out, r.err);
	proc_result_free(&r);
	r = fleet("rollback", "--dry-run", NULL);
	cr_expect_eq(r.status, 2, "--dry-run goes with apply: %s%s", r.out, r.err);
	proc_result_free(&r);
}

/* ---- 2. one host's failure is that host's ------------------------------------------------- */

Test(fleet, a_failing_host_fails_alone)
{
	/*
	 * web: fine; secret: a service secret from an unset variable ([E11] at
	 * deploy); typo: a type error ([E1] at its file:line:col); outside: a
	 * file out of the fleet's directory; abs: an absolute file (inside the
	 * fleet's directory and fine otherwise); link: a symlink in the fleet's
	 * directory to a file out of it; db: fine, with a port and a longer name.
	 */
	write_prog("hosts/web.pcl", "web", "WebStack", 1, NULL, NULL);
	write_prog("hosts/secret.pcl", "secret", "SecretStack", 1, NULL,
		   "environment = { TOKEN = { from_env = \"FLEET_TEST_UNSET_SECRET\" } }");
	/* line 1, column 43: the version is an Int */
	tdir_write(&t, "fleet/hosts/typo.pcl",
		   "module App { pname = \"app-typo\" version = 1 recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && echo x > $OUTPUT/bin/app\" } }\n"
		   "module TypoStack { backend = \"systemd\" storeModules = [\"App\"] }\n");
	write_prog("hosts/outside.pcl", "outside", "OutStack", 1, NULL, NULL);
	char *moved_from = tdir_at(&t, "fleet/hosts/outside.pcl");
	char *outside = tdir_at(&t, "outside.pcl"), *link = tdir_at(&t, "fleet/hosts/link.pcl");
	cr_assert_eq(rename(moved_from, outside), 0);
	free(moved_from);
	write_prog("hosts/abs.pcl", "abs", "AbsStack", 1, NULL, NULL);
	cr_assert_eq(symlink(outside, link), 0);
	write_prog("hosts/db.pcl", "db", "DbStack", 1, NULL, NULL);
	char *abs = tdir_at(&t, "fleet/hosts/abs.pcl");
	struct fh hs[7] = {
		{"hosts/web.pcl", "WebStack", "ssh://deploy@web.example.com", "web"},
		{"hosts/secret.pcl", "SecretStack", "ssh://deploy@secret.example.com", ""},
		{"hosts/typo.pcl", "TypoStack", "ssh://deploy@typo.example.com", ""},
		{"../outside.pcl", "OutStack", "ssh://deploy@outside.example.com", ""},
		{"", "AbsStack", "ssh://deploy@abs.example.com", ""},
		{"hosts/link.pcl", "OutStack", "ssh://deploy@link.example.com", ""},
		{"hosts/db.pcl", "DbStack", "ssh://deploy@database-primary.example.com:2222", "db"},
	};
	snprintf(hs[4].file, sizeof(hs[4].file), "%s", abs);
	write_fleet(hs, 7);

	struct proc_result r = fleet("apply", "--transport-root", tr, NULL);
	cr_expect_eq(r.status, 1, "a host failed: %s%s", r.out, r.err);
	cr_expect_eq(nlines(r.out), 7, "one line per host: %s", r.out);
	/* every name padded to the widest, database-primary.example.com (28) */
	char *l0 = line_of(r.out, 0), *l6 = line_of(r.out, 6);
	cr_expect_str_eq(l0, "host web.example.com              " ARROW " deployed: gen-001");
	cr_expect_str_eq(l6, "host database-primary.example.com " ARROW " deployed: gen-001");
	free(l0);
	free(l6);
	char *l1 = line_of(r.out, 1), *l2 = line_of(r.out, 2), *l3 = line_of(r.out, 3), *l4 = line_of(r.out, 4),
	     *l5 = line_of(r.out, 5);
	cr_expect(!strncmp(l1, "host secret.example.com           " ARROW " FAILED: [E11] ", strlen("host secret.example.com           " ARROW " FAILED: [E11] ")),
		  "%s", l1);
	cr_expect(strstr(l1, "FLEET_TEST_UNSET_SECRET") && strstr(l1, "not set"), "the secret's source is named: %s", l1);
	char *typo_at = fmt("%s/fleet/hosts/typo.pcl:1:43: [E1] ", t.path);
	cr_expect(strstr(l2, typo_at) != NULL, "want '%s' in: %s", typo_at, l2);
	cr_expect(strstr(l2, "host typo.example.com             " ARROW " FAILED: ") == l2, "%s", l2);
	cr_expect(strstr(l3, "FAILED: host file '../outside.pcl' leads out of the fleet's directory") != NULL, "%s", l3);
	cr_expect(strstr(l4, "FAILED: host file '") && strstr(l4, "' is absolute"), "%s", l4);
	cr_expect(strstr(l5, "FAILED: host file 'hosts/link.pcl' leads out of the fleet's directory") != NULL, "%s", l5);
	free(typo_at);
	free(l1);
	free(l2);
	free(l3);
	free(l4);
	free(l5);
	proc_result_free(&r);

	/* the failed hosts have nothing deployed: no root at all, or no generation */
	for (int i = 1; i <= 5; i++) {
		char *root = host_root(tr, &hs[i]);
		cr_expect_eq(current_at(root, dep, hs[i].stack), 0, "%s has no generation", hs[i].target);
		char *c = fmt("%s/etc", root);
		cr_expect(!exists(c), "nothing of %s is live: %s", hs[i].target, c);
		free(c);
		free(root);
	}
	const int ok_hosts[] = {0, 6};
	for (int k = 0; k < 2; k++) {
		char *root = host_root(tr, &hs[ok_hosts[k]]);
		cr_expect_eq(wholly_current(root, dep, hs[ok_hosts[k]].stack, store, "beside failures"), 1);
		free(root);
	}
	char *dbroot = fmt("%s/deploy@database-primary.example.com_2222", tr);
	cr_expect(exists(dbroot), "the URL's port names the directory: %s", dbroot);
	free(dbroot);

	/* --json: the same outcome per host */
	r = fleet("apply", "--transport-root", tr, "--json", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	json_t *j = json_of(r.out);
	cr_expect(json_is_false(json_object_get(j, "ok")), "%s", r.out);
	json_t *a = json_object_get(j, "hosts");
	cr_assert_eq(json_array_size(a), 7, "%s", r.out);
	const char *want[] = {"ok", "failed", "failed", "failed", "failed", "failed", "ok"};
	for (size_t i = 0; i < 7; i++) {
		json_t *h = json_array_get(a, i);
		cr_expect_str_eq(jstr(h, "status"), want[i], "host %zu: %s", i, r.out);
		if (!strcmp(want[i], "ok")) {
			cr_expect_eq(jint(h, "generation"), 2);
			cr_expect_eq(jint(h, "previous"), 1);
		} else {
			cr_expect(json_is_string(json_object_get(h, "error")), "host %zu: %s", i, r.out);
			cr_expect_null(json_object_get(h, "generation"), "host %zu: %s", i, r.out);
		}
	}
	cr_expect(strstr(jstr(json_array_get(a, 1), "error"), "[E11]") != NULL, "%s", r.out);
	cr_expect_str_eq(jstr(json_array_get(a, 0), "machine"), "web");
	cr_expect_null(json_object_get(json_array_get(a, 1), "machine"), "no machine, no field: %s", r.out);
	json_decref(j);
	proc_result_free(&r);

	/* the secret set: that host deploys too; the others stay as they were */
	setenv("FLEET_TEST_UNSET_SECRET", "s3cret-value", 1);
	r = fleet("apply", "--transport-root", tr, "--on", "secret.example.com", NULL);
	unsetenv("FLEET_TEST_UNSET_SECRET");
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_str_eq(r.out, "host secret.example.com " ARROW " deployed: gen-001\n");
	cr_expect(strstr(r.out, "s3cret") == NULL && strstr(r.err, "s3cret") == NULL, "no secret in the report");
	proc_result_free(&r);
	char *sroot = host_root(tr, &hs[1]);
	wholly_current(sroot, dep, "SecretStack", store, "the secret set");
	char *sidecar = fmt("%s/etc/punix/secrets/SecretStack/app-secret.env", sroot);
	char *sc = read_path(sidecar);
	cr_expect(sc && strstr(sc, "TOKEN=\"s3cret-value\""), "the sidecar %s: %s", sidecar, sc ? sc : "(none)");
	free(sc);
	free(sidecar);
	free(sroot);
	free(abs);
	free(outside);
	free(link);
}

/* A stack held by another op on its host: that host BLOCKED, the others deployed; status says so. */
Test(fleet, a_host_whose_stack_another_op_holds_is_blocked)
{
	struct fh hs[3];
	simple_fleet(hs, 3, 1, NULL);
	struct proc_result r = fleet("apply", "--transport-root", tr, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	/* the stack's lock on host 2, as another deployer's op holds it */
	char *root = host_root(tr, &hs[1]);
	char *lock = fmt("%s%s/.locks/S02.lock", root, dep);
	int fd = open(lock, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s", lock);
	cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
	cr_assert_eq(ftruncate(fd, 0), 0);
	const char *who = "held by pid 4242 on elsewhere (stack 'S02')\n";
	cr_assert_eq(write(fd, who, strlen(who)), (ssize_t)strlen(who));

	r = fleet("status", "--transport-root", tr, NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "host h02.example.com " ARROW " S02: current gen-001 (rebased); an op is running there\n"),
		  "%s", r.out);
	cr_expect(strstr(r.out, "host h01.example.com " ARROW " S01: current gen-001 (rebased)\n"), "%s", r.out);
	proc_result_free(&r);
	r = fleet("status", "--transport-root", tr, "--json", NULL);
	json_t *j = json_of(r.out);
	json_t *a = json_object_get(j, "hosts");
	cr_expect(json_is_true(json_object_get(json_array_get(a, 1), "op_running")), "%s", r.out);
	cr_expect(json_is_false(json_object_get(json_array_get(a, 0), "op_running")), "%s", r.out);
	json_decref(j);
	proc_result_free(&r);

	r = fleet("apply", "--transport-root", tr, "--json", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	j = json_of(r.out);
	a = json_object_get(j, "hosts");
	cr_expect_str_eq(jstr(json_array_get(a, 0), "status"), "ok", "%s", r.out);
	cr_expect_str_eq(jstr(json_array_get(a, 1), "status"), "blocked", "%s", r.out);
	cr_expect(strstr(jstr(json_array_get(a, 1), "error"), "pid 4242"), "the holder is named: %s", r.out);
	cr_expect_str_eq(jstr(json_array_get(a, 2), "status"), "ok", "%s", r.out);
	json_decref(j);
	proc_result_free(&r);
	r = fleet("apply", "--transport-root", tr, NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "host h02.example.com " ARROW " BLOCKED: ") && strstr(r.out, "busy"), "%s", r.out);
	cr_expect(strstr(r.out, "host h03.example.com " ARROW " deployed: gen-003\n"), "%s", r.out);
	proc_result_free(&r);
	cr_expect_eq(current_at(root, dep, "S02"), 1, "the blocked host is untouched");
	close(fd);
	r = fleet("apply", "--transport-root", tr, "--on", "m02", NULL);
	cr_expect_eq(r.status, 0, "the lock released: %s%s", r.out, r.err);
	cr_expect_str_eq(r.out, "host h02.example.com " ARROW " deployed: gen-002\n");
	proc_result_free(&r);
	free(lock);
	free(root);
}

/* ---- 3. --fail-fast ----------------------------------------------------------------------- */

Test(fleet, fail_fast_starts_no_host_after_the_first_failure)
{
	struct fh hs[6];
	simple_fleet(hs, 6, 1, NULL);
	/* host 3's service needs a secret nobody set: it fails at deploy time */
	write_prog(hs[2].file, "h03", hs[2].stack, 1, NULL,
		   "environment = { TOKEN = { from_env = \"FLEET_TEST_UNSET_SECRET\" } }");
	struct proc_result r = fleet("apply", "--transport-root", tr, "--parallel", "1", "--fail-fast", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect_eq(nlines(r.out), 6, "%s", r.out);
	for (int i = 0; i < 6; i++) {
		char *l = line_of(r.out, i), *want;
		if (i < 2)
			want = fmt("host h%02d.example.com " ARROW " deployed: gen-001", i + 1);
		else if (i == 2)
			want = fmt("host h03.example.com " ARROW " FAILED: [E11] ");
		else
			want = fmt("host h%02d.example.com " ARROW " not attempted (--fail-fast: another host failed first)",
				   i + 1);
		cr_expect(!strncmp(l, want, strlen(want)) && (i == 2 || strlen(l) == strlen(want)), "line %d: '%s', want '%s'",
			  i + 1, l, want);
		free(l);
		free(want);
		char *root = host_root(tr, &hs[i]);
		cr_expect_eq(current_at(root, dep, hs[i].stack), i < 2 ? 1 : 0, "host %d", i + 1);
		free(root);
	}
	proc_result_free(&r);

	r = fleet("apply", "--transport-root", tr, "--parallel", "1", "--fail-fast", "--json", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	json_t *j = json_of(r.out);
	json_t *a = json_object_get(j, "hosts");
	const char *want[] = {"ok", "ok", "failed", "not-attempted", "not-attempted", "not-attempted"};
	for (size_t i = 0; i < 6; i++)
		cr_expect_str_eq(jstr(json_array_get(a, i), "status"), want[i], "host %zu: %s", i + 1, r.out);
	json_decref(j);
	proc_result_free(&r);
	/* not attempted means no op: the journal has 4 deploys done, 2 failed (host 3's) and none of hosts 4..6 */
	char *jl = journal();
	cr_expect_eq(count_of(jl, "\tdeploy\tS04\t") + count_of(jl, "\tdeploy\tS05\t") + count_of(jl, "\tdeploy\tS06\t"),
		     0, "%s", jl);
	cr_expect_eq(count_of(jl, "\tdone\tdeploy\t"), 4, "%s", jl);
	free(jl);

	/* without --fail-fast, the others go on */
	r = fleet("apply", "--transport-root", tr, "--parallel", "1", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect_eq(count_of(r.out, " deployed: "), 5, "%s", r.out);
	cr_expect(strstr(r.out, "host h06.example.com " ARROW " deployed: gen-001\n"), "%s", r.out);
	proc_result_free(&r);

	/*
	 * A host whose file does not even check fails before any host starts:
	 * with --fail-fast no host is attempted, whatever its place (the
	 * fleet's programs are all checked before the first op).
	 */
	tdir_write(&t, "fleet/hosts/h05.pcl", "module Broken { pname = 1 }\n");
	r = fleet("apply", "--transport-root", tr, "--parallel", "1", "--fail-fast", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "host h05.example.com " ARROW " FAILED: "), "%s", r.out);
	cr_expect_eq(count_of(r.out, "not attempted (--fail-fast: another host failed first)"), 5, "%s", r.out);
	proc_result_free(&r);
}

/* ---- 4. --on ------------------------------------------------------------------------------ */

Test(fleet, on_selects_hosts_by_machine_name_and_by_host_glob)
{
	struct fh hs[6];
	simple_fleet(hs, 6, 1, NULL);
	/* host 6 has no machine name; host 5 is "web" */
	snprintf(hs[4].machine, sizeof(hs[4].machine), "web");
	hs[5].machine[0] = '\0';
	write_fleet(hs, 6);

	struct proc_result r = fleet("apply", "--transport-root", tr, "--on", "web", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_str_eq(r.out, "host h05.example.com " ARROW " deployed: gen-001\n", "by machine name");
	proc_result_free(&r);

	/* a glob on the host, a glob on the machine, and a machine name, comma-separated */
	r = fleet("apply", "--transport-root", tr, "--on", "h0[12].example.*,m0?,nothing-here", "--json", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	json_t *j = json_of(r.out);
	json_t *a = json_object_get(j, "hosts");
	/* m0? matches hosts 1..4 (m01..m04); host 5's machine is web; host 6 has none */
	cr_expect_eq(json_array_size(a), 4, "%s", r.out);
	for (size_t i = 0; i < json_array_size(a) && i < 4; i++) {
		char *name = fmt("h%02zu.example.com", i + 1);
		cr_expect_str_eq(jstr(json_array_get(a, i), "host"), name, "%s", r.out);
		free(name);
	}
	json_decref(j);
	proc_result_free(&r);

	r = fleet("apply", "--transport-root", tr, "--on", "h06.example.com", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_str_eq(r.out, "host h06.example.com " ARROW " deployed: gen-001\n", "by the target's host");
	proc_result_free(&r);

	long want[] = {1, 1, 1, 1, 1, 1};
	for (int i = 0; i < 6; i++) {
		char *root = host_root(tr, &hs[i]);
		cr_expect_eq(current_at(root, dep, hs[i].stack), want[i], "host %d", i + 1);
		free(root);
	}

	/* the padding is that of the selected hosts */
	hs[5].target[0] = '\0';
	snprintf(hs[5].target, sizeof(hs[5].target), "ssh://deploy@h06.longer-name.example.com");
	write_fleet(hs, 6);
	/* (a rebased host never deployed has no root yet: status cannot read it, as `service status` cannot) */
	r = fleet("status", "--transport-root", tr, "--on", "m01,h06*", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "host h01.example.com             " ARROW " S01: current gen-001 (rebased)\n"
				"host h06.longer-name.example.com " ARROW " FAILED: ") == r.out &&
			  strstr(r.out, "cannot be used"),
		  "%s", r.out);
	proc_result_free(&r);
	r = fleet("apply", "--transport-root", tr, "--on", "m01,h06*", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_str_eq(r.out, "host h01.example.com             " ARROW " deployed: gen-002\n"
				"host h06.longer-name.example.com " ARROW " deployed: gen-001\n");
	proc_result_free(&r);
	r = fleet("status", "--transport-root", tr, "--on", "m01,h06*", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_str_eq(r.out, "host h01.example.com             " ARROW " S01: current gen-002 (rebased)\n"
				"host h06.longer-name.example.com " ARROW " S06: current gen-001 (rebased)\n");
	proc_result_free(&r);

	/* nothing selected is a usage error, and nothing is done */
	char *jl_before = journal();
	r = fleet("apply", "--transport-root", tr, "--on", "nomatch*,zz", NULL);
	cr_expect_eq(r.status, 2, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "selects none of the fleet's 6 host(s)"), "%s", r.err);
	cr_expect_str_eq(r.out, "");
	proc_result_free(&r);
	r = fleet("status", "--transport-root", tr, "--on", "nomatch", NULL);
	cr_expect_eq(r.status, 2, "status too: %s%s", r.out, r.err);
	proc_result_free(&r);
	r = fleet("rollback", "--transport-root", tr, "--on", "nomatch", NULL);
	cr_expect_eq(r.status, 2, "rollback too: %s%s", r.out, r.err);
	proc_result_free(&r);
	char *jl_after = journal();
	cr_expect_str_eq(jl_after, jl_before, "no op was started");
	free(jl_before);
	free(jl_after);
}

/* ---- 5. rollback ---------------------------------------------------------------------------- */

Test(fleet, rollback_goes_in_reverse_order_and_a_host_with_one_generation_fails_alone)
{
	struct fh hs[4];
	simple_fleet(hs, 4, 1, NULL);
	struct proc_result r = fleet("apply", "--transport-root", tr, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	/* hosts 1..3 get a second generation (a new version of their programs); host 4 keeps one */
	for (int i = 0; i < 3; i++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "h%02d", i + 1);
		write_prog(hs[i].file, tag, hs[i].stack, 2, NULL, NULL);
	}
	r = fleet("apply", "--transport-root", tr, "--on", "m01,m02,m03", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	char *jl = journal();
	int ops_before = nlines(jl);
	free(jl);

	r = fleet("rollback", "--transport-root", tr, "--parallel", "1", "--json", NULL);
	cr_expect_eq(r.status, 1, "host 4 cannot roll back: %s%s", r.out, r.err);
	json_t *j = json_of(r.out);
	cr_expect_str_eq(jstr(j, "op"), "rollback");
	cr_expect(json_is_false(json_object_get(j, "ok")), "%s", r.out);
	json_t *a = json_object_get(j, "hosts");
	cr_assert_eq(json_array_size(a), 4, "%s", r.out);
	/* the report is in declared order, whatever order the hosts ran in */
	for (size_t i = 0; i < 4; i++) {
		json_t *h = json_array_get(a, i);
		char *name = fmt("h%02zu.example.com", i + 1);
		cr_expect_str_eq(jstr(h, "host"), name, "%s", r.out);
		free(name);
		if (i < 3) {
			cr_expect_str_eq(jstr(h, "status"), "ok", "%s", r.out);
			cr_expect_eq(jint(h, "generation"), 1, "%s", r.out);
			cr_expect_eq(jint(h, "previous"), 2, "%s", r.out);
		} else {
			cr_expect_str_eq(jstr(h, "status"), "failed", "%s", r.out);
			cr_expect(strstr(jstr(h, "error"), "[E12]") != NULL, "%s", r.out);
		}
	}
	json_decref(j);
	proc_result_free(&r);

	/* the hosts ran in reverse declared order: with --parallel 1 the journal has them one after another */
	jl = journal();
	char *order = NULL;
	{
		struct sbuf o = SBUF_INIT;
		int n = nlines(jl);
		for (int i = ops_before; i < n; i++) {
			char *l = line_of(jl, i);
			char *s = strstr(l, "\trollback\t");
			if (s)
				sbuf_printf(&o, "%.3s ", s + strlen("\trollback\t"));
			free(l);
		}
		sbuf_append(&o, "", 0);
		order = sbuf_detach(&o, NULL);
	}
	cr_expect_str_eq(order, "S04 S03 S02 S01 ", "the rollbacks' order in the journal: %s", jl);
	free(order);
	free(jl);

	for (int i = 0; i < 4; i++) {
		char *root = host_root(tr, &hs[i]);
		cr_expect_eq(wholly_current(root, dep, hs[i].stack, store, "rolled back"), 1, "host %d", i + 1);
		cr_expect_eq(ngens_at(root, dep, hs[i].stack), i < 3 ? 2 : 1, "a rollback removes no generation");
		char *c = live_conf_of(root, i), *want = fmt("h%02d v1\n", i + 1);
		cr_expect_str_eq(c ? c : "(none)", want, "host %d's file is gen-001's again", i + 1);
		free(c);
		free(want);
		free(root);
	}
	r = fleet("status", "--transport-root", tr, "--json", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	j = json_of(r.out);
	a = json_object_get(j, "hosts");
	for (size_t i = 0; i < 4; i++) {
		cr_expect_eq(jint(json_array_get(a, i), "current"), 1, "%s", r.out);
		cr_expect_eq(jint(json_array_get(a, i), "generations"), i < 3 ? 2 : 1, "%s", r.out);
		cr_expect_str_eq(jstr(json_array_get(a, i), "mode"), "rebased", "%s", r.out);
	}
	json_decref(j);
	proc_result_free(&r);

	/* the text form: host 4 still has one generation; host 1 rolls back from a new gen-003 to gen-002 */
	r = fleet("rollback", "--transport-root", tr, "--on", "m04", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "host h04.example.com " ARROW " FAILED: [E12] "), "%s", r.out);
	proc_result_free(&r);
	r = fleet("apply", "--transport-root", tr, "--on", "m01", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_str_eq(r.out, "host h01.example.com " ARROW " deployed: gen-003\n");
	proc_result_free(&r);
	r = fleet("rollback", "--transport-root", tr, "--on", "m01", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_str_eq(r.out, "host h01.example.com " ARROW " rolled back: gen-002\n");
	proc_result_free(&r);

	/*
	 * --fail-fast in reverse order: host 4 (one generation) goes first and
	 * fails, so hosts 1..3, declared before it, are not attempted.
	 */
	r = fleet("rollback", "--transport-root", tr, "--parallel", "1", "--fail-fast", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	for (int i = 0; i < 3; i++) {
		char *l = line_of(r.out, i),
		     *want = fmt("host h%02d.example.com " ARROW " not attempted (--fail-fast: another host failed first)", i + 1);
		cr_expect_str_eq(l, want, "%s", r.out);
		free(l);
		free(want);
	}
	char *l4 = line_of(r.out, 3);
	cr_expect(strstr(l4, "host h04.example.com " ARROW " FAILED: [E12] ") == l4, "%s", r.out);
	free(l4);
	proc_result_free(&r);
	char *root1 = host_root(tr, &hs[0]);
	cr_expect_eq(current_at(root1, dep, "S01"), 2, "host 1 was not rolled back");
	free(root1);
}

/* ---- hosts sharing a program, and the "local" target --------------------------------------- */

Test(fleet, hosts_sharing_one_program_build_it_once)
{
	/* the build counts itself in a file the build user may write */
	char *cnt = tdir_at(&t, "count");
	cr_assert_eq(mkdir(cnt, 0777), 0);
	cr_assert_eq(chmod(cnt, 0777), 0);
	char *pre = fmt("echo built >> %s/n; sleep 0.2", cnt);
	write_prog("hosts/web.pcl", "web", "Web", 1, pre, NULL);
	struct fh hs[6];
	for (int i = 0; i < 6; i++) {
		memset(&hs[i], 0, sizeof(hs[i]));
		snprintf(hs[i].file, sizeof(hs[i].file), "hosts/web.pcl");
		snprintf(hs[i].stack, sizeof(hs[i].stack), "Web");
		if (i < 5)
			snprintf(hs[i].target, sizeof(hs[i].target), "ssh://deploy@w%d.example.com", i + 1);
		else
			snprintf(hs[i].target, sizeof(hs[i].target), "local");
	}
	write_fleet(hs, 6);
	struct proc_result r = fleet("apply", "--transport-root", tr, NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_eq(count_of(r.out, " " ARROW " deployed: gen-001\n"), 6, "%s", r.out);
	/* "local" is the report's name for this machine, rebased into R/local */
	cr_expect(strstr(r.out, "\nhost local          " ARROW " deployed: gen-001\n"), "%s", r.out);
	proc_result_free(&r);
	char *n = fmt("%s/n", cnt), *built = read_path(n);
	cr_expect_str_eq(built ? built : "(none)", "built\n", "one build for six hosts");
	for (int i = 0; i < 6; i++) {
		char *root = i < 5 ? host_root(tr, &hs[i]) : fmt("%s/local", tr);
		cr_expect_eq(wholly_current(root, dep, "Web", store, "a shared program"), 1, "host %d", i + 1);
		free(root);
	}
	free(built);
	free(n);
	free(pre);
	free(cnt);
}

/* ---- the fleet file itself ------------------------------------------------------------------ */

/*
 * A fleet file that cannot be used stops the command before any host, with
 * the exit codes of docs/cli.md's table: 2 for a path that is missing, 1
 * for a located or coded error. Usage errors are 2.
 */
Test(fleet, a_fleet_file_that_cannot_be_used_stops_before_any_host)
{
	struct fh hs[2];
	simple_fleet(hs, 2, 1, NULL);
	struct {
		const char *rel, *text, *err;
		int code;
	} cases[] = {
		{"missing.pcl", NULL, "No such file or directory", 2},
		{"typed.pcl", "module Fleet { hosts = [ { file = 1 stack = \"S01\" target = \"local\" } ] }\n",
		 "typed.pcl:1:35: error: [E1] ", 1},
		{"badtarget.pcl",
		 "module Fleet { hosts = [ { file = \"hosts/h01.pcl\" stack = \"S01\" target = \"http://x\" } ] }\n",
		 "error: [E6] ", 1},
		{"twomachines.pcl",
		 "module Fleet { hosts = [ { file = \"hosts/h01.pcl\" stack = \"S01\" target = \"local\" machine = \"m\" }\n"
		 "  { file = \"hosts/h02.pcl\" stack = \"S02\" target = \"local\" machine = \"m\" } ] }\n",
		 "error: [E3] ", 1},
		{"nofleet.pcl", "module Data { x = 1 }\n", "[E2] ", 1},
		{"twofleets.pcl", "module F1 { hosts = [] }\nmodule F2 { hosts = [] }\n", "more than one fleet module", 1},
	};
	char *jl_before = journal();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *rel = fmt("fleet/%s", cases[i].rel), *path = tdir_at(&t, rel);
		if (cases[i].text)
			tdir_write(&t, rel, cases[i].text);
		const char *a[] = {"fleet", "apply", path, "--transport-root", tr, NULL};
		struct proc_result r = punix_run(home, a);
		cr_expect_eq(r.status, cases[i].code, "%s: %s%s", cases[i].rel, r.out, r.err);
		cr_expect(strstr(r.err, cases[i].err) != NULL, "%s: want '%s' in: %s", cases[i].rel, cases[i].err, r.err);
		cr_expect_str_eq(r.out, "", "%s: no host reported", cases[i].rel);
		proc_result_free(&r);
		free(rel);
		free(path);
	}
	struct {
		const char *args[8];
		const char *err;
	} usage[] = {
		{{"apply", "--parallel", "0"}, "--parallel needs a number of hosts from 1 to 1024"},
		{{"apply", "--parallel", "1025"}, "--parallel needs a number of hosts from 1 to 1024"},
		{{"apply", "--enable"}, "--enable goes with --activate"},
		{{"status", "--fail-fast"}, "go with apply and rollback"},
		{{"apply", "--mode", "sometimes"}, "--mode is host, agentless or auto"},
		{{"apply", "--transport-root", "relative/dir"}, "--transport-root needs an absolute path"},
		{{"apply", "--remote-punix", "bin/punix"}, "--remote-punix needs an absolute path"},
		{{"frob"}, "unknown fleet command 'frob'"},
	};
	for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
		const char *a[16] = {"fleet", usage[i].args[0]};
		int n = 2;
		a[n++] = fleet_file;
		for (int k = 1; usage[i].args[k]; k++)
			a[n++] = usage[i].args[k];
		a[n] = NULL;
		struct proc_result r = punix_run(home, a);
		cr_expect_eq(r.status, 2, "%s %s: %s%s", usage[i].args[0], usage[i].args[1] ? usage[i].args[1] : "", r.out,
			     r.err);
		cr_expect(strstr(r.err, usage[i].err) != NULL, "want '%s' in: %s", usage[i].err, r.err);
		proc_result_free(&r);
	}
	char *jl_after = journal();
	cr_expect_str_eq(jl_after, jl_before, "no op was started");
	cr_expect(!exists(tr), "nothing was made under the transport root");
	free(jl_before);
	free(jl_after);
}

/*
 * The help states the exit codes the command uses (it once promised 3 for
 * a fleet file that cannot be used, which no file gave).
 */
Test(fleet, the_help_states_the_exit_codes_the_command_uses)
{
	const char *a[] = {"fleet", "--help", NULL};
	struct proc_result r = punix_run(home, a);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	tdir_write(&t, "nofleet.pcl", "module Data { x = 1 }\n");
	char *nf = tdir_at(&t, "nofleet.pcl");
	const char *b[] = {"fleet", "apply", nf, NULL};
	struct proc_result r2 = punix_run(home, b);
	bool help_says_3 = strstr(r.out, "3 the fleet file could not be used") != NULL;
	cr_expect(!help_says_3 || r2.status == 3,
		  "the help says a fleet file that cannot be used exits 3; a file without a fleet module exits %d (%s)",
		  r2.status, r2.err);
	proc_result_free(&r);
	proc_result_free(&r2);
	free(nf);
}

/*
 * A fleet with no hosts (which `punix check` accepts) is nothing to do
 * (exit 0), not an --on that selected nothing (once blamed on the option).
 */
Test(fleet, an_empty_fleet_is_not_blamed_on_an_on_that_was_not_given)
{
	tdir_write(&t, "fleet/fleet.pcl", "module Fleet { hosts = [] }\n");
	const char *c[] = {"check", fleet_file, NULL};
	struct proc_result r = punix_run(home, c);
	cr_expect_eq(r.status, 0, "an empty fleet checks: %s%s", r.out, r.err);
	proc_result_free(&r);
	r = fleet("apply", "--transport-root", tr, NULL);
	cr_expect(r.status == 0 || r.status == 2, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "--on") == NULL, "no --on was given, yet: %s", r.err);
	proc_result_free(&r);
}

/*
 * FILE must be the fleet's file: a directory is refused (exit 2). It once
 * read every .pcl under it and resolved the hosts' files against its
 * parent, reaching a program outside the directory the operator named.
 */
Test(fleet, a_directory_given_as_the_fleet_file_does_not_reach_out_of_it)
{
	char *dir = tdir_at(&t, "fleet");
	write_prog("hosts/h01.pcl", "h01", "S01", 1, NULL, NULL);
	/* a program beside the fleet's directory, not in it */
	char *text = fmt("module App { pname = \"app-sib\" version = \"1\" recipe = \"std.shell\"\n"
			 "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && echo s > $OUTPUT/bin/app\" } }\n"
			 "module Sib { backend = \"systemd\" storeModules = [\"App\"]\n"
			 "  configFiles = [{ path = \"/etc/sib.conf\" content = \"sibling\\n\" }] }\n");
	tdir_write(&t, "sibling/x.pcl", text);
	free(text);
	struct fh hs[2] = {
		{"hosts/h01.pcl", "S01", "ssh://deploy@h01.example.com", ""},
		{"sibling/x.pcl", "Sib", "ssh://deploy@sib.example.com", ""},
	};
	write_fleet(hs, 2);
	const char *a[] = {"fleet", "apply", dir, "--transport-root", tr, NULL};
	struct proc_result r = punix_run(home, a);
	cr_log_info("fleet apply DIR: exit %d: %s%s", r.status, r.out, r.err);
	char *sroot = host_root(tr, &hs[1]);
	cr_expect_eq(current_at(sroot, dep, "Sib"), 0, "a program outside DIR was deployed: %s", r.out);
	bool refused = r.status == 2;
	bool as_file = strstr(r.out, "host h01.example.com " ARROW " deployed: gen-001\n") != NULL;
	cr_expect(refused || as_file, "DIR refused, or its hosts/h01.pcl used: exit %d: %s%s", r.status, r.out, r.err);
	proc_result_free(&r);
	/* named by its file, the same fleet keeps its hosts in its directory */
	r = fleet("apply", "--transport-root", tr, NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "host h01.example.com " ARROW " deployed: gen-00"), "%s", r.out);
	cr_expect(strstr(r.out, "host sib.example.com " ARROW " FAILED: host file ") && strstr(r.out, "No such file"),
		  "%s", r.out);
	proc_result_free(&r);
	free(sroot);
	free(dir);
}

/* ---- 7. the deployer killed mid-fleet ------------------------------------------------------- */

/* Version v of the twenty hosts' programs, each package's build taking host i (0-based) 50 ms * i. */
static void slow_programs(struct fh *hs, int v)
{
	for (int i = 0; i < N20; i++) {
		char tag[16], pre[32];
		snprintf(tag, sizeof(tag), "h%02d", i + 1);
		snprintf(pre, sizeof(pre), "sleep %d.%02d", (i * 5) / 100, (i * 5) % 100);
		write_prog(hs[i].file, tag, hs[i].stack, v, pre, NULL);
	}
}

/*
 * `fleet apply --parallel 20` of version v, killed with SIGKILL after 0.5 s
 * or (at_first_flip) as soon as one host's new generation is current; then
 * `punix recover`, which must exit 0 and leave no op running; then every
 * host is wholly at one generation, its old one (version v-1) or its new
 * one (version v). Returns how many hosts are at the new one.
 */
static int killed_apply(struct fh *hs, int v, bool at_first_flip)
{
	long old[N20];
	char *roots[N20];
	for (int i = 0; i < N20; i++) {
		roots[i] = host_root(tr, &hs[i]);
		old[i] = current_at(roots[i], dep, hs[i].stack);
	}
	slow_programs(hs, v);
	char *log = tdir_at(&t, "killed.log");
	const char *a[] = {"fleet", "apply", fleet_file, "--transport-root", tr, "--parallel", "20", NULL};
	pid_t pid = punix_start(home, a, log);
	bool flipped = false, exited = false;
	int wst = 0;
	if (at_first_flip) {
		for (int n = 0; n < 10000 && !flipped && !exited; n++) {
			for (int i = 0; i < N20 && !flipped; i++)
				flipped = current_at(roots[i], dep, hs[i].stack) != old[i];
			if (!flipped) {
				exited = waitpid(pid, &wst, WNOHANG) == pid;
				usleep(1000);
			}
		}
	} else {
		usleep(500 * 1000);
	}
	if (!exited)
		cr_assert_eq(kill(pid, SIGKILL), 0);
	int st = exited ? (WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst)) : punix_wait(pid);
	char *out = read_path(log);
	cr_assert_eq(st, 128 + SIGKILL, "v%d: killed mid-way (exit %d): %s", v, st, out ? out : "");
	free(out);
	free(log);

	char *jl = journal();
	cr_log_info("v%d killed %s: %d op(s) left running in the journal", v, at_first_flip ? "at the first flip" : "at 0.5 s",
		    count_of(jl, "\trunning\t"));
	free(jl);
	const char *rc[] = {"recover", NULL};
	struct proc_result r = punix_run(home, rc);
	cr_expect_eq(r.status, 0, "v%d: punix recover: %s%s", v, r.out, r.err);
	proc_result_free(&r);
	jl = journal();
	cr_expect_eq(count_of(jl, "\trunning\t"), 0, "v%d: nothing left running after recover: %s", v, jl);
	free(jl);

	int at_new = 0;
	for (int i = 0; i < N20; i++) {
		long g = wholly_current(roots[i], dep, hs[i].stack, store, "after the kill and recover");
		bool is_new = g != old[i];
		char *c = live_conf_of(roots[i], i), *want = fmt("h%02d v%d\n", i + 1, is_new ? v : v - 1);
		cr_expect_str_eq(c ? c : "(none)", want, "v%d: host %d at gen-%03ld (was gen-%03ld)", v, i + 1, g, old[i]);
		cr_expect(!is_new || g > old[i], "v%d: host %d: gen-%03ld after gen-%03ld", v, i + 1, g, old[i]);
		at_new += is_new;
		free(c);
		free(want);
		free(roots[i]);
	}
	cr_log_info("v%d: %d of %d hosts had their new generation when the deployer was killed", v, at_new, N20);
	return at_new;
}

/* The next apply deploys every host: each wholly at a new generation, with version v live. */
static void apply_all_after_kill(struct fh *hs, int v)
{
	struct proc_result r = fleet("apply", "--transport-root", tr, "--parallel", "20", NULL);
	cr_expect_eq(r.status, 0, "v%d: the next apply: %s%s", v, r.out, r.err);
	cr_expect_eq(count_of(r.out, " deployed: gen-"), N20, "%s", r.out);
	proc_result_free(&r);
	for (int i = 0; i < N20; i++) {
		char *root = host_root(tr, &hs[i]);
		wholly_current(root, dep, hs[i].stack, store, "after the next apply");
		char *c = live_conf_of(root, i), *want = fmt("h%02d v%d\n", i + 1, v);
		cr_expect_str_eq(c ? c : "(none)", want, "host %d has version %d", i + 1, v);
		free(c);
		free(want);
		char *tmps = fmt("%s%s", root, dep);
		cr_expect_eq(shf("test -z \"$(find %s %s%s -name '*.tmp-*' -o -name '*.push-*' 2>/dev/null)\"", tmps, root,
				 store),
			     0, "temporaries under %s", root);
		free(tmps);
		free(root);
	}
}

Test(fleet, a_fleet_apply_killed_mid_way_is_recovered_and_applied_again, .timeout = 120)
{
	struct fh hs[N20];
	simple_fleet(hs, N20, 1, NULL);
	struct proc_result r = fleet("apply", "--transport-root", tr, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	/* killed at 0.5 s: the builds (up to ~1 s each) are under way */
	killed_apply(hs, 2, false);
	apply_all_after_kill(hs, 2);
	/* killed as soon as one host flipped: the others are anywhere between their build and their flip */
	killed_apply(hs, 3, true);
	apply_all_after_kill(hs, 3);
}

/*
 * After a killed run, `fleet apply --resume` deploys only what that run did
 * not finish (its own journal record says which): every host ends at the
 * new version, and a second --resume deploys nothing.
 */
Test(fleet, resume_after_a_killed_run_deploys_only_what_it_did_not_finish, .timeout = 120)
{
	struct fh hs[N20];
	simple_fleet(hs, N20, 1, NULL);
	struct proc_result r = fleet("apply", "--transport-root", tr, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	killed_apply(hs, 2, true);
	char *jl = journal();
	cr_expect(strstr(jl, "\taborted\tfleet\t") != NULL, "the killed run is recorded, and recovered: %s", jl);
	free(jl);
	r = fleet("apply", "--transport-root", tr, "--parallel", "20", "--resume", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	int carried = count_of(r.out, " already deployed (recorded by run "), done = count_of(r.out, " deployed: gen-");
	cr_expect_eq(carried + done, N20, "%s", r.out);
	proc_result_free(&r);
	for (int i = 0; i < N20; i++) {
		char *root = host_root(tr, &hs[i]);
		char *c = live_conf_of(root, i), *want = fmt("h%02d v2\n", i + 1);
		cr_expect_str_eq(c ? c : "(none)", want, "host %d", i + 1);
		free(c);
		free(want);
		free(root);
	}
	r = fleet("apply", "--transport-root", tr, "--resume", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_eq(count_of(r.out, " already deployed (recorded by run "), N20, "nothing deployed again: %s", r.out);
	proc_result_free(&r);
}

/* --timeout: a host still building when its time is up is undone (its old generation stays); the others deploy. */
Test(fleet, a_host_past_its_timeout_is_undone_and_the_others_deploy)
{
	struct fh hs[2];
	simple_fleet(hs, 2, 1, NULL);
	struct proc_result r = fleet("apply", "--transport-root", tr, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	write_prog(hs[0].file, "h01", hs[0].stack, 2, "sleep 3", NULL);
	write_prog(hs[1].file, "h02", hs[1].stack, 2, NULL, NULL);
	r = fleet("apply", "--transport-root", tr, "--timeout", "1", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "host h01.example.com " ARROW " FAILED: timed out after 1 s (before its ") != NULL, "%s",
		  r.out);
	cr_expect(strstr(r.out, "host h02.example.com " ARROW " deployed: gen-002\n") != NULL, "%s", r.out);
	proc_result_free(&r);
	char *root = host_root(tr, &hs[0]);
	cr_expect_eq(current_at(root, dep, hs[0].stack), 1, "the timed-out host keeps gen-001");
	char *c = live_conf_of(root, 0);
	cr_expect_str_eq(c ? c : "(none)", "h01 v1\n");
	free(c);
	free(root);
}

/* ---- 6. three real sshd ----------------------------------------------------------------------- */

#define NSSH 3

struct sshd {
	int port;
	pid_t pid;
	char url[64];
	char *fakebin; /* first on its sessions' PATH: the punix wrapper */
	char *conf;    /* the host's config file (a path on this machine) */
	char stack[16];
};

static struct sshd sd[NSSH];
static char *kh, *key, *tdep, *units;

static void free_ports(int *ports, int n)
{
	int fds[NSSH];
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {0};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cr_assert_eq(bind(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
		socklen_t len = sizeof(a);
		cr_assert_eq(getsockname(fds[i], (struct sockaddr *)&a, &len), 0);
		ports[i] = ntohs(a.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static bool accepts(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool up = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return up;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

/* The target's punix: this run's sanitizer settings, a home of its own (its journal). */
static void write_wrapper(const char *path, const char *thome)
{
	char *text = fmt("#!/bin/sh\n"
			 "export ASAN_OPTIONS='%s'\n"
			 "export UBSAN_OPTIONS='%s'\n"
			 "export LSAN_OPTIONS='suppressions=%s/tests/lsan.supp:print_suppressions=0'\n"
			 "export PUNIX_HOME='%s'\n"
			 "exec %s \"$@\"\n",
			 env_or("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1"),
			 env_or("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"), PUNIX_SOURCE_DIR, thome, PUNIX_BIN);
	write_path(path, text, 0755);
	free(text);
}

static void start_sshd(int k, int port)
{
	struct sshd *g = &sd[k];
	char n = (char)('a' + k);
	g->port = port;
	g->fakebin = fmt("%s/fakebin-%c", t.path, n);
	g->conf = fmt("%s/target-%c/app.conf", t.path, n);
	snprintf(g->stack, sizeof(g->stack), "Web%c", 'A' + k);
	mkdir(g->fakebin, 0755);
	char *w = fmt("%s/punix", g->fakebin), *thome = fmt("%s/target-home-%c", t.path, n);
	write_wrapper(w, thome);
	free(w);
	free(thome);
	/* its own host key and authorized_keys file (the fleet has one --key: the deployer's key is in each) */
	cr_assert_eq(shf("set -e; cd %s; mkdir -p /run/sshd; "
			 "ssh-keygen -q -t ecdsa -N '' -f hostkey-%c; "
			 "cp id.pub authorized_keys-%c; chmod 600 authorized_keys-%c; "
			 "printf 'ListenAddress 127.0.0.1\\nPort %d\\nHostKey %s/hostkey-%c\\n"
			 "AuthorizedKeysFile %s/authorized_keys-%c\\n"
			 "PasswordAuthentication no\\nKbdInteractiveAuthentication no\\nUsePAM no\\nStrictModes no\\n"
			 "PermitRootLogin prohibit-password\\nSubsystem sftp internal-sftp\\nPidFile %s/sshd-%c.pid\\n"
			 "SetEnv PATH=%s:/usr/local/bin:/usr/bin:/bin\\n' > sshd_config-%c; "
			 "/usr/sbin/sshd -t -f sshd_config-%c; "
			 "echo \"[127.0.0.1]:%d $(cut -d' ' -f1,2 hostkey-%c.pub)\" >> known_hosts",
			 t.path, n, n, n, port, t.path, n, t.path, n, t.path, n, g->fakebin, n, n, port, n),
		     0, "preparing sshd %c", n);
	char *cfg = fmt("%s/sshd_config-%c", t.path, n), *log = fmt("%s/sshd-%c.log", t.path, n);
	g->pid = fork();
	if (g->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(fd, 2);
		execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", cfg, (char *)NULL);
		_exit(127);
	}
	snprintf(g->url, sizeof(g->url), "ssh://root@127.0.0.1:%d", port);
	free(cfg);
	free(log);
}

static void stop_sshd(int k)
{
	if (sd[k].pid > 0) {
		kill(sd[k].pid, SIGTERM);
		waitpid(sd[k].pid, NULL, 0);
		sd[k].pid = 0;
	}
}

/* Host k's program, version v: its own package, stack Web<K>, service app-<k> and config file. */
static void write_ssh_prog(int k, int v)
{
	char n = (char)('a' + k);
	char *text = fmt("module App { pname = \"app-%c\" version = \"%d\" recipe = \"std.shell\"\n"
			 "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && echo %c%d > $OUTPUT/bin/app && chmod +x "
			 "$OUTPUT/bin/app\" } }\n"
			 "module %s { backend = \"systemd\" storeModules = [\"App\"]\n"
			 "  services = [{ name = \"app-%c\" package = \"App\" binary = \"app\" }]\n"
			 "  configFiles = [{ path = \"%s\" content = \"%c v%d\\n\" }] }\n",
			 n, v, n, v, sd[k].stack, n, sd[k].conf, n, v);
	char *rel = fmt("fleet/hosts/%c.pcl", n);
	tdir_write(&t, rel, text);
	free(rel);
	free(text);
}

static void ssh_setup(void)
{
	setup();
	kh = tdir_at(&t, "known_hosts");
	key = tdir_at(&t, "id");
	tdep = tdir_at(&t, "tdep");
	units = tdir_at(&t, "units");
	cr_assert_eq(shf("cd %s && ssh-keygen -q -t ecdsa -N '' -f id", t.path), 0);
	int ports[NSSH];
	free_ports(ports, NSSH);
	for (int k = 0; k < NSSH; k++)
		start_sshd(k, ports[k]);
	for (int k = 0; k < NSSH; k++) {
		bool up = false;
		for (int i = 0; i < 200 && !up; i++) {
			up = accepts(sd[k].port);
			if (!up)
				usleep(25 * 1000);
		}
		cr_assert(up, "sshd %c did not start (see %s/sshd-%c.log)", 'a' + k, t.path, 'a' + k);
	}
	struct fh hs[NSSH];
	for (int k = 0; k < NSSH; k++) {
		memset(&hs[k], 0, sizeof(hs[k]));
		snprintf(hs[k].file, sizeof(hs[k].file), "hosts/%c.pcl", 'a' + k);
		snprintf(hs[k].stack, sizeof(hs[k].stack), "%s", sd[k].stack);
		snprintf(hs[k].target, sizeof(hs[k].target), "%s", sd[k].url);
		snprintf(hs[k].machine, sizeof(hs[k].machine), "box-%c", 'a' + k);
		write_ssh_prog(k, 1);
	}
	write_fleet(hs, NSSH);
}

static void ssh_teardown(void)
{
	for (int k = 0; k < NSSH; k++) {
		stop_sshd(k);
		free(sd[k].fakebin);
		free(sd[k].conf);
		memset(&sd[k], 0, sizeof(sd[k]));
	}
	free(kh);
	free(key);
	free(tdep);
	free(units);
	teardown();
}

TestSuite(fleet_ssh, .init = ssh_setup, .fini = ssh_teardown, .timeout = 120);

/* `punix fleet SUB` over SSH: known_hosts, key, deployments root and unit dir of the test, then ARGS. */
static struct proc_result fleet_ssh_run(const char *sub, ...)
{
	const char *a[64];
	int n = 0;
	a[n++] = "fleet";
	a[n++] = sub;
	a[n++] = fleet_file;
	a[n++] = "--known-hosts";
	a[n++] = kh;
	a[n++] = "--key";
	a[n++] = key;
	a[n++] = "--deployments-root";
	a[n++] = tdep;
	if (strcmp(sub, "status")) {
		a[n++] = "--unit-dir";
		a[n++] = units;
	}
	va_list ap;
	va_start(ap, sub);
	for (const char *x; (x = va_arg(ap, const char *)) && n < 63;)
		a[n++] = x;
	va_end(ap);
	a[n] = NULL;
	return punix_run(home, a);
}

/* Host k is wholly at gen, with version v of its program live and its unit in the unit directory. */
static void expect_ssh_host(int k, long gen, int v, const char *when)
{
	cr_expect_eq(wholly_current("", tdep, sd[k].stack, store, when), gen, "%s: host %c", when, 'a' + k);
	char *c = read_path(sd[k].conf), *want = fmt("%c v%d\n", 'a' + k, v);
	cr_expect_str_eq(c ? c : "(none)", want, "%s: host %c's file", when, 'a' + k);
	free(c);
	free(want);
	char *unit = fmt("%s/app-%c.service", units, 'a' + k);
	cr_expect(exists(unit), "%s: %s", when, unit);
	free(unit);
}

/* Every host's name is 127.0.0.1 (the port is not part of it): one width, no padding. */
#define SSH_HOST "host 127.0.0.1 " ARROW " "

Test(fleet_ssh, three_sshd_hosts_in_agentless_then_host_mode, .timeout = 120)
{
	struct proc_result r = fleet_ssh_run("apply", "--mode", "agentless", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_str_eq(r.out, SSH_HOST "deployed: gen-001\n" SSH_HOST "deployed: gen-001\n" SSH_HOST "deployed: gen-001\n",
			 "%s", r.err);
	proc_result_free(&r);
	for (int k = 0; k < NSSH; k++)
		expect_ssh_host(k, 1, 1, "agentless");
	/* agentless: no op ran under a target's punix, no journal there */
	char *th = fmt("%s/target-home-a/journal", t.path);
	cr_expect(!exists(th), "%s", th);
	free(th);

	r = fleet_ssh_run("status", "--mode", "agentless", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	for (int k = 0; k < NSSH; k++) {
		char *l = line_of(r.out, k), *w = fmt(SSH_HOST "%s: current gen-001 (agentless)", sd[k].stack);
		cr_expect_str_eq(l, w);
		free(l);
		free(w);
	}
	proc_result_free(&r);

	/* host mode: each sshd's sessions find the punix wrapper on their PATH */
	for (int k = 0; k < NSSH; k++)
		write_ssh_prog(k, 2);
	r = fleet_ssh_run("apply", "--mode", "host", "--json", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	json_t *j = json_of(r.out);
	json_t *a = json_object_get(j, "hosts");
	cr_assert_eq(json_array_size(a), NSSH, "%s", r.out);
	for (size_t k = 0; k < NSSH; k++) {
		json_t *h = json_array_get(a, k);
		cr_expect_str_eq(jstr(h, "status"), "ok", "%s", r.out);
		cr_expect_str_eq(jstr(h, "host"), "127.0.0.1");
		cr_expect_str_eq(jstr(h, "target"), sd[k].url);
		cr_expect_eq(jint(h, "generation"), 2, "%s", r.out);
		cr_expect_eq(jint(h, "previous"), 1, "%s", r.out);
	}
	json_decref(j);
	proc_result_free(&r);
	for (int k = 0; k < NSSH; k++) {
		expect_ssh_host(k, 2, 2, "host mode");
		/* the op ran under the target's punix: its own journal has it */
		char *sdir = fmt("%s/target-home-%c/journal", t.path, 'a' + k);
		const char *ja[] = {"journal", "show", "--state-dir", sdir, NULL};
		struct proc_result jr = punix_run(NULL, ja);
		cr_expect_eq(jr.status, 0, "%s", jr.err);
		char *want_line = fmt("\tdone\tdeploy\t%s\t", sd[k].stack);
		cr_expect_eq(count_of(jr.out, want_line), 1, "target %c's journal: %s", 'a' + k, jr.out);
		free(want_line);
		proc_result_free(&jr);
		free(sdir);
	}

	/* status: each host's generation and the mode that reaches it */
	r = fleet_ssh_run("status", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	for (int k = 0; k < NSSH; k++) {
		char *l = line_of(r.out, k), *w = fmt(SSH_HOST "%s: current gen-002 (host)", sd[k].stack);
		cr_expect_str_eq(l, w, "%s", r.out);
		free(l);
		free(w);
	}
	proc_result_free(&r);
	r = fleet_ssh_run("status", "--json", "--on", "box-b", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	j = json_of(r.out);
	a = json_object_get(j, "hosts");
	cr_assert_eq(json_array_size(a), 1, "%s", r.out);
	cr_expect_str_eq(jstr(json_array_get(a, 0), "machine"), "box-b");
	cr_expect_eq(jint(json_array_get(a, 0), "current"), 2);
	cr_expect_eq(jint(json_array_get(a, 0), "generations"), 2);
	cr_expect_str_eq(jstr(json_array_get(a, 0), "mode"), "host");
	cr_expect(json_is_false(json_object_get(json_array_get(a, 0), "op_running")), "%s", r.out);
	json_decref(j);
	proc_result_free(&r);

	/* and rollback over SSH, in host mode */
	r = fleet_ssh_run("rollback", "--mode", "host", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_eq(count_of(r.out, " rolled back: gen-001\n"), NSSH, "%s", r.out);
	proc_result_free(&r);
	for (int k = 0; k < NSSH; k++)
		expect_ssh_host(k, 1, 1, "rolled back over SSH");
}

Test(fleet_ssh, a_host_whose_sshd_is_down_fails_alone, .timeout = 120)
{
	struct proc_result r = fleet_ssh_run("apply", "--mode", "host", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	stop_sshd(1);
	for (int k = 0; k < NSSH; k++)
		write_ssh_prog(k, 2);
	r = fleet_ssh_run("apply", "--mode", "host", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect_eq(nlines(r.out), NSSH, "%s", r.out);
	char *l0 = line_of(r.out, 0), *l1 = line_of(r.out, 1), *l2 = line_of(r.out, 2);
	cr_expect_str_eq(l0, "host 127.0.0.1 " ARROW " deployed: gen-002");
	cr_expect(strstr(l1, "host 127.0.0.1 " ARROW " FAILED: ") == l1, "%s", l1);
	char *port = fmt("%d", sd[1].port);
	cr_expect(strstr(l1, "connect") && strstr(l1, port), "the failure says it could not connect to the port: %s", l1);
	cr_expect_str_eq(l2, "host 127.0.0.1 " ARROW " deployed: gen-002");
	free(l0);
	free(l1);
	free(l2);
	proc_result_free(&r);
	expect_ssh_host(0, 2, 2, "beside a host that is down");
	expect_ssh_host(1, 1, 1, "the host that is down");
	expect_ssh_host(2, 2, 2, "beside a host that is down");

	/* agentless and auto, the same */
	r = fleet_ssh_run("apply", "--json", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	json_t *j = json_of(r.out);
	json_t *a = json_object_get(j, "hosts");
	cr_expect_str_eq(jstr(json_array_get(a, 0), "status"), "ok", "%s", r.out);
	cr_expect_str_eq(jstr(json_array_get(a, 1), "status"), "failed", "%s", r.out);
	cr_expect_str_eq(jstr(json_array_get(a, 2), "status"), "ok", "%s", r.out);
	json_decref(j);
	proc_result_free(&r);

	r = fleet_ssh_run("status", NULL);
	cr_expect_eq(r.status, 1, "a host cannot be read: %s%s", r.out, r.err);
	l0 = line_of(r.out, 0);
	l1 = line_of(r.out, 1);
	l2 = line_of(r.out, 2);
	char *w0 = fmt("host 127.0.0.1 " ARROW " %s: current gen-003 (host)", sd[0].stack),
	     *w2 = fmt("host 127.0.0.1 " ARROW " %s: current gen-003 (host)", sd[2].stack);
	cr_expect_str_eq(l0, w0);
	cr_expect(strstr(l1, "host 127.0.0.1 " ARROW " FAILED: ") == l1 && strstr(l1, port), "%s", l1);
	cr_expect_str_eq(l2, w2);
	free(w0);
	free(w2);
	free(l0);
	free(l1);
	free(l2);
	free(port);
	proc_result_free(&r);
}


/*
 * --confirm-timeout with --health on rebased hosts (this machine stands in
 * for each, so only the health check is waited for): a check that passes
 * keeps every host's new generation; one that never passes flips every
 * host back by itself, and each is 'failed' saying so.
 */
Test(fleet, confirm_timeout_keeps_healthy_hosts_and_flips_back_the_others, .timeout = 120)
{
	struct fh hs[3];
	simple_fleet(hs, 3, 1, NULL);
	struct proc_result r = fleet("apply", "--transport-root", tr, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	simple_fleet(hs, 3, 2, NULL);
	r = fleet("apply", "--transport-root", tr, "--confirm-timeout", "5", "--health", "true", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect_eq(count_of(r.out, " deployed: gen-002"), 3, "%s", r.out);
	proc_result_free(&r);
	simple_fleet(hs, 3, 3, NULL);
	r = fleet("apply", "--transport-root", tr, "--confirm-timeout", "1", "--health", "exit 9", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect_eq(count_of(r.out, "reverted to gen-002: the health check `exit 9` failed (exit 9"), 3, "%s", r.out);
	proc_result_free(&r);
	for (int i = 0; i < 3; i++) {
		char *root = host_root(tr, &hs[i]);
		cr_expect_eq(wholly_current(root, dep, hs[i].stack, store, "after the revert"), 2);
		char *c = live_conf_of(root, i), *want = fmt("h%02d v2\n", i + 1);
		cr_expect_str_eq(c ? c : "(none)", want, "host %d is back at v2", i + 1);
		free(c);
		free(want);
		free(root);
	}
	r = fleet("apply", "--transport-root", tr, "--health", "true", NULL);
	cr_expect_eq(r.status, 2, "%s%s", r.out, r.err);
	proc_result_free(&r);
}
