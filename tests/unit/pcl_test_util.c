/*
 * pcl_test_util.c - see pcl_test_util.h.
 */
#include "pcl_test_util.h"

#include <string.h>

#include "base/sbuf.h"

char *pcl_check_files(const char *const *names, const char *const *srcs, size_t n)
{
	struct pcl_program *p = pcl_program_new();
	for (size_t i = 0; i < n; i++)
		pcl_program_add_source(p, names[i], srcs[i], strlen(srcs[i]));
	struct sbuf sb = SBUF_INIT;
	if (pcl_program_check(p) == 0) {
		sbuf_puts(&sb, "ok");
	} else {
		for (size_t i = 0; i < pcl_program_ndiags(p); i++)
			pcl_diag_format(pcl_program_diag(p, i), &sb);
	}
	pcl_program_free(p);
	return sbuf_detach(&sb, NULL);
}

char *pcl_check_text(const char *src)
{
	const char *name = "t.pcl";
	return pcl_check_files(&name, &src, 1);
}

struct pcl_program *pcl_checked(const char *src)
{
	struct pcl_program *p = pcl_program_new();
	pcl_program_add_source(p, "t.pcl", src, strlen(src));
	pcl_program_check(p);
	return p;
}

static void dump_value(const struct pcl_value *v, struct sbuf *sb)
{
	switch (v->v_kind) {
	case PCL_V_STR:
		sbuf_putc(sb, '"');
		for (size_t i = 0; i < v->v_str.len; i++) {
			unsigned char c = (unsigned char)v->v_str.s[i];
			if (c < 0x20 || c == '"' || c == '\\')
				sbuf_printf(sb, "\\x%02x", c);
			else
				sbuf_putc(sb, (char)c);
		}
		sbuf_putc(sb, '"');
		break;
	case PCL_V_INT: sbuf_printf(sb, "%lld", (long long)v->v_int); break;
	case PCL_V_BOOL: sbuf_puts(sb, v->v_bool ? "true" : "false"); break;
	case PCL_V_LIST:
		sbuf_putc(sb, '[');
		for (size_t i = 0; i < v->v_list.n; i++) {
			if (i)
				sbuf_putc(sb, ',');
			dump_value(v->v_list.items[i], sb);
		}
		sbuf_putc(sb, ']');
		break;
	case PCL_V_REC:
		sbuf_putc(sb, '{');
		for (size_t i = 0; i < v->v_rec.n; i++) {
			sbuf_printf(sb, "%s%s=", i ? "," : "", v->v_rec.fields[i].f_name);
			dump_value(v->v_rec.fields[i].f_value, sb);
		}
		sbuf_putc(sb, '}');
		break;
	case PCL_V_SECRET:
		sbuf_printf(sb, "secret(%s:%s)", v->v_secret.source == PCL_SECRET_ENV ? "env" : "file", v->v_secret.name);
		break;
	case PCL_V_OUT: sbuf_printf(sb, "out(%s)", v->v_out.module); break;
	case PCL_V_FMT:
		sbuf_puts(sb, "fmt(");
		for (size_t i = 0; i < v->v_str.len; i++) {
			char c = v->v_str.s[i];
			sbuf_puts(sb, c == PCL_OUT_OPEN ? "<" : c == PCL_OUT_CLOSE ? ".out>" : (char[]){c, 0});
		}
		sbuf_putc(sb, ')');
		break;
	case PCL_V_ERROR: sbuf_puts(sb, "<error>"); break;
	}
}

char *pcl_dump_program(const struct pcl_program *p)
{
	struct sbuf sb = SBUF_INIT;
	for (size_t i = 0; i < pcl_program_nmodules(p); i++) {
		const struct pcl_module *m = pcl_program_module(p, i);
		sbuf_printf(&sb, "%s %s ", pcl_kind_name(m->m_kind), m->m_name);
		dump_value(m->m_value, &sb);
		sbuf_putc(&sb, '\n');
	}
	return sbuf_detach(&sb, NULL);
}
