/*
 * systemd.c - rendering units (see systemd.h).
 *
 *   [Unit]
 *   Description=Punix stack <Stack>: <name>
 *   After=<dep>.service          one line per dependsOn, sorted
 *   Requires=<dep>.service
 *
 *   [Service]
 *   ExecStart=<package path>/bin/<binary> <args, quoted for systemd>
 *   Type=simple
 *   Restart=on-failure
 *   Environment="KEY=value"      one per literal environment entry, sorted
 *
 *   [Install]
 *   WantedBy=multi-user.target
 *
 * Inputs arrive sorted, so permuted PCL renders byte-identical units.
 */
#include "systemd.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../base/vec.h"
#include "../base/xalloc.h"

/* systemd expands %specifiers everywhere in a unit; a literal % is %%. */
static void put_escaped(struct sbuf *out, const char *s, bool in_quotes)
{
	for (; *s; s++) {
		if (*s == '%')
			sbuf_puts(out, "%%");
		else if (in_quotes && (*s == '"' || *s == '\\'))
			sbuf_printf(out, "\\%c", *s);
		else
			sbuf_putc(out, *s);
	}
}

/* One ExecStart argument: bare when safe, else double-quoted. $ is $$. */
static void put_arg(struct sbuf *out, const char *a)
{
	bool quote = !*a || strpbrk(a, " \t\"'\\;") != NULL;
	struct sbuf tmp = SBUF_INIT;
	for (const char *p = a; *p; p++) {
		if (*p == '$')
			sbuf_puts(&tmp, "$$");
		else
			sbuf_putc(&tmp, *p);
	}
	if (quote)
		sbuf_putc(out, '"');
	put_escaped(out, sbuf_str(&tmp), quote);
	if (quote)
		sbuf_putc(out, '"');
	sbuf_free(&tmp);
}

void systemd_unit(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path, struct sbuf *out)
{
	sbuf_puts(out, "[Unit]\nDescription=Punix stack ");
	put_escaped(out, st->name, false);
	sbuf_puts(out, ": ");
	put_escaped(out, s->name, false);
	sbuf_putc(out, '\n');
	for (size_t i = 0; i < s->ndepends_on; i++)
		sbuf_printf(out, "After=%s.service\n", s->depends_on[i]);
	for (size_t i = 0; i < s->ndepends_on; i++)
		sbuf_printf(out, "Requires=%s.service\n", s->depends_on[i]);
	sbuf_puts(out, "\n[Service]\nExecStart=");
	put_escaped(out, pkg_path, false);
	sbuf_puts(out, "/bin/");
	put_escaped(out, s->binary, false);
	for (size_t i = 0; i < s->nargs; i++) {
		sbuf_putc(out, ' ');
		put_arg(out, s->args[i]);
	}
	sbuf_puts(out, "\nType=simple\nRestart=on-failure\n");
	for (size_t i = 0; i < s->nenv; i++) {
		sbuf_puts(out, "Environment=\"");
		put_escaped(out, s->env[i].key, true);
		sbuf_putc(out, '=');
		put_escaped(out, s->env[i].value, true);
		sbuf_puts(out, "\"\n");
	}
	sbuf_puts(out, "\n[Install]\nWantedBy=multi-user.target\n");
}

static int file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rendered_file *)a)->path, ((const struct rendered_file *)b)->path);
}

int backend_render(const struct stack_desc *st, const char *unit_dir, pkg_path_fn pkg_path, void *arg,
		   struct rendered *out, struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(st->backend, "systemd") != 0) {
		sbuf_printf(err, "stack '%s': unsupported backend \"%s\"; supported: systemd", st->name, st->backend);
		return -1;
	}
	for (size_t i = 0; i < st->nservices; i++)
		for (size_t k = 0; k < st->services[i].nenv; k++)
			if (st->services[i].env[k].kind != ENV_LITERAL) {
				sbuf_printf(err,
					    "stack '%s': service '%s' takes %s from a secret; deploying secrets is not "
					    "supported yet",
					    st->name, st->services[i].name, st->services[i].env[k].key);
				return -1;
			}
	VEC(struct rendered_file) v = {0};
	for (size_t i = 0; i < st->nfiles; i++) {
		struct rendered_file f = {xstrdup(st->files[i].path), xstrndup(st->files[i].content, st->files[i].len),
					  st->files[i].len, 0644};
		VEC_PUSH(&v, f);
	}
	for (size_t i = 0; i < st->nservices; i++) {
		struct sbuf unit = SBUF_INIT, path = SBUF_INIT;
		systemd_unit(st, &st->services[i], pkg_path(arg, st->services[i].package), &unit);
		sbuf_printf(&path, "%s/%s.service", unit_dir, st->services[i].name);
		struct rendered_file f = {0};
		f.path = sbuf_detach(&path, NULL);
		f.content = sbuf_detach(&unit, &f.len);
		f.mode = 0644;
		VEC_PUSH(&v, f);
	}
	out->files = v.v;
	out->n = v.n;
	if (out->n > 1)
		qsort(out->files, out->n, sizeof(out->files[0]), file_cmp);
	for (size_t i = 1; i < out->n; i++) {
		if (strcmp(out->files[i - 1].path, out->files[i].path) == 0) {
			sbuf_printf(err, "stack '%s': the config file %s is also the unit file of a service", st->name,
				    out->files[i].path);
			rendered_free(out);
			return -1;
		}
	}
	return 0;
}

void rendered_free(struct rendered *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->files[i].path);
		free(r->files[i].content);
	}
	free(r->files);
	memset(r, 0, sizeof(*r));
}
