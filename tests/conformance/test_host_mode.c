/*
 * test_host_mode.c - host mode (the target's punix runs the op under its
 * own journal and lock) against two real sshd instances on 127.0.0.1,
 * each with its own host key, port, authorized key and known_hosts line.
 *
 * The "targets" are this machine: every op is rebased under a directory
 * per target (--transport-root R), so the target's journal is
 * R/var/lib/punix/journal, its store R/<the deployer's store root> and its
 * generations R/<the deployer's deployments root>/Web.
 *
 * The target's punix is a wrapper script (on the sshd's PATH, and named
 * with --remote-punix where a test wants it named): it reads the test's
 * target.env (crash points, fault injection) and runs the punix under
 * test with the sanitizer settings of this run.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "store/store.h"
#include "tests/support/proc.h"

#define NTARGETS 2

struct target {
	int port;
	pid_t sshd;
	char url[64];
	char *root;    /* its transport root R */
	char *key;     /* the deployer's key for it */
	char *fakebin; /* first on its sessions' PATH: holds the punix wrapper */
};

static struct tdir t;
static struct target tg[NTARGETS];
static char *home, *kh, *wrapper, *env_file, *store, *dep;

/* ---- helpers ------------------------------------------------------------------------------ */

static int sh(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int shf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shf(const char *fmt, ...)
{
	struct sbuf c = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sbuf_vprintf(&c, fmt, ap);
	va_end(ap);
	int r = sh(c.sb_buf);
	sbuf_free(&c);
	return r;
}

/* What a shell command printed (malloc'd). */
static char *sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sh_out(const char *fmt, ...)
{
	struct sbuf c = SBUF_INIT, out = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sbuf_vprintf(&c, fmt, ap);
	va_end(ap);
	FILE *p = popen(c.sb_buf, "r");
	cr_assert_not_null(p);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		sbuf_append(&out, buf, n);
	pclose(p);
	sbuf_append(&out, "", 0);
	sbuf_free(&c);
	return sbuf_detach(&out, NULL);
}

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

static int count_lines_with(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* A port nobody listens on now (the kernel's choice). */
static void free_ports(int *ports, int n)
{
	int fds[NTARGETS];
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
	int sfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool up = connect(sfd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(sfd);
	return up;
}

/* The sanitizer settings of this run, for the target's punix (which sshd starts with none). */
static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

static void write_wrapper(const char *path)
{
	char *text = fmt("#!/bin/sh\n"
			 "export ASAN_OPTIONS='%s'\n"
			 "export UBSAN_OPTIONS='%s'\n"
			 "export LSAN_OPTIONS='suppressions=%s/tests/lsan.supp:print_suppressions=0'\n"
			 "[ -f %s ] && . %s\n"
			 "exec %s \"$@\"\n",
			 env_or("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1"),
			 env_or("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"), PUNIX_SOURCE_DIR, env_file,
			 env_file, PUNIX_BIN);
	write_path(path, text, 0755);
	free(text);
}

/* What the target's punix finds in its environment from now on ("" for nothing). */
static void target_env(const char *lines)
{
	write_path(env_file, lines, 0644);
}

/* Starts target k's sshd: its own host key, port, authorized key, known_hosts line. */
static void start_sshd(int k, int port)
{
	struct target *g = &tg[k];
	char n = (char)('a' + k);
	g->port = port;
	g->root = fmt("%s/remote-%c", t.path, n);
	g->key = fmt("%s/id-%c", t.path, n);
	g->fakebin = fmt("%s/fakebin-%c", t.path, n);
	mkdir(g->root, 0755);
	mkdir(g->fakebin, 0755);
	char *w = fmt("%s/punix", g->fakebin);
	write_wrapper(w);
	free(w);
	cr_assert_eq(shf("set -e; cd %s; mkdir -p /run/sshd; "
			 "ssh-keygen -q -t ecdsa -N '' -f hostkey-%c; ssh-keygen -q -t ecdsa -N '' -f id-%c; "
			 "cp id-%c.pub authorized_keys-%c; chmod 600 authorized_keys-%c; "
			 "printf 'ListenAddress 127.0.0.1\\nPort %d\\nHostKey %s/hostkey-%c\\n"
			 "AuthorizedKeysFile %s/authorized_keys-%c\\n%s"
			 "PasswordAuthentication no\\nKbdInteractiveAuthentication no\\nUsePAM no\\nStrictModes no\\n"
			 "PermitRootLogin prohibit-password\\nSubsystem sftp internal-sftp\\nPidFile %s/sshd-%c.pid\\n"
			 "SetEnv PATH=%s:/usr/local/bin:/usr/bin:/bin\\n' > sshd_config-%c; "
			 "/usr/sbin/sshd -t -f sshd_config-%c; "
			 "echo \"[127.0.0.1]:%d $(cut -d' ' -f1,2 hostkey-%c.pub)\" >> known_hosts",
			 t.path, n, n, n, n, n, port, t.path, n, t.path, n, k == 1 ? "AllowUsers root\\n" : "", t.path,
			 n, g->fakebin, n, n, port, n),
		     0, "preparing sshd %c", n);
	char *cfg = fmt("%s/sshd_config-%c", t.path, n), *log = fmt("%s/sshd-%c.log", t.path, n);
	g->sshd = fork();
	if (g->sshd == 0) {
		/* keep no descriptor of the test runner's open */
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

static void setup(void)
{
	tdir_make(&t);
	unsetenv("PUNIX_HOME");
	unsetenv("PUNIX_STATE_DIR");
	unsetenv("PUNIX_STORE_DIR");
	unsetenv("PUNIX_HOST_ROOT");
	unsetenv("PUNIX_CRASH_AT");
	unsetenv("PUNIX_FAULT_KILL_AT");
	/* no static punix to bootstrap with, whatever the build: where no punix runs, auto is agentless */
	setenv("PUNIX_STATIC", "/nonexistent/punix-static", 1);
	home = tdir_at(&t, "home");
	store = tdir_at(&t, "home/store");
	dep = tdir_at(&t, "home/deployments");
	kh = tdir_at(&t, "known_hosts");
	env_file = tdir_at(&t, "target.env");
	wrapper = tdir_at(&t, "wrap/punix");
	mkdir(home, 0755);
	char *wd = tdir_at(&t, "wrap");
	mkdir(wd, 0755);
	free(wd);
	write_wrapper(wrapper);
	target_env("");
	int ports[NTARGETS];
	free_ports(ports, NTARGETS);
	for (int k = 0; k < NTARGETS; k++)
		start_sshd(k, ports[k]);
	/* ready when each accepts a connection */
	for (int k = 0; k < NTARGETS; k++) {
		bool up = false;
		for (int i = 0; i < 200 && !up; i++) {
			up = accepts(tg[k].port);
			if (!up)
				usleep(25 * 1000);
		}
		cr_assert(up, "sshd %c did not start (see %s/sshd-%c.log)", 'a' + k, t.path, 'a' + k);
	}
}

static void teardown(void)
{
	for (int k = 0; k < NTARGETS; k++) {
		if (tg[k].sshd > 0) {
			kill(tg[k].sshd, SIGTERM);
			waitpid(tg[k].sshd, NULL, 0);
		}
		free(tg[k].root);
		free(tg[k].key);
		free(tg[k].fakebin);
		memset(&tg[k], 0, sizeof(tg[k]));
	}
	free(home);
	free(store);
	free(dep);
	free(kh);
	free(env_file);
	free(wrapper);
	tdir_free(&t);
}

TestSuite(host, .init = setup, .fini = teardown, .timeout = 120);

/*
 * `punix service SUB Web EXTRA... --target <k's> --known-hosts --key --transport-root`
 * as the deployer whose home is h.
 */
static struct proc_result svc_as(const char *h, int k, const char *sub, ...)
{
	const char *a[64];
	int n = 0;
	a[n++] = "service";
	a[n++] = sub;
	a[n++] = "Web";
	va_list ap;
	va_start(ap, sub);
	for (const char *x; (x = va_arg(ap, const char *));)
		a[n++] = x;
	va_end(ap);
	a[n++] = "--target";
	a[n++] = tg[k].url;
	a[n++] = "--known-hosts";
	a[n++] = kh;
	a[n++] = "--key";
	a[n++] = tg[k].key;
	a[n++] = "--transport-root";
	a[n++] = tg[k].root;
	a[n] = NULL;
	return punix_run(h, a);
}

#define svc(k, sub, ...) svc_as(home, k, sub, __VA_ARGS__)

/* Version v of the program: package App (version pkg) and stack Web, whose /etc/app.conf says "v = v". */
static char *prog(int v, int pkg)
{
	char *text = fmt("module App { pname = \"app\" version = \"%d\" recipe = \"std.shell\"\n"
			 "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && echo v%d > $OUTPUT/bin/app && chmod +x "
			 "$OUTPUT/bin/app\" } }\n"
			 "module Web { backend = \"systemd\" storeModules = [\"App\"]\n"
			 "  services = [{ name = \"app\" package = \"App\" binary = \"app\" }]\n"
			 "  configFiles = [{ path = \"/etc/app.conf\" content = \"v = %d\\n\" }] }\n",
			 pkg, pkg, v);
	char rel[48];
	snprintf(rel, sizeof(rel), "prog/v%d-%d.pcl", v, pkg);
	tdir_write(&t, rel, text);
	free(text);
	return tdir_at(&t, rel);
}

static char *conf_text(int v)
{
	return fmt("v = %d\n", v);
}

static char *journal_of_target(int k)
{
	char *sd = fmt("%s/var/lib/punix/journal", tg[k].root);
	const char *a[] = {"journal", "show", "--state-dir", sd, NULL};
	struct proc_result r = punix_run(NULL, a);
	cr_expect_eq(r.status, 0, "the target's journal: %s", r.err);
	free(sd);
	free(r.err);
	return r.out;
}

static char *journal_of_deployer(const char *h)
{
	const char *a[] = {"journal", "show", NULL};
	struct proc_result r = punix_run(h, a);
	cr_expect_eq(r.status, 0, "the deployer's journal: %s", r.err);
	free(r.err);
	return r.out;
}

/* The target-side recovery, run on the target (this machine) without the deployer. */
static struct proc_result recover_on_target(int k, const char *store_root)
{
	char *sd = fmt("%s/var/lib/punix/journal", tg[k].root);
	setenv("PUNIX_HOST_ROOT", tg[k].root, 1);
	const char *a[] = {"recover", "--state-dir", sd, "--store-root", store_root, NULL};
	struct proc_result r = punix_run(NULL, a);
	unsetenv("PUNIX_HOST_ROOT");
	free(sd);
	return r;
}

/* The current generation on target k, for deployments root d (0: none). */
static long current_gen(int k, const char *d)
{
	char *cur = fmt("%s%s/Web/current", tg[k].root, d);
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

/* The generations on target k (numbers, ascending, from their manifests' names). */
static int generations(int k, const char *d, long *out, int max)
{
	char *dir = fmt("%s%s/Web", tg[k].root, d);
	DIR *dd = opendir(dir);
	free(dir);
	int n = 0;
	if (!dd)
		return 0;
	struct dirent *e;
	while ((e = readdir(dd))) {
		long g;
		char tail[16];
		if (sscanf(e->d_name, "gen-%ld.%15s", &g, tail) == 2 && !strcmp(tail, "json") && n < max)
			out[n++] = g;
	}
	closedir(dd);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
			long x = out[j];
			out[j] = out[j - 1];
			out[j - 1] = x;
		}
	return n;
}

static char *live_conf(int k)
{
	char *p = fmt("%s/etc/app.conf", tg[k].root);
	char *c = read_path(p);
	free(p);
	return c;
}

static void sha_hex(const char *buf, size_t len, char out[65])
{
	unsigned char h[32];
	store_sha256(buf, len, h);
	store_hex(h, 32, out);
}

/*
 * Target k is wholly at its current generation: every config file of its
 * manifest is live with the manifest's hash, every pinned store path is in
 * the target's store and registered there; and no temporaries are left
 * under its deployments root or store.
 */
static void check_wholly_current(int k, const char *d, const char *store_root, const char *when)
{
	long gen = current_gen(k, d);
	cr_assert_gt(gen, 0, "%s: current names a generation", when);
	char *mp = fmt("%s%s/Web/gen-%03ld.json", tg[k].root, d, gen);
	json_error_t je;
	json_t *m = json_load_file(mp, 0, &je);
	cr_assert_not_null(m, "%s: %s: %s", when, mp, je.text);
	json_t *files = json_object_get(m, "config_files"), *pins = json_object_get(m, "store_paths");
	cr_assert_gt(json_array_size(files), 0, "%s: the manifest lists its files", when);
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		char *live = fmt("%s%s", tg[k].root, path);
		char *buf = NULL;
		size_t len = 0;
		cr_assert_eq(ops_local()->read_file(ops_local(), live, 1 << 24, &buf, &len), 0, "%s: live %s exists",
			     when, path);
		char hex[65];
		sha_hex(buf, len, hex);
		cr_expect_str_eq(hex, sha, "%s: live %s equals gen-%03ld's", when, path, gen);
		free(buf);
		free(live);
	}
	for (size_t i = 0; i < json_array_size(pins); i++) {
		const char *p = json_string_value(json_array_get(pins, i));
		const char *name = strrchr(p, '/') + 1;
		char *tp = fmt("%s%s", tg[k].root, p), *meta = fmt("%s%s/.meta/%s.json", tg[k].root, store_root, name);
		struct stat st;
		cr_expect_eq(stat(tp, &st), 0, "%s: pinned %s is in the target's store", when, p);
		cr_expect_eq(stat(meta, &st), 0, "%s: pinned %s is registered there", when, p);
		free(tp);
		free(meta);
	}
	json_decref(m);
	free(mp);
	char *tmps = sh_out("find %s%s %s%s -name '*.tmp-*' 2>/dev/null", tg[k].root, d, tg[k].root, store_root);
	cr_expect_str_eq(tmps, "", "%s: temporaries left on the target: %s", when, tmps);
	free(tmps);
}

static json_t *json_of(const char *out)
{
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	cr_assert_not_null(j, "not JSON (%s): %s", je.text, out);
	return j;
}

static long json_int_of(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);
	cr_assert(json_is_integer(v), "no integer \"%s\"", key);
	return (long)json_integer_value(v);
}

static const char *json_str_of(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));
	return s ? s : "(none)";
}

/* ---- 1. two targets ------------------------------------------------------------------------ */

Test(host, one_stack_to_two_targets_in_host_mode)
{
	char *p = prog(1, 1);
	for (int k = 0; k < NTARGETS; k++) {
		struct proc_result r = svc(k, "deploy", "--file", p, "--mode", "host", NULL);
		cr_assert_eq(r.status, 0, "target %c: %s%s", 'a' + k, r.out, r.err);
		cr_expect(strstr(r.out, "deployed: stack Web \u2192 gen-001 (") != NULL, "%s", r.out);
		cr_expect(strstr(r.out, "mode: host (the target's punix ") != NULL, "%s", r.out);
		proc_result_free(&r);
		char *j = journal_of_target(k);
		cr_expect_eq(count_lines_with(j, "\tdone\tdeploy\tWeb\t"), 1, "target %c's own journal: %s", 'a' + k, j);
		free(j);
		char *c = live_conf(k);
		cr_expect_str_eq(c ? c : "(none)", "v = 1\n", "target %c's live file", 'a' + k);
		free(c);
		check_wholly_current(k, dep, store, "after the deploy");
	}
	char *j = journal_of_deployer(home);
	cr_expect_eq(count_lines_with(j, "\tdone\tdeploy@host\tWeb\t"), 2, "the deployer's journal: %s", j);
	cr_expect_eq(count_lines_with(j, "\tdeploy\t"), 0, "no local deploy: %s", j);
	free(j);

	/* the two sshd are two hosts: target a's key does not log in to target b */
	const char *a[] = {"service", "status", "Web", "--target", tg[1].url, "--known-hosts", kh, "--key", tg[0].key,
			   "--transport-root", tg[1].root, NULL};
	struct proc_result r = punix_run(home, a);
	cr_expect_eq(r.status, 3, "another host's key: %s%s", r.out, r.err);
	proc_result_free(&r);
	free(p);
}

/* ---- 2 and 3. the op sequence in host and in agentless mode -------------------------------- */

static void expect_live(int k, int v, const char *when)
{
	char *want = conf_text(v), *c = live_conf(k);
	cr_expect_str_eq(c ? c : "(none)", want, "%s: the live file", when);
	/* and it is what the current generation says */
	char *kept = fmt("%s%s/Web/gen-%03ld.files/etc/app.conf", tg[k].root, dep, current_gen(k, dep));
	char *kc = read_path(kept);
	cr_expect_str_eq(kc ? kc : "(none)", c ? c : "(none)", "%s: live equals the current generation's", when);
	free(kc);
	free(kept);
	free(c);
	free(want);
}

/* status in its text form, verify --json, and verify seeing drift, answered by the target's punix */
static void status_verify_drift_in_host_mode(void)
{
	struct proc_result r = svc(0, "status", "--mode", "host", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "stack Web: current gen-002\n"), "%s", r.out);
	cr_expect(strstr(r.out, "mode: host (the target's punix 0.1.0)\n"), "%s", r.out);
	proc_result_free(&r);

	r = svc(0, "verify", "--mode", "host", "--json", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	json_t *j = json_of(r.out);
	cr_expect_str_eq(json_str_of(j, "mode"), "host", "%s", r.out);
	cr_expect_eq(json_array_size(json_object_get(j, "drift")), 0, "%s", r.out);
	json_decref(j);
	proc_result_free(&r);

	/* drift on the target is seen by the target's punix: exit 1, and the mode is still said */
	char *live = fmt("%s/etc/app.conf", tg[0].root);
	char *was = read_path(live);
	write_path(live, "tampered\n", 0644);
	r = svc(0, "verify", "--mode", "host", NULL);
	cr_expect_eq(r.status, 1, "drift: %s%s", r.out, r.err);
	cr_expect(strstr(r.out, "drift: /etc/app.conf: "), "%s", r.out);
	cr_expect(strstr(r.out, "mode: host (the target's punix 0.1.0)\n"), "%s", r.out);
	proc_result_free(&r);
	write_path(live, was, 0644);
	free(was);
	free(live);
}

static void op_sequence(const char *mode)
{
	bool host = !strcmp(mode, "host");
	char *mode_line = fmt("mode: %s", mode);
	char *p1 = prog(1, 1), *p2 = prog(2, 2);
	struct proc_result r = svc(0, "deploy", "--file", p1, "--mode", mode, "--json", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	json_t *j = json_of(r.out);
	cr_expect_str_eq(json_str_of(j, "mode"), mode);
	cr_expect_eq(json_int_of(j, "generation"), 1);
	long first_trips = host ? json_int_of(j, "round_trips") : 0;
	if (host) {
		cr_expect_str_eq(json_str_of(j, "target_punix"), "0.1.0");
		cr_expect(json_is_false(json_object_get(j, "bootstrapped")), "%s", r.out);
	} else {
		cr_expect_null(json_object_get(j, "round_trips"), "agentless says no round trips: %s", r.out);
	}
	json_decref(j);
	proc_result_free(&r);
	expect_live(0, 1, "gen-1");

	r = svc(0, "deploy", "--file", p2, "--mode", mode, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "deployed: stack Web \u2192 gen-002 (2 config file(s), 1 store path(s) pinned)\n"),
		  "%s", r.out);
	cr_expect(strstr(r.out, mode_line), "%s", r.out);
	proc_result_free(&r);
	expect_live(0, 2, "gen-2");

	r = svc(0, "rollback", "--mode", mode, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "rolled back: stack Web \u2192 gen-001 (was gen-002)\n"), "%s", r.out);
	cr_expect(strstr(r.out, mode_line), "%s", r.out);
	proc_result_free(&r);
	expect_live(0, 1, "rolled back");

	r = svc(0, "set-current", "2", "--mode", mode, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "current: stack Web \u2192 gen-002 (was gen-001)\n"), "%s", r.out);
	cr_expect(strstr(r.out, mode_line), "%s", r.out);
	proc_result_free(&r);
	expect_live(0, 2, "set-current 2");

	r = svc(0, "status", "--mode", mode, "--json", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	j = json_of(r.out);
	cr_expect_str_eq(json_str_of(j, "mode"), mode, "%s", r.out);
	cr_expect_eq(json_int_of(j, "current"), 2, "%s", r.out);
	cr_expect_eq(json_array_size(json_object_get(j, "generations")), 2, "%s", r.out);
	json_decref(j);
	proc_result_free(&r);
	r = svc(0, "verify", "--mode", mode, NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "stack Web gen-002: 0 file(s) drifted\n"), "%s", r.out);
	cr_expect(strstr(r.out, host ? "mode: host (the target's punix 0.1.0)\n" : "mode: agentless\n"), "%s", r.out);
	proc_result_free(&r);
	/* the other forms, and drift, answered by the target's punix (agentless' are test_ssh.c's; its ops are slow) */
	if (host) {
		status_verify_drift_in_host_mode();
		expect_live(0, 2, "before prune");
	}

	r = svc(0, "prune", "--keep", "0", "--mode", mode, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "pruned: stack Web: 1 generation(s) deleted; current is gen-002\n"), "%s", r.out);
	cr_expect(strstr(r.out, mode_line), "%s", r.out);
	proc_result_free(&r);
	long gens[16];
	cr_expect_eq(generations(0, dep, gens, 16), 1, "prune --keep 0 leaves the current one");
	cr_expect_eq(gens[0], 2);
	expect_live(0, 2, "pruned");
	check_wholly_current(0, dep, store, "after prune");

	/* the same program again: the target has every path, so nothing is pushed */
	r = svc(0, "deploy", "--file", p2, "--mode", mode, "--json", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	j = json_of(r.out);
	cr_expect_eq(json_int_of(j, "generation"), 3, "%s", r.out);
	if (host) {
		long trips = json_int_of(j, "round_trips");
		cr_expect_leq(trips, 4, "a no-op redeploy: %ld round trips", trips);
		cr_expect_lt(trips, first_trips, "a no-op redeploy pushes nothing: %ld round trips, the first deploy %ld",
			     trips, first_trips);
	}
	json_decref(j);
	proc_result_free(&r);
	expect_live(0, 2, "redeployed");
	free(p1);
	free(p2);
	free(mode_line);
}

Test(host, deploy_rollback_set_current_status_verify_prune_in_host_mode)
{
	op_sequence("host");
	char *j = journal_of_deployer(home);
	cr_expect_eq(count_lines_with(j, "\tdeploy@host\tWeb\t"), 3, "the deployer's journal: %s", j);
	cr_expect_eq(count_lines_with(j, "\tremote\tWeb\t"), 3, "rollback, set-current, prune: %s", j);
	cr_expect_eq(count_lines_with(j, "\tdone\t"), 6, "%s", j);
	free(j);
	j = journal_of_target(0);
	cr_expect_eq(count_lines_with(j, "\tdone\tdeploy\tWeb\t"), 3, "the target's journal: %s", j);
	cr_expect_eq(count_lines_with(j, "\tdone\trollback\tWeb\t"), 1, "%s", j);
	cr_expect_eq(count_lines_with(j, "\tdone\tset-current\tWeb\t"), 1, "%s", j);
	cr_expect_eq(count_lines_with(j, "\tdone\tprune\tWeb\t"), 1, "%s", j);
	free(j);
}

Test(host, the_same_sequence_in_agentless_mode)
{
	op_sequence("agentless");
	char *jd = fmt("%s/var/lib/punix", tg[0].root);
	struct stat st;
	cr_expect_neq(stat(jd, &st), 0, "agentless: no journal on the target (%s)", jd);
	free(jd);
	char *j = journal_of_deployer(home);
	cr_expect_eq(count_lines_with(j, "\tdone\tdeploy\tWeb\t"), 3, "the deployer's journal: %s", j);
	cr_expect_eq(count_lines_with(j, "@host"), 0, "%s", j);
	cr_expect_eq(count_lines_with(j, "\tremote\t"), 0, "%s", j);
	free(j);
}

/* ---- 4 and 5. the target's punix killed mid-op ----------------------------------------------- */

/*
 * Deploys version v (a new package too) with the target's punix given
 * env_lines; it must fail. Returns the generation current before.
 */
static long crashed_deploy(int v, const char *env_lines, const char *what, bool may_succeed)
{
	long old = current_gen(0, dep);
	char *p = prog(v, v);
	target_env(env_lines);
	/* the target's punix named with --remote-punix: the wrapper that reads target.env */
	struct proc_result r = svc(0, "deploy", "--file", p, "--mode", "host", "--remote-punix", wrapper, NULL);
	target_env("");
	if (!may_succeed)
		cr_expect_neq(r.status, 0, "%s: the deploy cannot succeed: %s%s", what, r.out, r.err);
	proc_result_free(&r);
	free(p);
	return old;
}

/* After a crash and a recovery: the stack is wholly at old (before the flip) or at the new generation v. */
static void check_old_or_new(long old, int v, int want /* -1 old, 1 new, 0 either */, const char *what)
{
	long cur = current_gen(0, dep);
	char *c = live_conf(0), *newc = conf_text(v);
	bool is_new = cur > old;
	if (want < 0)
		cr_expect_eq(cur, old, "%s: the old generation stays current", what);
	if (want > 0)
		cr_expect_gt(cur, old, "%s: the new generation is current", what);
	if (is_new)
		cr_expect_str_eq(c ? c : "(none)", newc, "%s: the new generation's file is live", what);
	else
		cr_expect_str_neq(c ? c : "(none)", newc, "%s: the old generation's file is live", what);
	/* nothing staged and left beside it: the newest generation is the current one */
	long gens[64];
	int n = generations(0, dep, gens, 64);
	cr_expect(n > 0 && gens[n - 1] == cur, "%s: gen-%03ld is current but gen-%03ld exists", what, cur,
		  n ? gens[n - 1] : 0);
	check_wholly_current(0, dep, store, what);
	free(c);
	free(newc);
}

Test(host, the_targets_punix_killed_at_each_step_recovers_on_the_target, .timeout = 180)
{
	char *p1 = prog(1, 1);
	struct proc_result r = svc(0, "deploy", "--file", p1, "--mode", "host", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	static const struct {
		const char *at;
		int want;
	} points[] = {
		{"deploy:stage:before", -1}, {"deploy:stage:after", -1},      {"deploy:flip:before", -1},
		{"deploy:flip:after", 1},    {"deploy:materialise:after", 1},
	};
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		int v = 10 + (int)i;
		char *env = fmt("export PUNIX_CRASH_AT=%s\n", points[i].at);
		long old = crashed_deploy(v, env, points[i].at, false);
		free(env);
		/*
		 * The target's journal holds the op; the deployer, told the target's
		 * punix died, has already had the target recover it (by the target's
		 * own journal) unless it could not: either way the target alone decides.
		 */
		char *tj = journal_of_target(0);
		cr_expect_leq(count_lines_with(tj, "\trunning\tdeploy\tWeb\t"), 1, "%s: %s", points[i].at, tj);
		/*
		 * Every op here but the one killed at stage:before (before its first
		 * effect, so before its first durable commit: it left nothing to recover).
		 */
		cr_expect_eq(count_lines_with(tj, "\tdeploy\tWeb\t"), (int)i + 1, "%s: the target's journal has the op: %s",
			     points[i].at, tj);
		free(tj);
		/* no deployer: the target recovers itself (nothing left to do if it was asked already) */
		r = recover_on_target(0, store);
		cr_expect_eq(r.status, 0, "%s: recover on the target: %s%s", points[i].at, r.out, r.err);
		cr_log_info("%s: %s", points[i].at, r.out);
		proc_result_free(&r);
		tj = journal_of_target(0);
		cr_expect_eq(count_lines_with(tj, "\trunning\t"), 0, "%s: nothing left running: %s", points[i].at, tj);
		free(tj);
		check_old_or_new(old, v, points[i].want, points[i].at);
	}

	/* no recovery on the target this time: the deployer's next deploy has it recover first */
	long old = crashed_deploy(20, "export PUNIX_CRASH_AT=deploy:stage:after\n", "stage:after, then deploy", false);
	cr_expect_eq(current_gen(0, dep), old, "crashed before the flip: the old generation is current");
	char *p21 = prog(21, 21);
	r = svc(0, "deploy", "--file", p21, "--mode", "host", NULL);
	cr_expect_eq(r.status, 0, "the next deploy recovers first: %s%s", r.out, r.err);
	cr_expect(strstr(r.out, "mode: host"), "%s", r.out);
	proc_result_free(&r);
	char *tj = journal_of_target(0);
	cr_expect_eq(count_lines_with(tj, "\trunning\t"), 0, "nothing left running: %s", tj);
	free(tj);
	check_old_or_new(old, 21, 1, "the deploy after the crash");
	free(p21);
	free(p1);
}

Test(host, the_targets_punix_killed_at_its_nth_effect_recovers_on_the_target, .timeout = 180)
{
	char *p1 = prog(1, 1);
	struct proc_result r = svc(0, "deploy", "--file", p1, "--mode", "host", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	/* a deploy on the target makes about 90 effects */
	static const int kill_at[] = {5, 20, 35, 50, 65, 80};
	int killed = 0;
	for (size_t i = 0; i < sizeof(kill_at) / sizeof(kill_at[0]); i++) {
		int v = 30 + (int)i;
		char *env = fmt("export PUNIX_FAULT_KILL_AT=%d\n", kill_at[i]), what[64];
		snprintf(what, sizeof(what), "killed at effect %d", kill_at[i]);
		long old = current_gen(0, dep);
		char *p = prog(v, v);
		target_env(env);
		r = svc(0, "deploy", "--file", p, "--mode", "host", NULL);
		target_env("");
		killed += r.status != 0;
		cr_log_info("%s: deploy exit %d", what, r.status);
		proc_result_free(&r);
		free(p);
		free(env);
		r = recover_on_target(0, store);
		cr_expect_eq(r.status, 0, "%s: recover on the target: %s%s", what, r.out, r.err);
		cr_log_info("%s: %s", what, r.out);
		proc_result_free(&r);
		check_old_or_new(old, v, 0, what);
	}
	cr_expect_geq(killed, 4, "most of the kill points fall inside the deploy (%d did)", killed);
	free(p1);
}

/* ---- 6. the connection cut mid-push ---------------------------------------------------------- */

static bool has_entry_with(const char *dir, const char *part)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d)))
		found = strstr(e->d_name, part) != NULL;
	closedir(d);
	return found;
}

Test(host, the_deployer_killed_mid_push_leaves_nothing_valid_on_the_target, .timeout = 120)
{
	tdir_write(&t, "big/prog.pcl",
		   "module Big { pname = \"big\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin $OUTPUT/share && head -c 20971520 /dev/urandom > "
		   "$OUTPUT/share/blob && echo x > $OUTPUT/bin/app && chmod +x $OUTPUT/bin/app\" } }\n"
		   "module Web { backend = \"systemd\" storeModules = [\"Big\"]\n"
		   "  services = [{ name = \"app\" package = \"Big\" binary = \"app\" }]\n"
		   "  configFiles = [{ path = \"/etc/app.conf\" content = \"big\\n\" }] }\n");
	char *p = tdir_at(&t, "big/prog.pcl");
	/* built first, so the deploy's first long step is the push */
	const char *b[] = {"build", p, NULL};
	struct proc_result r = punix_run(home, b);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *path = strstr(r.out, "\tBig\t");
	cr_assert_not_null(path, "%s", r.out);
	path += 5;
	path[strcspn(path, "\n")] = '\0';
	path = strdup(path);
	proc_result_free(&r);
	const char *name = strrchr(path, '/') + 1;
	char *tstore = fmt("%s%s", tg[0].root, store), *tpath = fmt("%s%s", tg[0].root, path);
	char *meta = fmt("%s/.meta/%s.json", tstore, name), *tmp_part = fmt(".%s.tmp-", name);

	char *log = tdir_at(&t, "cut.log");
	const char *a[] = {"service", "deploy", "Web", "--file", p, "--mode", "host", "--target", tg[0].url,
			   "--known-hosts", kh, "--key", tg[0].key, "--transport-root", tg[0].root, NULL};
	pid_t pid = punix_start(home, a, log);
	/* the path's temporary appears on the target when its first bytes arrive: cut there */
	bool seen = false, exited = false;
	int st = 0;
	for (int i = 0; i < 30000 && !seen && !exited; i++) {
		seen = has_entry_with(tstore, tmp_part);
		if (!seen) {
			exited = waitpid(pid, &st, WNOHANG) == pid;
			usleep(500);
		}
	}
	if (seen)
		kill(pid, SIGKILL);
	int status = exited ? (WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)) : punix_wait(pid);
	char *out = tdir_read(&t, "cut.log");
	cr_assert(seen && status == 128 + SIGKILL, "the deployer was to be killed mid-push (exit %d): %s", status, out);
	free(out);

	/* the target's punix sees the stream end: nothing of the path is valid, its temporary goes */
	struct stat sst;
	bool tmp_left = true;
	for (int i = 0; i < 200 && tmp_left; i++) {
		tmp_left = has_entry_with(tstore, tmp_part);
		if (tmp_left)
			usleep(25 * 1000);
	}
	cr_expect_neq(stat(meta, &sst), 0, "no registration of %s on the target", path);
	cr_expect_neq(stat(tpath, &sst), 0, "no %s in the target's store", path);
	cr_expect(!tmp_left, "the half-received temporary of %s is removed", path);
	char *tj = journal_of_target(0);
	cr_expect_eq(count_lines_with(tj, "\tdeploy\t"), 0, "no op began on the target: %s", tj);
	free(tj);

	/* the next deploy (which first recovers the deployer's own interrupted op) pushes it whole */
	r = svc(0, "deploy", "--file", p, "--mode", "host", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "deployed: stack Web \u2192 gen-001 ("), "%s", r.out);
	proc_result_free(&r);
	cr_expect_eq(stat(meta, &sst), 0, "%s is registered on the target now", path);
	check_wholly_current(0, dep, store, "after the cut and a new deploy");
	char *dj = journal_of_deployer(home);
	cr_expect_eq(count_lines_with(dj, "\trunning\t"), 0, "the deployer's interrupted op was recovered: %s", dj);
	free(dj);
	free(log);
	free(meta);
	free(tmp_part);
	free(tstore);
	free(tpath);
	free(path);
	free(p);
}

/* ---- 7. two deployers racing on one target ----------------------------------------------------- */

Test(host, two_deployers_in_host_mode_never_lose_a_generation, .timeout = 180)
{
	char *homes[2] = {tdir_at(&t, "deployer-a"), tdir_at(&t, "deployer-b")};
	char *logs[2] = {tdir_at(&t, "a.log"), tdir_at(&t, "b.log")};
	char *shared = tdir_at(&t, "shared-store");
	int ok = 0, busy = 0;
	for (int round = 0; round < 3; round++) {
		pid_t pid[2];
		char *p[2];
		for (int k = 0; k < 2; k++) {
			/* a changed program each round (a new package and config), the same for both deployers */
			p[k] = prog(100 + round, 100 + round);
			const char *a[] = {"service", "deploy", "Web", "--file", p[k], "--mode", "host", "--store-root",
					   shared, "--deployments-root", "/srv/deploy", "--target", tg[0].url,
					   "--known-hosts", kh, "--key", tg[0].key, "--transport-root", tg[0].root, NULL};
			pid[k] = punix_start(homes[k], a, logs[k]);
		}
		for (int k = 0; k < 2; k++) {
			int st = punix_wait(pid[k]);
			char *out = tdir_read(&t, k ? "b.log" : "a.log");
			cr_expect(st == 0 || st == 4, "round %d, deployer %d: exit %d: %s", round, k, st, out);
			if (st == 0) {
				ok++;
				cr_expect(strstr(out, "mode: host"), "%s", out);
			} else if (st == 4) {
				if (!busy++)
					cr_log_info("told it was busy: %s", out);
				cr_expect(strstr(out, "pid") != NULL, "the busy stack's holder is named: %s", out);
			}
			free(out);
			free(p[k]);
		}
	}
	cr_log_info("%d deploys went through, %d were told the stack was busy", ok, busy);
	cr_expect_geq(ok, 3, "at least one deploy of each round went through");
	long gens[16];
	int n = generations(0, "/srv/deploy", gens, 16);
	cr_expect_eq(n, ok, "%d deploys said deployed; the target has %d generations", ok, n);
	for (int i = 0; i < n; i++)
		cr_expect_eq(gens[i], i + 1, "generation numbers are 1..%d without gap or duplicate (#%d is %ld)", n, i,
			     gens[i]);
	cr_expect_eq(current_gen(0, "/srv/deploy"), n, "the last generation is current");
	check_wholly_current(0, "/srv/deploy", shared, "after the race");
	for (int k = 0; k < 2; k++) {
		free(homes[k]);
		free(logs[k]);
	}
	free(shared);
}

/* ---- 8. a target that speaks another protocol version ------------------------------------------ */

static void put_field(struct sbuf *b, unsigned char tag, const void *v, uint32_t n)
{
	unsigned char h[5] = {tag, (unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
			      (unsigned char)(n >> 24)};
	sbuf_append(b, h, 5);
	sbuf_append(b, v, n);
}

static void put_num(struct sbuf *b, unsigned char tag, uint64_t v)
{
	unsigned char x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	put_field(b, tag, x, 8);
}

Test(host, a_target_speaking_protocol_99_is_refused_with_e15)
{
	struct utsname u;
	cr_assert_eq(uname(&u), 0);
	struct sbuf pl = SBUF_INIT, frame = SBUF_INIT;
	put_field(&pl, 1, "punix-host", 10);
	put_num(&pl, 2, 99);
	put_num(&pl, 3, 99);
	put_field(&pl, 4, "9.9.9", 5);
	put_field(&pl, 5, u.machine, (uint32_t)strlen(u.machine));
	unsigned char h[5] = {'H', (unsigned char)pl.sb_len, (unsigned char)(pl.sb_len >> 8),
			      (unsigned char)(pl.sb_len >> 16), (unsigned char)(pl.sb_len >> 24)};
	sbuf_append(&frame, h, 5);
	sbuf_append(&frame, pl.sb_buf, pl.sb_len);
	/* printf with octal escapes: the target's /bin/sh may be dash, whose printf has no \x */
	struct sbuf script = SBUF_INIT;
	sbuf_puts(&script, "#!/bin/sh\nprintf '");
	for (size_t i = 0; i < frame.sb_len; i++)
		sbuf_printf(&script, "\\%03o", (unsigned char)frame.sb_buf[i]);
	sbuf_puts(&script, "'\ncat >/dev/null\n");
	char *fake = tdir_at(&t, "fake/punix");
	tdir_write(&t, "fake/punix", script.sb_buf);
	chmod(fake, 0755);
	char *p = prog(1, 1);
	struct proc_result r = svc(0, "deploy", "--file", p, "--mode", "host", "--remote-punix", fake, NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E16]") && strstr(r.err, "99") && strstr(r.err, "upgrade"), "%s", r.err);
	proc_result_free(&r);
	/* auto mode does not fall back to agentless past a punix it cannot speak to */
	r = svc(0, "deploy", "--file", p, "--remote-punix", fake, NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E16]") != NULL, "%s", r.err);
	proc_result_free(&r);
	struct stat st;
	char *etc = fmt("%s/etc", tg[0].root);
	cr_expect_neq(stat(etc, &st), 0, "nothing was deployed");
	free(etc);
	free(p);
	free(fake);
	sbuf_free(&script);
	sbuf_free(&frame);
	sbuf_free(&pl);
}

/* ---- 9. no punix on the target --------------------------------------------------------------- */

Test(host, no_punix_on_the_target_is_e16_in_host_mode_and_agentless_in_auto_mode)
{
	char *p = prog(1, 1);
	struct proc_result r = svc(0, "deploy", "--file", p, "--mode", "host", "--remote-punix", "/nonexistent", NULL);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E17]") != NULL, "%s", r.err);
	proc_result_free(&r);

	/* a punix named with --remote-punix is used: the store path is on the target from here on */
	r = svc(0, "deploy", "--file", p, "--mode", "host", "--remote-punix", wrapper, NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "mode: host (") != NULL, "%s", r.out);
	proc_result_free(&r);

	/* the target's sessions find no punix on their PATH now */
	char *onpath = fmt("%s/punix", tg[0].fakebin);
	cr_assert_eq(unlink(onpath), 0);
	r = svc(0, "deploy", "--file", p, "--mode", "host", NULL);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E17]") != NULL, "%s", r.err);
	proc_result_free(&r);
	r = svc(0, "status", "--mode", "host", NULL);
	cr_expect_eq(r.status, 3, "status in host mode: %s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E17]") != NULL, "%s", r.err);
	proc_result_free(&r);

	r = svc(0, "deploy", "--file", p, NULL);
	cr_expect_eq(r.status, 0, "auto mode falls back: %s%s", r.out, r.err);
	cr_expect(strstr(r.out, "deployed: stack Web \u2192 gen-002 (") != NULL, "%s", r.out);
	cr_expect(strstr(r.out, "mode: agentless\n") != NULL, "%s", r.out);
	proc_result_free(&r);
	r = svc(0, "status", "--json", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	json_t *j = json_of(r.out);
	cr_expect_str_eq(json_str_of(j, "mode"), "agentless", "%s", r.out);
	json_decref(j);
	proc_result_free(&r);
	char *c = live_conf(0);
	cr_expect_str_eq(c ? c : "(none)", "v = 1\n");
	free(c);
	free(onpath);
	free(p);
}

/* ---- 10. the deployer killed once the target ran the op ---------------------------------------- */

/* The deployer's `punix recover`, or a deploy, with the deployer itself crashing at crash_at (NULL: none). */
static struct proc_result deploy_crashing(const char *crash_at, const char *p, const char *remote)
{
	if (crash_at)
		setenv("PUNIX_CRASH_AT", crash_at, 1);
	struct proc_result r = remote ? svc(0, "deploy", "--file", p, "--mode", "host", "--remote-punix", remote, NULL)
				      : svc(0, "deploy", "--file", p, "--mode", "host", NULL);
	unsetenv("PUNIX_CRASH_AT");
	return r;
}

static struct proc_result recover_deployer(void)
{
	const char *a[] = {"recover", NULL};
	return punix_run(home, a);
}

Test(host, the_deployer_killed_after_the_target_ran_the_op_recovers_through_the_targets_punix)
{
	char *p1 = prog(1, 1), *p2 = prog(2, 2);
	struct proc_result r = deploy_crashing(NULL, p1, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	r = deploy_crashing("deploy@host:run:after", p2, NULL);
	cr_assert_eq(r.status, 128 + SIGKILL, "the deployer dies after the target ran the deploy: %s%s", r.out, r.err);
	proc_result_free(&r);
	cr_expect_eq(current_gen(0, dep), 2, "the target's punix finished the deploy");
	char *j = journal_of_deployer(home);
	cr_expect_eq(count_lines_with(j, "\trunning\tdeploy@host\t"), 1, "%s", j);
	free(j);
	/* the deployer's recovery asks the target's punix to recover itself and says what is current there */
	r = recover_deployer();
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "the target's own recovery") && strstr(r.out, "current there is gen-002"), "%s", r.out);
	proc_result_free(&r);
	j = journal_of_deployer(home);
	cr_expect_eq(count_lines_with(j, "\trunning\t"), 0, "%s", j);
	free(j);
	check_wholly_current(0, dep, store, "after the deployer's recovery");
	r = deploy_crashing(NULL, p1, NULL);
	cr_expect_eq(r.status, 0, "the stack is free again: %s%s", r.out, r.err);
	proc_result_free(&r);
	free(p1);
	free(p2);
}

/*
 * An op made with --remote-punix on a target with no punix on its PATH is
 * recovered with that punix: the op's plan records it.
 */
Test(host, an_op_made_with_remote_punix_is_recovered_with_it)
{
	char *onpath = fmt("%s/punix", tg[0].fakebin);
	cr_assert_eq(unlink(onpath), 0);
	free(onpath);
	char *p1 = prog(1, 1), *p2 = prog(2, 2);
	struct proc_result r = deploy_crashing(NULL, p1, wrapper);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	r = deploy_crashing("deploy@host:run:after", p2, wrapper);
	cr_assert_eq(r.status, 128 + SIGKILL, "%s%s", r.out, r.err);
	proc_result_free(&r);
	r = recover_deployer();
	cr_expect_eq(r.status, 0, "the deployer's recovery reaches the op's --remote-punix: %s%s", r.out, r.err);
	proc_result_free(&r);
	r = deploy_crashing(NULL, p1, wrapper);
	cr_expect_eq(r.status, 0, "the next deploy with the same --remote-punix: %s%s", r.out, r.err);
	proc_result_free(&r);
	free(p1);
	free(p2);
}

/*
 * When the target's punix is killed mid-op, the deployer exits 3 (one of
 * its documented codes), says so, and has the target recover at once.
 */
Test(host, a_killed_targets_punix_is_a_documented_failure)
{
	char *p1 = prog(1, 1);
	struct proc_result r = svc(0, "deploy", "--file", p1, "--mode", "host", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	char *p2 = prog(2, 2);
	/* one-shot: the session that recovers right after (a new one) runs without the crash point */
	char *once = fmt("export PUNIX_CRASH_AT=deploy:flip:after\n: > '%s'\n", env_file);
	target_env(once);
	free(once);
	r = svc(0, "deploy", "--file", p2, "--mode", "host", NULL);
	target_env("");
	cr_expect(r.status >= 1 && r.status <= 4, "a documented exit code (0..4), not %d: %s", r.status, r.err);
	cr_expect(strstr(r.err, "failed without saying why") == NULL, "the deployer says what happened: %s", r.err);
	cr_expect(strstr(r.err, "was killed (signal 9)") && strstr(r.err, "the target's own recovery: op "), "%s", r.err);
	proc_result_free(&r);
	free(p1);
	free(p2);
}

/*
 * A host key marked @revoked in known_hosts is refused, even beside a line
 * that accepts it for that host (as ssh does; libssh2 alone would take the
 * marker for a host name and accept the key).
 */
Test(host, a_revoked_host_key_is_refused)
{
	char *pub = fmt("%s/hostkey-a.pub", t.path);
	cr_assert_eq(shf("printf '@revoked * %%s\\n' \"$(cut -d' ' -f1,2 %s)\" >> %s", pub, kh), 0);
	free(pub);
	char *p = prog(1, 1);
	struct proc_result r = svc(0, "deploy", "--file", p, NULL);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "is marked @revoked in") != NULL, "%s", r.err);
	proc_result_free(&r);
	/* the other target's key is not revoked */
	r = svc(1, "deploy", "--file", p, NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	free(p);
}

/* ---- confirm-or-revert (docs/deploy.md, "Confirm or revert") ----------------------------------- */

/*
 * The target waits after activation for the deployer's confirmation, which
 * comes over a new SSH connection, and for --health: with both it keeps the
 * generation; with a check that never passes it flips back by itself and
 * the deployer's command exits 1 saying so. Agentless mode refuses it.
 */
Test(host, confirm_or_revert_in_host_mode, .timeout = 180)
{
	char *p1 = prog(1, 1), *p2 = prog(2, 1), *p3 = prog(3, 1);
	struct proc_result r = svc(0, "deploy", "--file", p1, "--mode", "host", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	char *ok = fmt("test -f %s/etc/app.conf", tg[0].root);
	r = svc(0, "deploy", "--file", p2, "--mode", "host", "--confirm-timeout", "20", "--health", ok, NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "confirmed: stack Web stays at gen-002") && strstr(r.out, "mode: host"), "%s", r.out);
	proc_result_free(&r);
	char *c = live_conf(0), *want = conf_text(2);
	cr_expect_str_eq(c ? c : "(none)", want);
	free(c);
	free(want);

	r = svc(0, "deploy", "--file", p3, "--mode", "host", "--confirm-timeout", "2", "--health", "exit 4", NULL);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E18] stack Web: gen-003 was not kept: reverted to gen-002: the health check `exit 4` "
				"failed (exit 4"),
		  "%s", r.err);
	proc_result_free(&r);
	cr_expect_eq(current_gen(0, dep), 2);
	c = live_conf(0), want = conf_text(2);
	cr_expect_str_eq(c ? c : "(none)", want, "gen-002's file is live again");
	free(c);
	free(want);
	check_wholly_current(0, dep, store, "after the revert");
	char *j = journal_of_target(0);
	cr_expect_eq(count_lines_with(j, "\taborted\tdeploy\tWeb\t"), 1, "the target's journal: %s", j);
	free(j);
	j = journal_of_deployer(home);
	cr_expect_eq(count_lines_with(j, "\trunning\t"), 0, "%s", j);
	free(j);

	r = svc(0, "rollback", "--mode", "agentless", "--confirm-timeout", "3", NULL);
	cr_expect_eq(r.status, 2, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "--confirm-timeout needs host mode") != NULL, "%s", r.err);
	proc_result_free(&r);
	cr_expect_eq(current_gen(0, dep), 2, "nothing changed");
	free(ok);
	free(p1);
	free(p2);
	free(p3);
}

/* The deployer dies as the target waits for it: the target flips back by itself, alone. */
Test(host, a_confirmation_that_never_comes_is_reverted_by_the_target, .timeout = 120)
{
	char *p1 = prog(1, 1), *p2 = prog(2, 1);
	struct proc_result r = svc(0, "deploy", "--file", p1, "--mode", "host", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	setenv("PUNIX_CRASH_AT", "deploy@host:run:confirming", 1);
	r = svc(0, "deploy", "--file", p2, "--mode", "host", "--confirm-timeout", "3", NULL);
	unsetenv("PUNIX_CRASH_AT");
	cr_assert_eq(r.status, 128 + SIGKILL, "the deployer dies before it confirms: %s%s", r.out, r.err);
	proc_result_free(&r);
	/* gen-002 is live until the target gives up waiting; its op ends aborted once it has flipped back */
	char *j = NULL;
	for (int i = 0; i < 300; i++) {
		free(j);
		j = journal_of_target(0);
		if (count_lines_with(j, "\taborted\tdeploy\tWeb\t") == 1)
			break;
		usleep(100 * 1000);
	}
	cr_expect_eq(count_lines_with(j, "\taborted\tdeploy\tWeb\t"), 1, "the target's journal: %s", j);
	free(j);
	cr_expect_eq(current_gen(0, dep), 1, "the target flipped back to gen-001 by itself");
	char *c = live_conf(0), *want = conf_text(1);
	cr_expect_str_eq(c ? c : "(none)", want);
	free(c);
	free(want);
	check_wholly_current(0, dep, store, "after the target's revert");
	/* the deployer's recovery asks the target what became of it */
	r = recover_deployer();
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "current there is gen-001") != NULL, "%s", r.out);
	proc_result_free(&r);
	free(p1);
	free(p2);
}

/* The target's punix dies while it waits: its own recovery flips back, and the deployer says so. */
Test(host, the_targets_punix_killed_while_it_waits_is_reverted_by_its_recovery, .timeout = 120)
{
	char *p1 = prog(1, 1), *p2 = prog(2, 1);
	struct proc_result r = svc(0, "deploy", "--file", p1, "--mode", "host", "--remote-punix", wrapper, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	target_env("export PUNIX_CRASH_AT=deploy:confirm:waiting\n");
	r = svc(0, "deploy", "--file", p2, "--mode", "host", "--remote-punix", wrapper, "--confirm-timeout", "30", NULL);
	target_env("");
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "reverted to gen-001: its punix stopped before the op was confirmed") != NULL, "%s",
		  r.err);
	proc_result_free(&r);
	cr_expect_eq(current_gen(0, dep), 1);
	char *c = live_conf(0), *want = conf_text(1);
	cr_expect_str_eq(c ? c : "(none)", want);
	free(c);
	free(want);
	check_wholly_current(0, dep, store, "after the target's recovery");
	free(p1);
	free(p2);
}

/*
 * A supervisord stack in host mode: the deployer reads the target's
 * supervisord.conf through the connection to find its include directory,
 * renders, and the target's punix writes the program file there.
 */
Test(host, a_supervisord_stack_deploys_in_host_mode)
{
	char *confdir = fmt("%s/etc/supervisor", tg[0].root);
	cr_assert_eq(shf("mkdir -p %s/conf.d && printf '[supervisord]\\n[include]\\nfiles = /etc/supervisor/conf.d/*.conf\\n' "
			 "> %s/supervisord.conf",
			 confdir, confdir),
		     0);
	tdir_write(&t, "prog/sup.pcl",
		   "module Bins { pname = \"bins\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf '#!/bin/sh\\\\nexec sleep 9\\\\n' > "
		   "$OUTPUT/bin/ok && chmod +x $OUTPUT/bin/ok\" } }\n"
		   "module Web { backend = \"supervisord\"\n"
		   "  services = [{ name = \"ticker\" package = \"Bins\" binary = \"ok\" }] }\n");
	char *p = tdir_at(&t, "prog/sup.pcl");
	struct proc_result r =
		svc(0, "deploy", "--file", p, "--mode", "host", "--supervisor-conf", "/etc/supervisor/supervisord.conf", NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "mode: host") != NULL, "%s", r.out);
	proc_result_free(&r);
	char *f = fmt("%s/conf.d/ticker.conf", confdir);
	char *text = read_path(f);
	cr_expect(text && strstr(text, "[program:ticker]\ncommand=") != NULL, "%s: %s", f, text ? text : "(none)");
	free(text);
	free(f);
	free(p);
	free(confdir);
}

/*
 * The deployer dies before it confirms; an operator confirms by hand from
 * elsewhere (`service confirm STACK TOKEN --target`, the token read from
 * the target's decision file): the target keeps the new generation.
 */
Test(host, an_operator_confirms_over_ssh_when_the_deployer_went_away, .timeout = 120)
{
	char *p1 = prog(1, 1), *p2 = prog(2, 1);
	struct proc_result r = svc(0, "deploy", "--file", p1, "--mode", "host", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	r = svc(0, "confirm", "0123456789abcdef", "--wait", "1", NULL);
	cr_expect_eq(r.status, 1, "nobody waits yet: %s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E18] stack Web: no op there waits for this confirmation") != NULL, "%s", r.err);
	proc_result_free(&r);

	setenv("PUNIX_CRASH_AT", "deploy@host:run:confirming", 1);
	r = svc(0, "deploy", "--file", p2, "--mode", "host", "--confirm-timeout", "60", NULL);
	unsetenv("PUNIX_CRASH_AT");
	cr_assert_eq(r.status, 128 + SIGKILL, "%s%s", r.out, r.err);
	proc_result_free(&r);
	char *decision = fmt("%s%s/.locks/Web.confirm", tg[0].root, dep), *text = NULL;
	char token[96] = "";
	for (int i = 0; i < 100; i++) {
		free(text);
		text = read_path(decision);
		if (text && sscanf(text, "punix-confirm 1\t%95[^\t]\twaiting\t", token) == 1)
			break;
		token[0] = '\0';
		usleep(100 * 1000);
	}
	cr_assert(token[0], "the target waits: %s", text ? text : "(no decision file)");
	r = svc(0, "confirm", token, NULL);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "stack Web: confirmed\n") && strstr(r.out, "mode: host"), "%s", r.out);
	proc_result_free(&r);
	char *j = NULL;
	for (int i = 0; i < 100; i++) {
		free(j);
		j = journal_of_target(0);
		if (count_lines_with(j, "\tdone\tdeploy\tWeb\t") == 2)
			break;
		usleep(100 * 1000);
	}
	cr_expect_eq(count_lines_with(j, "\tdone\tdeploy\tWeb\t"), 2, "the target's op ended done: %s", j);
	free(j);
	cr_expect_eq(current_gen(0, dep), 2, "gen-002 stays");
	free(text);
	free(decision);
	free(p1);
	free(p2);
}
