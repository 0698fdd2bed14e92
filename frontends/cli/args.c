/*
 * args.c - what every command's argument parsing shares: GNU getopt with
 * options and operands in any order ("--" ends the options), and errors
 * for an unknown or incomplete option that name it and suggest the nearest
 * one, as the tools operators know do.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Edits from a to b (insert, delete, replace, swap two neighbours), capped at 99. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 31 || lb > 31)
		return 99;
	size_t d[32][32];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

const char *cli_nearest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t bd = 99, wl = strlen(word);
	for (size_t i = 0; i < n; i++) {
		size_t d = distance(word, names[i]);
		/* a prefix is as good as one edit ("dep" for "deploy") */
		if (wl >= 2 && !strncmp(names[i], word, wl) && d > 1)
			d = 1;
		if (d < bd) {
			bd = d;
			best = names[i];
		}
	}
	size_t limit = wl <= 4 ? 1 : wl <= 8 ? 2 : 3;
	return bd <= limit ? best : NULL;
}

/* The option as written, without its "=value". */
static void option_word(const char *arg, char *out, size_t cap)
{
	size_t n = strcspn(arg, "=");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, arg, n);
	out[n] = '\0';
}

int cli_getopt(struct cli_ctx *cx, int argc, char **argv, const struct option *longopts, const char *name)
{
	opterr = 0;
	int c = getopt_long(argc, argv, ":h", longopts, NULL);
	if (c != '?' && c != ':')
		return c;
	const char *cmd = name ? name : argv[0];
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	char word[128];
	option_word(arg, word, sizeof(word));
	if (c == ':') {
		cli_fail(cx, EXIT_USAGE, "punix %s: option '%s' needs a value", cmd, word);
		return '?';
	}
	if (optopt && !(word[0] == '-' && word[1] == '-')) {
		cli_fail(cx, EXIT_USAGE, "punix %s: unknown option '-%c'", cmd, optopt);
		return '?';
	}
	const char *names[96];
	size_t n = 0;
	for (const struct option *o = longopts; o->name && n < 96; o++)
		names[n++] = o->name;
	const char *near = cli_nearest(word + 2, names, n);
	if (near)
		cli_fail(cx, EXIT_USAGE, "punix %s: unknown option '%s' (did you mean '--%s'?)", cmd, word, near);
	else
		cli_fail(cx, EXIT_USAGE, "punix %s: unknown option '%s' (see 'punix %s --help')", cmd, word, cmd);
	return '?';
}
