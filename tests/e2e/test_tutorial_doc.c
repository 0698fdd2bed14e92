/*
 * test_tutorial_doc.c - docs/tutorial.md, run as written, so that a stale
 * tutorial fails CI.
 *
 * Every line that starts with "$ " inside a ```sh block of the tutorial is a
 * command; the lines after it, up to the next command or the end of the
 * block, are its documented output (stdout and stderr together, in order).
 * Each command runs verbatim, in order, with `sh -c`:
 *   - in the source tree (the tutorial is read from its top, where
 *     examples/ is), standard input /dev/null;
 *   - PUNIX_HOME set to a scratch directory that does not exist yet (the
 *     tutorial asks for one), under a fresh /tmp directory of mode 0755
 *     (as root, builds run as nobody, who must reach the store);
 *   - PATH starting with a directory whose `punix` is a link to the build's
 *     punix (PUNIX_BIN).
 * Each command runs in its own shell, so the tutorial's `export` lines do
 * nothing here; the value the tutorial exports as PUNIX_HOME (its
 * "documented home") is read from its `$ export PUNIX_HOME=...` line, and
 * every occurrence of the scratch home in an actual output is replaced by
 * it before comparing.
 *
 * Every command must exit 0, and its output must equal the documented one,
 * except for two placeholders, which the tutorial explains and which match
 * as wildcards within one line:
 *   <hash>  one or more of [0-9a-z]   (a store path's hash)
 *   <time>  one or more of [0-9TZ:-]  (a UTC timestamp)
 * A failure names the tutorial's line, the command, and both outputs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run_util.h"

#define TUTORIAL      PUNIX_SOURCE_DIR "/docs/tutorial.md"
#define CMD_TIMEOUT_S 120

/* One command of the tutorial and what it is documented to print. */
struct step {
	int line;       /* of the "$ " line in the tutorial, from 1 */
	char *cmd;      /* without the "$ " */
	char *expected; /* every output line, each ending in '\n'; "" when none */
};

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
	size_t cap = 1 << 16, len = 0;
	char *s = malloc(cap);
	cr_assert_not_null(s);
	size_t n;
	while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len - 1 == 0) {
			cap *= 2;
			s = realloc(s, cap);
			cr_assert_not_null(s);
		}
	}
	fclose(f);
	s[len] = '\0';
	return s;
}

static void append(char **s, size_t *len, const char *data, size_t n)
{
	*s = realloc(*s, *len + n + 1);
	cr_assert_not_null(*s);
	memcpy(*s + *len, data, n);
	*len += n;
	(*s)[*len] = '\0';
}

/* The commands of the ```sh blocks of text, in order; *count of them. */
static struct step *parse_steps(const char *text, size_t *count)
{
	struct step *steps = NULL;
	size_t n = 0, exp_len = 0;
	bool in_sh = false, in_other = false;
	int line = 0;
	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		line++;
		bool fence = len >= 3 && strncmp(p, "```", 3) == 0;
		if (fence) {
			if (in_sh || in_other) {
				in_sh = in_other = false;
			} else if (len == 5 && strncmp(p, "```sh", 5) == 0) {
				in_sh = true;
			} else {
				in_other = true;
			}
		} else if (in_sh && len >= 2 && strncmp(p, "$ ", 2) == 0) {
			steps = realloc(steps, (n + 1) * sizeof(*steps));
			cr_assert_not_null(steps);
			steps[n].line = line;
			steps[n].cmd = strndup(p + 2, len - 2);
			steps[n].expected = strdup("");
			cr_assert(steps[n].cmd && steps[n].expected);
			exp_len = 0;
			n++;
		} else if (in_sh) {
			cr_assert_gt(n, 0, "%s:%d: output before any \"$ \" command in a ```sh block", TUTORIAL, line);
			append(&steps[n - 1].expected, &exp_len, p, len);
			append(&steps[n - 1].expected, &exp_len, "\n", 1);
		}
		p += len + (eol ? 1 : 0);
	}
	cr_assert(!in_sh && !in_other, "%s: a ``` block is not closed", TUTORIAL);
	*count = n;
	return steps;
}

/* Does the placeholder's class hold c? */
static bool in_class(const char *placeholder, char c)
{
	if (strcmp(placeholder, "<hash>") == 0)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
	return (c >= '0' && c <= '9') || c == 'T' || c == 'Z' || c == ':' || c == '-';
}

/* The placeholder that starts at p, or NULL. */
static const char *placeholder_at(const char *p)
{
	static const char *const names[] = {"<hash>", "<time>"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(p, names[i], strlen(names[i])) == 0)
			return names[i];
	return NULL;
}

/* Does actual match the documented output want (placeholders as wildcards)? */
static bool matches(const char *want, const char *actual)
{
	while (*want) {
		const char *ph = placeholder_at(want);
		if (ph) {
			const char *rest = want + strlen(ph);
			/* one or more characters of its class, then the rest matches */
			size_t k = 0;
			while (actual[k] && in_class(ph, actual[k]))
				k++;
			for (; k >= 1; k--)
				if (matches(rest, actual + k))
					return true;
			return false;
		}
		if (*want != *actual)
			return false;
		want++;
		actual++;
	}
	return *actual == '\0';
}

/* s with every occurrence of from replaced by to, malloc'd. */
static char *replace_all(const char *s, const char *from, const char *to)
{
	char *out = strdup("");
	size_t len = 0, flen = strlen(from);
	cr_assert_not_null(out);
	for (const char *hit; (hit = strstr(s, from)) != NULL; s = hit + flen) {
		append(&out, &len, s, (size_t)(hit - s));
		append(&out, &len, to, strlen(to));
	}
	append(&out, &len, s, strlen(s));
	return out;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Runs `sh -c cmd` in cwd with our environment; returns its exit status (or
 * 128+signal), and in *out all it wrote to stdout and stderr together.
 */
static int run_sh(const char *cmd, const char *cwd, char **out)
{
	int fds[2];
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null_fd = open("/dev/null", O_RDONLY);
		if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0 || chdir(cwd) < 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	*out = strdup("");
	cr_assert_not_null(*out);
	size_t len = 0;
	double deadline = now() + CMD_TIMEOUT_S;
	for (;;) {
		double left = deadline - now();
		if (left <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		struct pollfd pfd = {fds[0], POLLIN, 0};
		int r = poll(&pfd, 1, left > 0.1 ? 100 : 1);
		cr_assert(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
		if (r <= 0)
			continue;
		char chunk[65536];
		ssize_t got = read(fds[0], chunk, sizeof(chunk));
		if (got > 0)
			append(out, &len, chunk, (size_t)got);
		else if (got == 0 || errno != EINTR)
			break;
	}
	close(fds[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		cr_assert_eq(errno, EINTR);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(tutorial_doc, every_command_prints_what_the_tutorial_says, .timeout = 600)
{
	char *text = read_all(TUTORIAL);
	size_t n;
	struct step *steps = parse_steps(text, &n);

	/* The documented home, and enough of the tutorial that a parse gone
	 * wrong cannot pass by running nothing. */
	const char *doc_home = NULL;
	bool rollback = false;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(steps[i].cmd, "export PUNIX_HOME=", 18) == 0)
			doc_home = steps[i].cmd + 18;
		if (strncmp(steps[i].cmd, "punix service rollback ", 23) == 0)
			rollback = true;
	}
	cr_assert_not_null(doc_home, "%s: no \"$ export PUNIX_HOME=...\" command", TUTORIAL);
	cr_assert(doc_home[0] == '/' && !strpbrk(doc_home, " \"'$"),
	          "%s: the exported PUNIX_HOME must be a plain absolute path, got %s", TUTORIAL, doc_home);
	cr_assert(n >= 10 && rollback, "%s: only %zu command(s) found, or no rollback among them", TUTORIAL, n);

	struct tmpdir t;
	tmpdir_make(&t);
	char *home = tmpdir_at(&t, "punix-tutorial"), *bin = tmpdir_at(&t, "bin");
	tmpdir_mkdir(&t, "bin");
	char *link = tmpdir_at(&t, "bin/punix");
	cr_assert_eq(symlink(PUNIX_BIN, link), 0, "symlink %s: %s", link, strerror(errno));
	const char *old_path = getenv("PATH");
	size_t plen = strlen(bin) + 1 + strlen(old_path ? old_path : "/usr/bin:/bin") + 1;
	char *path = malloc(plen);
	cr_assert_not_null(path);
	snprintf(path, plen, "%s:%s", bin, old_path ? old_path : "/usr/bin:/bin");
	cr_assert_eq(setenv("PATH", path, 1), 0);
	cr_assert_eq(setenv("PUNIX_HOME", home, 1), 0);

	/* Stops at the first command that fails (the later ones build on it),
	 * and then still cleans up. */
	for (size_t i = 0; i < n; i++) {
		char *raw;
		int status = run_sh(steps[i].cmd, PUNIX_SOURCE_DIR, &raw);
		char *actual = replace_all(raw, home, doc_home);
		bool ok = status == 0 && matches(steps[i].expected, actual);
		cr_expect(ok, "%s:%d: `%s` %s\n--- documented output:\n%s--- actual output (exit status %d):\n%s",
		          TUTORIAL, steps[i].line, steps[i].cmd,
		          status ? "failed" : "printed something else than documented", steps[i].expected, status,
		          actual);
		free(actual);
		free(raw);
		if (!ok)
			break;
	}

	for (size_t i = 0; i < n; i++) {
		free(steps[i].cmd);
		free(steps[i].expected);
	}
	free(steps);
	free(text);
	free(path);
	free(link);
	free(bin);
	free(home);
	tmpdir_remove(&t);
}

/* The placeholders match what they stand for, and nothing more. */
Test(tutorial_doc, placeholders)
{
	cr_expect(matches("a <hash>-hello\n", "a nvhvbmns1iqqx846rmdkndg29984nbsz-hello\n"));
	cr_expect(matches("  gen-001  <time>  2\n", "  gen-001  2026-12-03T12:26:51Z  2\n"));
	cr_expect(!matches("a <hash>-hello\n", "a -hello\n"));
	cr_expect(!matches("<time>\n", "12:00 x\n"));
	cr_expect(!matches("<hash>\n", "abc\ndef\n"));
	cr_expect(!matches("x\n", "x\ny\n"));
	cr_expect(matches("", ""));
}
