/*
 * test_fetch_resume.c - the download side of url sources (docs/building.md,
 * "The download cache"): a download cut short leaves its partial file
 * (.sha256-<hash>.part), which the next fetch of that hash continues with
 * a Range request; a server that ignores the Range or answers 416, or a
 * partial file of other bytes, starts it over; a stalled server fails with
 * [E10] within seconds (PUNIX_FETCH_STALL_SECS); HTTPS with a self-signed
 * certificate is refused until SSL_CERT_FILE or CURL_CA_BUNDLE names it;
 * and the progress line says the bytes fetched.
 *
 * The server (Python, threaded, on loopback) serves www/NAME as
 * /MODE/NAME, logging "MODE NAME RANGE" per request: range honours a
 * Range (206), plain ignores it (200, the whole file), r416 answers 416 to
 * any, stall sends 1000 bytes and then nothing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "store/store.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home;
static pid_t server = -1;
static int port;
static char *big;     /* www/big.bin: 300 KiB */
static char hash[65]; /* its sha256 */
#define BIG_BYTES (300 * 1024)

static const char server_py[] =
	"import http.server, sys, os, time, ssl\n"
	"root, log = sys.argv[1], open(sys.argv[2], 'a', buffering=1)\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    def log_message(self, *a): pass\n"
	"    def do_GET(self):\n"
	"        mode, _, name = self.path.lstrip('/').partition('/')\n"
	"        rng = self.headers.get('Range')\n"
	"        log.write('%s %s %s\\n' % (mode, name, rng or '-'))\n"
	"        try:\n"
	"            data = open(os.path.join(root, name), 'rb').read()\n"
	"        except OSError:\n"
	"            self.send_response(404); self.send_header('Content-Length', '0'); self.end_headers(); return\n"
	"        if mode == 'stall':\n"
	"            self.send_response(200); self.send_header('Content-Length', str(len(data))); self.end_headers()\n"
	"            self.wfile.write(data[:1000]); self.wfile.flush(); time.sleep(120); return\n"
	"        start = 0\n"
	"        if rng and mode in ('range', 'r416'):\n"
	"            start = int(rng[len('bytes='):].split('-')[0])\n"
	"            if mode == 'r416' or start >= len(data):\n"
	"                self.send_response(416); self.send_header('Content-Range', 'bytes */%d' % len(data))\n"
	"                self.send_header('Content-Length', '0'); self.end_headers(); return\n"
	"            self.send_response(206)\n"
	"            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, len(data) - 1, len(data)))\n"
	"        else:\n"
	"            self.send_response(200)\n"
	"        self.send_header('Content-Length', str(len(data) - start)); self.end_headers()\n"
	"        self.wfile.write(data[start:])\n"
	"class S(http.server.ThreadingHTTPServer):\n"
	"    daemon_threads = True\n"
	"    def handle_error(self, *a): pass\n" /* punix hanging up on a stall, or on a refused certificate */
	"s = S(('127.0.0.1', 0), H)\n"
	"if len(sys.argv) > 3:\n"
	"    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(sys.argv[3], sys.argv[4])\n"
	"    s.socket = c.wrap_socket(s.socket, server_side=True)\n"
	"print(s.server_address[1], flush=True)\n"
	"s.serve_forever()\n";

static void start_server(bool tls)
{
	tdir_write(&t, "server.py", server_py);
	char *script = tdir_at(&t, "server.py"), *www = tdir_at(&t, "www"), *log = tdir_at(&t, "requests.log");
	char *cert = tdir_at(&t, "cert.pem"), *key = tdir_at(&t, "key.pem");
	const char *argv[] = {script, www, log, tls ? cert : NULL, key, NULL};
	server = test_server_start(argv, &port);
	free(script);
	free(www);
	free(log);
	free(cert);
	free(key);
}

static void stop_server(void)
{
	test_server_stop(&server);
}

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	big = malloc(BIG_BYTES + 1);
	for (size_t i = 0; i < BIG_BYTES; i++)
		big[i] = (i % 64 == 63) ? '\n' : (char)('a' + (i * 7 + i / 64) % 26);
	big[BIG_BYTES] = 0;
	tdir_write(&t, "www/big.bin", big);
	unsigned char h[32];
	store_sha256(big, BIG_BYTES, h);
	store_hex(h, 32, hash);
	unsetenv("PUNIX_FETCH_STALL_SECS");
	unsetenv("PUNIX_FETCH_CONNECT_SECS");
	unsetenv("SSL_CERT_FILE");
	unsetenv("CURL_CA_BUNDLE");
	unsetenv("PUNIX_PROGRESS");
}

static void teardown(void)
{
	stop_server();
	free(home);
	free(big);
	tdir_free(&t);
}

TestSuite(resume, .init = setup, .fini = teardown, .timeout = 120);

/*
 * punix build of one package Big whose build copies src/<file> into
 * $OUTPUT, from url; a new store path each time (so each build needs the
 * file: from the download cache, or fetched).
 */
static struct proc_result build_from(const char *url, const char *file, const char *h)
{
	static int builds; /* this test process's */
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p,
		    "module Big {\n  pname = \"big\"\n  version = \"1\"\n  recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"cp %s $OUTPUT/ && echo %d > $OUTPUT/n\" }\n"
		    "  source = { type = \"url\" url = \"%s\" hash = \"%s\" hashType = \"sha256\" }\n}\n",
		    file, ++builds, url, h);
	tdir_write(&t, "big.pcl", p.sb_buf);
	sbuf_free(&p);
	char *prog = tdir_at(&t, "big.pcl");
	const char *args[] = {"build", prog, NULL};
	struct proc_result r = punix_run(home, args);
	free(prog);
	return r;
}

static struct proc_result build(const char *mode)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s/big.bin", port, mode);
	return build_from(url, "big.bin", hash);
}

static char *at_home(const char *rel_fmt, const char *h)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/", home);
	sbuf_printf(&sb, rel_fmt, h);
	return sbuf_detach(&sb, NULL);
}

/* Makes the partial file of big.bin's hash hold n bytes of text (the cache directory made first). */
static void write_part(const char *text, size_t n)
{
	char *dir = at_home("cache", NULL), *part = at_home("cache/.sha256-%s.part", hash);
	mkdir(home, 0755);
	mkdir(dir, 0755);
	FILE *f = fopen(part, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, n, f), n);
	fclose(f);
	chmod(part, 0600);
	free(dir);
	free(part);
}

static bool part_exists(struct stat *st)
{
	char *part = at_home("cache/.sha256-%s.part", hash);
	bool r = lstat(part, st) == 0;
	free(part);
	return r;
}

static char *requests(void)
{
	char *s = tdir_read(&t, "requests.log");
	return s ? s : strdup("");
}

/* The file in the cache is big.bin's bytes, and no partial file is left. */
static void expect_cached(void)
{
	char *cached = at_home("cache/sha256-%s", hash);
	FILE *f = fopen(cached, "r");
	cr_assert_not_null(f, "%s is not in the cache", cached);
	char *got = malloc(BIG_BYTES + 2);
	size_t n = fread(got, 1, BIG_BYTES + 1, f);
	fclose(f);
	cr_expect(n == BIG_BYTES && memcmp(got, big, BIG_BYTES) == 0, "the cached file is not big.bin (%zu bytes)", n);
	struct stat st;
	cr_expect(stat(cached, &st) == 0 && (st.st_mode & 0777) == 0644, "the cached file is 0644");
	cr_expect(!part_exists(&st), "the partial file is gone once the file is in the cache");
	free(got);
	free(cached);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(resume, a_stalled_download_fails_within_seconds_and_the_next_fetch_resumes_it)
{
	start_server(false);
	setenv("PUNIX_FETCH_STALL_SECS", "2", 1);
	double t0 = now_s();
	struct proc_result r = build("stall");
	double took = now_s() - t0;
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "[E10] package 'Big': cannot fetch ") && strstr(r.out, "stalled") &&
			  strstr(r.out, "PUNIX_FETCH_STALL_SECS"),
		  "%s", r.out);
	cr_expect(took < 30, "the stall was noticed after %.1f s", took);
	struct stat st;
	cr_assert(part_exists(&st), "the bytes had are kept");
	cr_expect(S_ISREG(st.st_mode) && st.st_size == 1000 && (st.st_mode & 0777) == 0600, "size %lld mode %o",
		  (long long)st.st_size, st.st_mode & 0777);
	proc_result_free(&r);

	unsetenv("PUNIX_FETCH_STALL_SECS");
	r = build("range");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *log = requests();
	cr_expect(strstr(log, "range big.bin bytes=1000-\n") != NULL, "resumed at 1000: %s", log);
	cr_expect(strstr(log, "range big.bin -\n") == NULL, "not fetched whole again: %s", log);
	expect_cached();
	free(log);
	proc_result_free(&r);
}

Test(resume, a_server_that_ignores_the_range_starts_over)
{
	start_server(false);
	write_part(big, 1000);
	struct proc_result r = build("plain");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *log = requests();
	cr_expect(strstr(log, "plain big.bin bytes=1000-\nplain big.bin -\n") != NULL, "%s", log);
	expect_cached();
	free(log);
	proc_result_free(&r);
}

Test(resume, a_416_starts_over)
{
	start_server(false);
	write_part(big, 1000);
	struct proc_result r = build("r416");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *log = requests();
	cr_expect(strstr(log, "r416 big.bin bytes=1000-\nr416 big.bin -\n") != NULL, "%s", log);
	expect_cached();
	free(log);
	proc_result_free(&r);
}

Test(resume, a_partial_file_of_other_bytes_fails_the_hash_and_starts_over)
{
	start_server(false);
	write_part("not the start of big.bin at all", 31);
	struct proc_result r = build("range");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *log = requests();
	cr_expect(strstr(log, "range big.bin bytes=31-\nrange big.bin -\n") != NULL, "%s", log);
	expect_cached();
	free(log);
	proc_result_free(&r);
}

Test(resume, a_complete_partial_file_enters_the_cache_without_the_network)
{
	write_part(big, BIG_BYTES); /* killed between the last byte and the rename; no server runs */
	struct proc_result r = build_from("http://127.0.0.1:9/range/big.bin", "big.bin", hash);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	expect_cached();
	proc_result_free(&r);
}

Test(resume, a_partial_file_that_is_a_symlink_or_a_directory_is_removed_not_followed)
{
	start_server(false);
	tdir_write(&t, "victim", "untouched\n");
	char *victim = tdir_at(&t, "victim"), *part = at_home("cache/.sha256-%s.part", hash);
	write_part("", 0);
	unlink(part);
	cr_assert_eq(symlink(victim, part), 0);
	struct proc_result r = build("range");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *v = tdir_read(&t, "victim");
	cr_expect_str_eq(v, "untouched\n");
	expect_cached();
	free(v);
	proc_result_free(&r);

	/* a directory in its place: removed too, and the file fetched (cache emptied first) */
	char *cached = at_home("cache/sha256-%s", hash);
	unlink(cached);
	cr_assert_eq(mkdir(part, 0755), 0);
	r = build("range");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	expect_cached();
	proc_result_free(&r);
	free(cached);
	free(victim);
	free(part);
}

Test(resume, a_wrong_hash_removes_the_partial_file)
{
	start_server(false);
	const char *wrong = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/range/big.bin", port);
	struct proc_result r = build_from(url, "big.bin", wrong);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "[E10]") && strstr(r.out, hash) && strstr(r.out, wrong), "%s", r.out);
	char *part = at_home("cache/.sha256-%s.part", wrong);
	struct stat st;
	cr_expect(lstat(part, &st) < 0 && errno == ENOENT, "no partial file is kept of a file with another hash");
	free(part);
	proc_result_free(&r);
}

Test(resume, a_bad_stall_setting_is_refused_naming_the_variable)
{
	setenv("PUNIX_FETCH_STALL_SECS", "soon", 1);
	struct proc_result r = build_from("http://127.0.0.1:9/range/big.bin", "big.bin", hash);
	cr_expect_eq(r.status, 2, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "PUNIX_FETCH_STALL_SECS") && strstr(r.err, "soon"), "%s", r.err);
	proc_result_free(&r);
}

Test(resume, progress_says_the_bytes_fetched)
{
	start_server(false);
	setenv("PUNIX_PROGRESS", "1", 1);
	struct proc_result r = build("range");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "\nbuild: fetching big.bin: 300.0 KiB of 300.0 KiB\n") != NULL, "%s", r.err);
	cr_expect(strstr(r.err, "\nbuild: 1 of 1 packages done\n") != NULL, "%s", r.err);
	cr_expect(strstr(r.out, "fetching") == NULL, "progress is on standard error only: %s", r.out);
	proc_result_free(&r);
}

Test(resume, https_needs_the_servers_ca_named_by_SSL_CERT_FILE_or_CURL_CA_BUNDLE)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd,
		    "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 "
		    "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
		    t.path);
	cr_assert_eq(system(cmd.sb_buf), 0, "openssl could not make a certificate");
	sbuf_free(&cmd);
	start_server(true);
	char url[128];
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/range/big.bin", port);
	struct proc_result r = build_from(url, "big.bin", hash);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "[E10] package 'Big': cannot fetch ") && strstr(r.out, "certificate verification"),
		  "%s", r.out);
	proc_result_free(&r);

	char *cert = tdir_at(&t, "cert.pem");
	setenv("CURL_CA_BUNDLE", cert, 1);
	r = build_from(url, "big.bin", hash);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	expect_cached();
	proc_result_free(&r);

	/* the same with SSL_CERT_FILE (the cache emptied first) */
	unsetenv("CURL_CA_BUNDLE");
	char *cached = at_home("cache/sha256-%s", hash);
	unlink(cached);
	setenv("SSL_CERT_FILE", cert, 1);
	r = build_from(url, "big.bin", hash);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	expect_cached();
	proc_result_free(&r);
	free(cached);
	free(cert);
}
