/*
 * test_unpack.c - url sources that are archives (docs/building.md, "The
 * download cache"): made now with tar (gzip, xz, zstd) and Python's
 * zipfile, served by Python's http.server on loopback as test_fetch.c
 * does, and unpacked into the build's src/ with their one top directory
 * stripped, executable bits kept; an archive with two top entries as it
 * is. Hostile archives, made with Python's tarfile and zipfile, are refused
 * with [E10] naming the archive and the entry, and nothing is written
 * outside the build directory (which is removed).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
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

static const char server_py[] = "import http.server, sys, os\n"
				"os.chdir(sys.argv[1])\n"
				"class H(http.server.SimpleHTTPRequestHandler):\n"
				"    def log_message(self, *a): pass\n"
				"s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
				"print(s.server_address[1], flush=True)\n"
				"s.serve_forever()\n";

/*
 * mk.py WWW OUTSIDE [big]: the zip of tree/, the hostile archives (each
 * evil-<case>.tar.gz or .zip, trying to reach OUTSIDE), and with "big" an
 * archive of more entries than the limit.
 */
static const char mk_py[] =
	"import io, os, sys, tarfile, zipfile, zlib\n"
	"www, outside = sys.argv[1], sys.argv[2]\n"
	"def zinfo(name, mode):\n"
	"    i = zipfile.ZipInfo(name); i.external_attr = mode << 16; return i\n"
	"with zipfile.ZipFile(os.path.join(www, 'pkg.zip'), 'w', zipfile.ZIP_DEFLATED) as z:\n"
	"    for root, dirs, files in sorted(os.walk('tree')):\n"
	"        rel = os.path.relpath(root, 'tree')\n"
	"        if rel != '.': z.writestr(zinfo(rel + '/', 0o40755), b'')\n"
	"        for f in sorted(files):\n"
	"            p = os.path.join(root, f); n = os.path.relpath(p, 'tree')\n"
	"            if os.path.islink(p): z.writestr(zinfo(n, 0o120777), os.readlink(p))\n"
	"            else: z.writestr(zinfo(n, os.lstat(p).st_mode), open(p, 'rb').read())\n"
	"def tar(name, entries):\n"
	"    b = io.BytesIO()\n"
	"    with tarfile.open(fileobj=b, mode='w:gz', format=tarfile.GNU_FORMAT) as t:\n"
	"        for e in entries:\n"
	"            ti = tarfile.TarInfo(e[0]); ti.type = e[1]; data = b''\n"
	"            if e[1] in (tarfile.SYMTYPE, tarfile.LNKTYPE): ti.linkname = e[2]\n"
	"            elif e[1] == tarfile.REGTYPE: data = e[2]; ti.size = len(data); ti.mode = 0o644\n"
	"            t.addfile(ti, io.BytesIO(data))\n"
	"    open(os.path.join(www, 'evil-' + name + '.tar.gz'), 'wb').write(b.getvalue())\n"
	"R, D, L, H = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE\n"
	"ok = ('top/ok.txt', R, b'ok\\n')\n"
	"tar('absolute', [ok, (outside, R, b'x\\n')])\n"
	"tar('dotdot', [ok, ('top/../../escaped', R, b'x\\n')])\n"
	"tar('empty', [ok, ('', R, b'x\\n')])\n"
	"tar('control', [ok, ('top/a\\x1bb', R, b'x\\n')])\n"
	"tar('hardlink', [ok, ('top/hl', H, 'top/ok.txt')])\n"
	"tar('device', [ok, ('top/dev', tarfile.CHRTYPE, None)])\n"
	"tar('fifo', [ok, ('top/fifo', tarfile.FIFOTYPE, None)])\n"
	"tar('abslink', [ok, ('top/l', L, outside)])\n"
	"tar('uplink', [ok, ('top/l', L, '../escaped')])\n"
	"tar('through', [ok, ('top/l', L, '.'), ('top/l/x.txt', R, b'x\\n')])\n"
	"tar('twice', [ok, ('top/ok.txt', R, b'again\\n')])\n"
	"tar('overlink', [ok, ('top/l', L, 'ok.txt'), ('top/l', R, b'x\\n')])\n"
	"with zipfile.ZipFile(os.path.join(www, 'evil-zipdotdot.zip'), 'w') as z:\n"
	"    z.writestr(zinfo('top/ok.txt', 0o100644), b'ok\\n')\n"
	"    z.writestr(zinfo('top/../../escaped', 0o100644), b'x\\n')\n"
	"with zipfile.ZipFile(os.path.join(www, 'evil-zipnul.zip'), 'w') as z:\n"
	"    z.writestr(zinfo('top/ok.txt', 0o100644), b'ok\\n')\n"
	"    i = zinfo('top/nXul', 0o100644); i.filename = 'top/n\\x00ul'\n"
	"    z.writestr(i, b'x\\n')\n"
	"with zipfile.ZipFile(os.path.join(www, 'evil-zipsocket.zip'), 'w') as z:\n"
	"    z.writestr(zinfo('top/ok.txt', 0o100644), b'ok\\n')\n"
	"    z.writestr(zinfo('top/sock', 0o140755), b'')\n"
	"big = tarfile.TarInfo('top/big'); big.size = 17 << 30\n"
	"z = zlib.compressobj(1, zlib.DEFLATED, 31)\n"
	"open(os.path.join(www, 'evil-huge.tar.gz'), 'wb').write(\n"
	"    z.compress(big.tobuf(tarfile.GNU_FORMAT) + bytes(1024)) + z.flush())\n"
	"if len(sys.argv) > 3:\n"
	"    one = tarfile.TarInfo('top/f').tobuf(tarfile.GNU_FORMAT)\n"
	"    z = zlib.compressobj(1, zlib.DEFLATED, 31)\n"
	"    with open(os.path.join(www, 'evil-many.tar.gz'), 'wb') as f:\n"
	"        chunk = one * 4096\n"
	"        for _ in range(1000001 // 4096 + 1): f.write(z.compress(chunk))\n"
	"        f.write(z.compress(bytes(1024)) + z.flush())\n";

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	int st = system(sb.sb_buf);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %d", sb.sb_buf, st);
	sbuf_free(&sb);
}

static void start_server(void)
{
	tdir_write(&t, "server.py", server_py);
	char *script = tdir_at(&t, "server.py"), *www = tdir_at(&t, "www");
	const char *argv[] = {script, www, NULL};
	server = test_server_start(argv, &port);
	free(script);
	free(www);
}

static bool have_zstd(void)
{
	return system("command -v zstd >/dev/null 2>&1") == 0;
}

/* tree/pkg-1.0/{hello.txt, bin/run.sh (executable), link -> hello.txt}, archived in each format into www/. */
static void make_archives(bool big)
{
	tdir_write(&t, "tree/pkg-1.0/hello.txt", "hello\n");
	tdir_write(&t, "tree/pkg-1.0/bin/run.sh", "#!/bin/sh\necho run\n");
	tdir_write(&t, "two/a.txt", "a\n");
	tdir_write(&t, "two/b.txt", "b\n");
	tdir_write(&t, "www/.keep", "");
	sh("cd %s/tree && chmod 755 pkg-1.0/bin/run.sh && chmod 600 pkg-1.0/hello.txt && ln -s hello.txt pkg-1.0/link"
	   " && tar czf ../www/pkg.tar.gz pkg-1.0 && tar cJf ../www/pkg.tar.xz pkg-1.0"
	   " && cp ../www/pkg.tar.gz ../www/pkg.tgz && cp ../www/pkg.tar.xz ../www/pkg.txz"
	   " && cd ../two && tar czf ../www/two.tar.gz a.txt b.txt",
	   t.path);
	if (have_zstd())
		sh("cd %s/tree && tar --zstd -cf ../www/pkg.tar.zst pkg-1.0 && cp ../www/pkg.tar.zst ../www/pkg.tzst",
		   t.path);
	tdir_write(&t, "mk.py", mk_py);
	sh("cd %s && python3 mk.py www %s/escaped%s", t.path, t.path, big ? " big" : "");
}

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	make_archives(false);
	start_server();
}

static void teardown(void)
{
	test_server_stop(&server);
	free(home);
	tdir_free(&t);
}

/* The SHA-256 of www/<name>, in hex. */
static void hash_of(const char *name, char hex[65])
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/www/%s", t.path, name);
	FILE *f = fopen(sb.sb_buf, "rb");
	cr_assert_not_null(f, "%s", sb.sb_buf);
	struct sbuf data = SBUF_INIT;
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sbuf_append(&data, buf, n);
	fclose(f);
	unsigned char h[32];
	store_sha256(data.sb_buf, data.sb_len, h);
	store_hex(h, 32, hex);
	sbuf_free(&sb);
	sbuf_free(&data);
}

/* Builds module M from http://.../<file> with command; the result. */
static struct proc_result build(const char *file, const char *command)
{
	char hex[65];
	hash_of(file, hex);
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p,
		    "module M {\n  pname = \"m\"\n  version = \"1\"\n  recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"%s\" }\n"
		    "  source = { type = \"url\" url = \"http://127.0.0.1:%d/%s\" hash = \"%s\" hashType = \"sha256\" }\n}\n",
		    command, port, file, hex);
	tdir_write(&t, "m.pcl", p.sb_buf);
	char *prog = tdir_at(&t, "m.pcl");
	const char *args[] = {"build", prog, NULL};
	struct proc_result r = punix_run(home, args);
	free(prog);
	sbuf_free(&p);
	return r;
}

static char *path_of(const char *out)
{
	const char *p = strstr(out, "\tM\t");
	cr_assert_not_null(p, "no line for M in:\n%s", out);
	p += 3;
	return strndup(p, strcspn(p, "\t\n"));
}

static char *read_in(const char *dir, const char *name)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s", dir, name);
	FILE *f = fopen(sb.sb_buf, "r");
	sbuf_free(&sb);
	if (!f)
		return NULL;
	char buf[512] = "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	return strndup(buf, n);
}

static int count_entries(const char *rel)
{
	char *dir = tdir_at(&t, rel);
	DIR *d = opendir(dir);
	free(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static const char see[] = "cat hello.txt link > $OUTPUT/got && ls -A > $OUTPUT/listing"
			  " && stat -c %a bin/run.sh hello.txt bin > $OUTPUT/modes";

static void expect_unpacked(const char *file)
{
	struct proc_result r = build(file, see);
	cr_assert_eq(r.status, 0, "%s: %s%s", file, r.out, r.err);
	char *path = path_of(r.out);
	char *got = read_in(path, "got"), *listing = read_in(path, "listing"), *modes = read_in(path, "modes");
	cr_expect_str_eq(got, "hello\nhello\n", "%s: the files and the symlink are there", file);
	cr_expect_str_eq(listing, "bin\nhello.txt\nlink\n", "%s: pkg-1.0/ is stripped", file);
	cr_expect_str_eq(modes, "755\n644\n755\n", "%s: executables 0755, files 0644, directories 0755", file);
	free(got);
	free(listing);
	free(modes);
	free(path);
	proc_result_free(&r);
}

TestSuite(unpack, .init = setup, .fini = teardown);

Test(unpack, each_format_is_unpacked_with_its_top_directory_stripped)
{
	const char *files[] = {"pkg.tar.gz", "pkg.tgz", "pkg.tar.xz", "pkg.txz", "pkg.zip"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		expect_unpacked(files[i]);
	if (!have_zstd()) {
		cr_log_warn("no zstd program: the .tar.zst and .tzst cases were skipped");
		return;
	}
	expect_unpacked("pkg.tar.zst");
	expect_unpacked("pkg.tzst");
}

Test(unpack, two_top_entries_are_kept_as_they_are)
{
	struct proc_result r = build("two.tar.gz", "cat a.txt b.txt > $OUTPUT/got && ls -A > $OUTPUT/listing");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *path = path_of(r.out);
	char *got = read_in(path, "got"), *listing = read_in(path, "listing");
	cr_expect_str_eq(got, "a\nb\n");
	cr_expect_str_eq(listing, "a.txt\nb.txt\n");
	free(got);
	free(listing);
	free(path);
	proc_result_free(&r);
}

Test(unpack, a_file_that_is_not_an_archive_is_E10)
{
	tdir_write(&t, "www/junk.tar.gz", "this is not gzip\n");
	struct proc_result r = build("junk.tar.gz", "true");
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "[E10] package 'M': cannot unpack junk.tar.gz: ") != NULL, "%s", r.out);
	cr_expect_eq(count_entries("home/store/.build"), 0, "the build directory was removed");
	proc_result_free(&r);
}

static const struct {
	const char *file;
	const char *says; /* what the error must hold after "cannot unpack <file>: " */
} hostile[] = {
	{"evil-absolute.tar.gz", "escaped': its path is absolute"},
	{"evil-dotdot.tar.gz", "entry 'top/../../escaped': its path has a '..' component"},
	{"evil-empty.tar.gz", "its name is empty"},
	{"evil-control.tar.gz", "entry 'top/a\\x1bb': its name holds a control character"},
	{"evil-hardlink.tar.gz", "entry 'top/hl': it is a hard link"},
	{"evil-device.tar.gz", "entry 'top/dev': it is a device"},
	{"evil-fifo.tar.gz", "entry 'top/fifo': it is a FIFO"},
	{"evil-abslink.tar.gz", "entry 'top/l': it is a symlink whose target is absolute"},
	{"evil-uplink.tar.gz", "entry 'top/l': it is a symlink whose target leads out of src/ ('../escaped')"},
	{"evil-through.tar.gz", "entry 'top/l/x.txt': its path passes through 'l', a symlink the archive made"},
	{"evil-twice.tar.gz", "entry 'top/ok.txt': cannot create src/ok.txt: an entry of that name was already made"},
	{"evil-overlink.tar.gz", "entry 'top/l': cannot create src/l: an entry of that name was already made"},
	{"evil-zipdotdot.zip", "entry 'top/../../escaped': its path has a '..' component"},
	{"evil-zipsocket.zip", "entry 'top/sock': it is a socket"},
	{"evil-zipnul.zip", "entry 'top/n\\x00ul': its name holds a NUL byte"},
	{"evil-huge.tar.gz", "its files hold more than 17179869184 bytes (16 GiB), the limit, at entry 'top/big'"},
};

Test(unpack, hostile_archives_are_refused_naming_the_entry_and_nothing_escapes)
{
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct proc_result r = build(hostile[i].file, "touch $OUTPUT/built");
		struct sbuf want = SBUF_INIT;
		sbuf_printf(&want, "[E10] package 'M': cannot unpack %s: ", hostile[i].file);
		cr_expect_eq(r.status, 3, "%s: %s%s", hostile[i].file, r.out, r.err);
		const char *at = strstr(r.out, want.sb_buf);
		cr_expect(at && strstr(at, hostile[i].says), "%s: wanted \"%s\" in:\n%s", hostile[i].file,
			  hostile[i].says, r.out);
		cr_expect_eq(count_entries("home/store/.build"), 0, "%s: the build directory was removed",
			     hostile[i].file);
		char *escaped = tdir_at(&t, "escaped");
		struct stat st;
		cr_expect_neq(lstat(escaped, &st), 0, "%s: something was written outside", hostile[i].file);
		free(escaped);
		sbuf_free(&want);
		proc_result_free(&r);
	}
}

Test(unpack, more_entries_than_the_limit_are_refused_before_any_is_written)
{
	sh("cd %s && python3 mk.py www %s/escaped big", t.path, t.path);
	struct proc_result r = build("evil-many.tar.gz", "touch $OUTPUT/built");
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "[E10] package 'M': cannot unpack evil-many.tar.gz: it has more than 1000000 "
				"entries, the limit") != NULL,
		  "%s", r.out);
	cr_expect_eq(count_entries("home/store/.build"), 0);
	proc_result_free(&r);
}
