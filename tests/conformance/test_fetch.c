/*
 * test_fetch.c - url sources (docs/pcl.md, "Sources"; docs/building.md,
 * "The download cache"): a package's file fetched over HTTP from a server
 * on loopback (a few lines of Python's http.server, with a redirect), or
 * from a file:// URL; the download cache and its use offline; a wrong hash
 * and a 404 as [E10], with nothing left in the cache or the store; the
 * store path named by the declared hash and the file's name, not the URL.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "store/store.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home;
static pid_t server = -1;
static int port;

static const char content[] = "hello from the web\n";
static char hash[65];

/* /to/<path> answers 302 to /<path>; everything else as http.server does. */
static const char server_py[] =
	"import http.server, sys, os\n"
	"os.chdir(sys.argv[1])\n"
	"class H(http.server.SimpleHTTPRequestHandler):\n"
	"    def log_message(self, *a): pass\n"
	"    def do_GET(self):\n"
	"        if self.path.startswith('/to/'):\n"
	"            self.send_response(302)\n"
	"            self.send_header('Location', self.path[3:])\n"
	"            self.send_header('Content-Length', '0')\n"
	"            self.end_headers()\n"
	"            return\n"
	"        return super().do_GET()\n"
	"s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
	"print(s.server_address[1], flush=True)\n"
	"s.serve_forever()\n";

static void start_server(void)
{
	tdir_write(&t, "server.py", server_py);
	char *script = tdir_at(&t, "server.py"), *www = tdir_at(&t, "www");
	const char *argv[] = {script, www, NULL};
	server = test_server_start(argv, &port);
	free(script);
	free(www);
}

static void stop_server(void)
{
	test_server_stop(&server);
}

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	tdir_write(&t, "www/hello.txt", content);
	tdir_write(&t, "www/hello.bin", content);
	unsigned char h[32];
	store_sha256(content, strlen(content), h);
	store_hex(h, 32, hash);
	start_server();
}

static void teardown(void)
{
	stop_server();
	free(home);
	tdir_free(&t);
}

/* A package whose build copies src/<file> into $OUTPUT. */
static void write_pkg(struct sbuf *sb, const char *module, const char *pname, const char *url, const char *file,
		      const char *h)
{
	sbuf_printf(sb,
		    "module %s {\n  pname = \"%s\"\n  version = \"1\"\n  recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"cp %s $OUTPUT/ && ls > $OUTPUT/listing\" }\n"
		    "  source = { type = \"url\" url = \"%s\" hash = \"%s\" hashType = \"sha256\" }\n}\n",
		    module, pname, file, url, h);
}

static char *url_of(const char *path)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "http://127.0.0.1:%d/%s", port, path);
	return sbuf_detach(&sb, NULL);
}

static struct proc_result build(const char *rel, const char *text, bool dry)
{
	tdir_write(&t, rel, text);
	char *prog = tdir_at(&t, rel);
	const char *args[] = {"build", prog, dry ? "--dry-run" : NULL, NULL};
	struct proc_result r = punix_run(home, args);
	free(prog);
	return r;
}

static char *path_of(const char *out, const char *module)
{
	char key[128];
	snprintf(key, sizeof(key), "\t%s\t", module);
	const char *p = strstr(out, key);
	cr_assert_not_null(p, "no line for %s in:\n%s", module, out);
	p += strlen(key);
	return strndup(p, strcspn(p, "\t\n"));
}

static char *cache_file(const char *h)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "cache/sha256-%s", h);
	char *rel = sbuf_detach(&sb, NULL);
	sbuf_printf(&sb, "%s/%s", home, rel);
	free(rel);
	return sbuf_detach(&sb, NULL);
}

/* Entries of dir that are not locks (cache) or dot-files (store), counted. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && !strstr(e->d_name, ".lock"))
			n++;
	closedir(d);
	return n;
}

static char *read_in(const char *dir, const char *name)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s", dir, name);
	FILE *f = fopen(sb.sb_buf, "r");
	sbuf_free(&sb);
	if (!f)
		return NULL;
	char buf[256] = "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	return strndup(buf, n);
}

TestSuite(fetch, .init = setup, .fini = teardown);

Test(fetch, a_url_source_is_fetched_cached_and_used_offline)
{
	char *url = url_of("hello.txt");
	struct sbuf p = SBUF_INIT;
	write_pkg(&p, "A", "a", url, "hello.txt", hash);
	struct proc_result r = build("one.pcl", p.sb_buf, false);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *path = path_of(r.out, "A");
	char *got = read_in(path, "hello.txt"), *listing = read_in(path, "listing");
	cr_expect_str_eq(got, content);
	cr_expect_str_eq(listing, "hello.txt\n", "src/ holds the file alone, under its URL's last component");
	char *cached = cache_file(hash);
	struct stat st;
	cr_expect_eq(stat(cached, &st), 0, "%s", cached);
	cr_expect_eq((size_t)st.st_size, strlen(content));
	proc_result_free(&r);

	/* no server: another package of the same file builds from the cache */
	stop_server();
	sbuf_reset(&p);
	write_pkg(&p, "B", "b", url, "hello.txt", hash);
	r = build("two.pcl", p.sb_buf, false);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);

	/* a cached file that was changed is not used: fetched again (offline: it fails, naming the URL) */
	FILE *f = fopen(cached, "w");
	fputs("tampered\n", f);
	fclose(f);
	sbuf_reset(&p);
	write_pkg(&p, "C", "c", url, "hello.txt", hash);
	r = build("three.pcl", p.sb_buf, false);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "[E10] package 'C': cannot fetch ") && strstr(r.out, url), "%s", r.out);
	cr_expect_neq(stat(cached, &st), 0, "the tampered file left the cache");
	proc_result_free(&r);
	free(got);
	free(listing);
	free(cached);
	free(path);
	free(url);
	sbuf_free(&p);
}

Test(fetch, the_path_is_named_by_the_declared_hash_and_the_file_name_not_the_url)
{
	struct sbuf a = SBUF_INIT, b = SBUF_INIT, c = SBUF_INIT;
	write_pkg(&a, "A", "a", "http://127.0.0.1:1/x/hello.txt", "hello.txt", hash);
	write_pkg(&b, "A", "a", "https://mirror.invalid/y/hello.txt?v=2", "hello.txt", hash);
	write_pkg(&c, "A", "a", "https://mirror.invalid/y/other.txt", "other.txt", hash);
	struct proc_result ra = build("a.pcl", a.sb_buf, true), rb = build("b.pcl", b.sb_buf, true),
			   rc = build("c.pcl", c.sb_buf, true);
	cr_assert_eq(ra.status, 0, "%s%s", ra.out, ra.err);
	cr_assert_eq(rb.status, 0, "%s%s", rb.out, rb.err);
	cr_assert_eq(rc.status, 0, "%s%s", rc.out, rc.err);
	char *pa = path_of(ra.out, "A"), *pb = path_of(rb.out, "A"), *pc = path_of(rc.out, "A");
	cr_expect_str_eq(pa, pb, "the same hash and name from two URLs: one path");
	cr_expect_str_neq(pa, pc, "another file name: another path");
	char *cache = tdir_at(&t, "home/cache");
	cr_expect_eq(count_entries(cache), 0, "a dry run fetches nothing");
	free(cache);
	free(pa);
	free(pb);
	free(pc);
	proc_result_free(&ra);
	proc_result_free(&rb);
	proc_result_free(&rc);
	sbuf_free(&a);
	sbuf_free(&b);
	sbuf_free(&c);
}

Test(fetch, a_wrong_hash_is_E10_with_both_hashes_and_leaves_nothing)
{
	char *url = url_of("hello.txt");
	const char *wrong = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct sbuf p = SBUF_INIT;
	write_pkg(&p, "Bad", "bad", url, "hello.txt", wrong);
	struct proc_result r = build("bad.pcl", p.sb_buf, false);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "FAIL\tBad\t[E10] package 'Bad': cannot fetch ") != NULL, "%s", r.out);
	cr_expect(strstr(r.out, url) && strstr(r.out, hash) && strstr(r.out, wrong), "%s", r.out);
	char *cache = tdir_at(&t, "home/cache"), *store = tdir_at(&t, "home/store");
	cr_expect_eq(count_entries(cache), 0, "nothing entered the cache");
	cr_expect_eq(count_entries(store), 0, "nothing entered the store");
	proc_result_free(&r);
	free(cache);
	free(store);
	free(url);
	sbuf_free(&p);
}

Test(fetch, a_404_is_E10_naming_the_url)
{
	char *url = url_of("missing.txt");
	struct sbuf p = SBUF_INIT;
	write_pkg(&p, "Gone", "gone", url, "missing.txt", hash);
	struct proc_result r = build("gone.pcl", p.sb_buf, false);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "[E10] package 'Gone': cannot fetch ") && strstr(r.out, url) &&
			  strstr(r.out, "HTTP 404"),
		  "%s", r.out);
	char *cache = tdir_at(&t, "home/cache");
	cr_expect_eq(count_entries(cache), 0);
	proc_result_free(&r);
	free(cache);
	free(url);
	sbuf_free(&p);
}

Test(fetch, a_redirect_is_followed)
{
	char *url = url_of("to/hello.bin");
	struct sbuf p = SBUF_INIT;
	write_pkg(&p, "R", "r", url, "hello.bin", hash);
	struct proc_result r = build("r.pcl", p.sb_buf, false);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *path = path_of(r.out, "R");
	char *got = read_in(path, "hello.bin");
	cr_expect_str_eq(got, content, "a file whose name is not an archive's is in src/ as it is");
	free(got);
	free(path);
	proc_result_free(&r);
	free(url);
	sbuf_free(&p);
}

Test(fetch, a_file_url_works)
{
	struct sbuf url = SBUF_INIT, p = SBUF_INIT;
	sbuf_printf(&url, "file://%s/www/hello.txt", t.path);
	write_pkg(&p, "F", "f", url.sb_buf, "hello.txt", hash);
	struct proc_result r = build("f.pcl", p.sb_buf, false);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *path = path_of(r.out, "F");
	char *got = read_in(path, "hello.txt");
	cr_expect_str_eq(got, content);
	free(got);
	free(path);
	proc_result_free(&r);
	sbuf_free(&url);
	sbuf_free(&p);
}

Test(fetch, offline_and_not_cached_is_E10_naming_the_url)
{
	char *url = url_of("hello.txt");
	stop_server();
	struct sbuf p = SBUF_INIT;
	write_pkg(&p, "Off", "off", url, "hello.txt", hash);
	struct proc_result r = build("off.pcl", p.sb_buf, false);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "[E10] package 'Off': cannot fetch ") && strstr(r.out, url), "%s", r.out);
	proc_result_free(&r);
	free(url);
	sbuf_free(&p);
}

Test(fetch, the_checker_refuses_a_bad_url_hash_or_hash_type)
{
	struct sbuf p = SBUF_INIT;
	sbuf_puts(&p, "module A {\n  pname = \"a\"\n  version = \"1\"\n  recipe = \"std.shell\"\n"
		      "  recipeArgs = { command = \"true\" }\n"
		      "  source = { type = \"url\" url = \"ftp://x/y.tar\" hash = \"ABC\" hashType = \"md5\" }\n}\n");
	struct proc_result r = build("bad.pcl", p.sb_buf, true);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E6]") && strstr(r.err, "http://, https:// or file:// URL"), "%s", r.err);
	cr_expect(strstr(r.err, "64 lower-case hex digits"), "%s", r.err);
	cr_expect(strstr(r.err, "unknown hashType \"md5\"; supported: sha256"), "%s", r.err);
	proc_result_free(&r);
	sbuf_free(&p);
}
