/*
 * progress.c - what a long command is doing, on standard error
 * (docs/cli.md, "Progress"): its step and "N of M" of what the step
 * counts, with the bytes a push has sent; while a url source downloads,
 * its bytes ("build: fetching hello-2.12.tar.gz: 1.2 MiB of 3.4 MiB").
 *
 * Shown when standard error is a terminal and the command prints no JSON,
 * or whenever PUNIX_PROGRESS=1 (PUNIX_PROGRESS=0: never). On a terminal
 * (not TERM=dumb, no NO_COLOR) it is one line rewritten in place and
 * cleared at the end; elsewhere a plain line per update. Never on
 * standard output.
 *
 * The engine calls in from the thread a step runs on (engine.h:
 * op_request.count), so the state is behind a mutex; it is the command's
 * (no process globals). Counts are shown at most ten times a second, but
 * a step's start and a count's first and last always.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define PROGRESS_EVERY_MS 100

void cli_progress_init(struct cli_progress *p, bool json)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	const char *force = getenv("PUNIX_PROGRESS"), *term = getenv("TERM");
	bool tty = isatty(2);
	if (force && !strcmp(force, "0"))
		p->on = false;
	else if (force && !strcmp(force, "1"))
		p->on = true;
	else
		p->on = tty && !json;
	/* escapes only where a terminal understands them and NO_COLOR does not ask for none (as fleet's lines) */
	const char *nc = getenv("NO_COLOR");
	p->redraw = p->on && tty && !(term && !strcmp(term, "dumb")) && !(nc && *nc);
	p->width = 80;
	struct winsize ws;
	if (p->redraw && ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		p->width = ws.ws_col;
}

void cli_progress_source(struct cli_progress_src *s, struct cli_progress *p, const char *label)
{
	memset(s, 0, sizeof(*s));
	s->p = p;
	s->label = label;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void human_bytes(char *out, size_t n, uint64_t b)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%llu B", (unsigned long long)b);
	else
		snprintf(out, n, "%.1f %s", v, units[u]);
}

/* With p->mu held: the line shown now, replacing the last (terminal) or after it. */
static void show(struct cli_progress *p, const char *line)
{
	p->last_ms = now_ms();
	if (!p->redraw) {
		fprintf(stderr, "%s\n", line);
		return;
	}
	/* one row: a line wider than the terminal would wrap, and \r reach only its last row */
	int w = p->width > 1 ? p->width - 1 : 1;
	fprintf(stderr, "\r\033[K%.*s", w, line);
	fflush(stderr);
	p->drawn = true;
}

void cli_progress_step(void *arg, const char *step, uint64_t op_id)
{
	(void)op_id;
	struct cli_progress_src *s = arg;
	struct cli_progress *p = s->p;
	if (!p->on)
		return;
	pthread_mutex_lock(&p->mu);
	s->step = step;
	char line[256];
	snprintf(line, sizeof(line), "%s: %s", s->label, step);
	show(p, line);
	pthread_mutex_unlock(&p->mu);
}

/* "LABEL: [STEP: ]fetching NAME: 1.2 MiB of 3.4 MiB" (of ... while the size is not known) */
static void count_bytes(struct cli_progress_src *s, const char *what, uint64_t done, uint64_t total)
{
	struct cli_progress *p = s->p;
	bool last = total && done >= total;
	if (!(done == 0 || last || now_ms() - p->last_ms >= PROGRESS_EVERY_MS))
		return;
	char line[512], d[24], t[32] = "";
	human_bytes(d, sizeof(d), done);
	if (total) {
		char h[24];
		human_bytes(h, sizeof(h), total);
		snprintf(t, sizeof(t), " of %s", h);
	}
	snprintf(line, sizeof(line), "%s: %s%s%s: %s%s", s->label, s->step ? s->step : "", s->step ? ": " : "", what, d,
		 t);
	show(p, line);
}

void cli_progress_count(void *arg, const char *what, uint64_t done, uint64_t total, uint64_t bytes)
{
	struct cli_progress_src *s = arg;
	struct cli_progress *p = s->p;
	if (!p->on)
		return;
	pthread_mutex_lock(&p->mu);
	if (!strncmp(what, OP_COUNT_FETCHING, strlen(OP_COUNT_FETCHING))) {
		count_bytes(s, what, done, total); /* a download's bytes (engine.h: op_request.count) */
		pthread_mutex_unlock(&p->mu);
		return;
	}
	if (done == 0 || done >= total || now_ms() - p->last_ms >= PROGRESS_EVERY_MS) {
		char line[256], b[32] = "";
		if (bytes) {
			char h[24];
			human_bytes(h, sizeof(h), bytes);
			snprintf(b, sizeof(b), ", %s", h);
		}
		snprintf(line, sizeof(line), "%s: %s%s%llu of %llu %s%s", s->label, s->step ? s->step : "",
			 s->step ? ": " : "", (unsigned long long)done, (unsigned long long)total, what, b);
		show(p, line);
	}
	pthread_mutex_unlock(&p->mu);
}

void cli_progress_clear(struct cli_progress *p)
{
	if (!p->on)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->drawn)
		fputs("\r\033[K", stderr);
	fflush(stderr);
	p->drawn = false;
	pthread_mutex_unlock(&p->mu);
}

void cli_progress_end(struct cli_progress *p)
{
	cli_progress_clear(p);
	pthread_mutex_destroy(&p->mu);
}
