/*
 * output.c - how every command reports: errors as "error: ..." on standard
 * error, and with --json exactly one JSON object on standard output,
 * {"ok": true, ...} or {"ok": false, "exit", "error": {...}} (docs/cli.md,
 * "JSON"). The error the object carries is the first one the command
 * reported, recorded in the run's struct cli_ctx.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/sbuf.h"
#include "../../base/utf8.h"
#include "../../base/xalloc.h"
#include "cli.h"

static void record(struct cli_ctx *cx, const char *fmt, va_list ap)
{
	if (!cx || cx->error)
		return;
	struct sbuf sb = SBUF_INIT;
	sbuf_vprintf(&sb, fmt, ap);
	cx->error = sbuf_detach(&sb, NULL);
}

int cli_fail(struct cli_ctx *cx, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	va_start(ap, fmt);
	record(cx, fmt, ap);
	va_end(ap);
	return code;
}

void cli_note(struct cli_ctx *cx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	record(cx, fmt, ap);
	va_end(ap);
}

int cli_usage(struct cli_ctx *cx, const char *usage)
{
	fputs(usage, stderr);
	size_t n = strcspn(usage, "\n");
	cli_note(cx, "%.*s", (int)n, usage);
	return EXIT_USAGE;
}

const char *cli_reason(const char *s, const char *fallback)
{
	return s && *s ? s : fallback;
}

json_t *cli_json_text(const char *s)
{
	if (!s)
		return json_null();
	if (utf8_valid(s, strlen(s)))
		return json_string(s);
	struct sbuf sb = SBUF_INIT;
	const unsigned char *u = (const unsigned char *)s;
	while (*u) {
		uint32_t cp;
		size_t n = utf8_decode(u, strlen((const char *)u), &cp);
		if (n) {
			sbuf_append(&sb, u, n);
			u += n;
		} else {
			sbuf_puts(&sb, "\xef\xbf\xbd");
			u++;
		}
	}
	json_t *j = json_string(sbuf_str(&sb));
	sbuf_free(&sb);
	return j;
}

/* {"code": "E12" or null, "message", "file"?, "line"?}: a leading "[E12] " becomes the code. */
static json_t *error_json(const struct cli_ctx *cx, int rc)
{
	struct sbuf fallback = SBUF_INIT;
	const char *msg = cx->error;
	if (!msg || !*msg) {
		sbuf_printf(&fallback, "the command failed (exit %d) without saying why", rc);
		msg = fallback.sb_buf;
	}
	json_t *e = json_object();
	char code[16] = "";
	size_t digits = msg[0] == '[' && msg[1] == 'E' ? strspn(msg + 2, "0123456789") : 0;
	if (digits && digits < 8 && msg[2 + digits] == ']') {
		snprintf(code, sizeof(code), "E%.*s", (int)digits, msg + 2);
		msg += 3 + digits;
		while (*msg == ' ')
			msg++;
	}
	json_object_set_new(e, "code", code[0] ? json_string(code) : json_null());
	json_object_set_new(e, "message", cli_json_text(msg));
	if (cx->file) {
		json_object_set_new(e, "file", cli_json_text(cx->file));
		json_object_set_new(e, "line", json_integer(cx->line));
	}
	sbuf_free(&fallback);
	return e;
}

int cli_json_out(struct cli_ctx *cx, json_t *obj, int rc)
{
	if (!obj)
		obj = json_object();
	json_object_set_new(obj, "ok", json_boolean(rc == EXIT_OK));
	if (rc != EXIT_OK) {
		json_object_set_new(obj, "exit", json_integer(rc));
		json_object_set_new(obj, "error", error_json(cx, rc));
	} else {
		json_object_del(obj, "exit");
		json_object_del(obj, "error");
	}
	char *s = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (s)
		puts(s);
	else
		printf("{\"ok\": %s, \"exit\": %d}\n", rc == EXIT_OK ? "true" : "false", rc);
	fflush(stdout);
	free(s);
	json_decref(obj);
	cx->printed = true;
	return rc;
}

void cli_ctx_end(struct cli_ctx *cx, int rc)
{
	if (cx->json && !cx->printed && rc != EXIT_OK)
		cli_json_out(cx, json_object(), rc);
	free(cx->error);
	free(cx->file);
	cx->error = cx->file = NULL;
}
