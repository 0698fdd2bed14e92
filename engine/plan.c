/*
 * plan.c - an op's plan: the binary encoding, its decoder, the reader of
 * the JSON plans older punix wrote, and the JSON shown to people
 * (plan.h). Pure: no effects.
 */
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/xalloc.h"
#include "plan.h"

enum {
	P_SSH = 1, P_KNOWN_HOSTS, P_KEY, P_TRANSPORT_ROOT, P_DEPLOYMENTS_ROOT, P_UNIT_DIR, P_STORE_ROOT, P_STACK,
	P_ACTIVATE, P_ENABLE, P_GENERATION, P_PREVIOUS, P_DEPLOYED_AT, P_SOURCE_HASH, P_STORE_PATH, P_CONFIG_FILE,
	P_SECRET_FILE, P_ADOPT, P_SERVICES, P_DEAD, P_ROOTS, P_KEEP_SET, P_KEEP, P_PRUNE,
	P_REMOTE_PUNIX, P_FLEET, /* version 2 */
	P_SUPERVISOR_CONF,       /* version 3 */
	P_CONFIRM_TIMEOUT, P_CONFIRM_TOKEN, P_HEALTH, P_CONFIRM_NEEDED, /* version 4 */
};
enum { F_PATH = 1, F_SHA256, F_MODE, F_OWNER };

char *plan_strdup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void plan_list_add(char ***list, size_t *n, const char *s)
{
	*list = xrealloc(*list, (*n + 1) * sizeof(**list));
	(*list)[(*n)++] = xstrdup(s);
}

static void list_free(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static void files_free(struct plan_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].path);
		free(f[i].sha256);
		free(f[i].owner);
	}
	free(f);
}

void plan_free(struct op_plan *p)
{
	free(p->remote_punix);
	free(p->fleet);
	free(p->supervisor_conf);
	free(p->confirm_token);
	free(p->health);
	char **strs[] = {&p->ssh,	  &p->known_hosts, &p->key,	    &p->transport_root, &p->deployments_root,
			 &p->unit_dir,	  &p->store_root,  &p->stack,	    &p->deployed_at,	&p->source_hash,
			 &p->services};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	list_free(p->store_paths, p->npaths);
	list_free(p->adopt, p->nadopt);
	list_free(p->dead, p->ndead);
	files_free(p->config_files, p->nconfig);
	files_free(p->secret_files, p->nsecret);
	free(p->prune);
	memset(p, 0, sizeof(*p));
}

/* ---- encoding ---------------------------------------------------------------------------- */

static void put_field(struct sbuf *b, unsigned char tag, const void *v, size_t n)
{
	unsigned char h[5] = {tag, (unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
			      (unsigned char)(n >> 24)};
	sbuf_append(b, h, 5);
	sbuf_append(b, v, n);
}

static void put_str(struct sbuf *b, unsigned char tag, const char *s)
{
	if (s)
		put_field(b, tag, s, strlen(s));
}

static void put_i64(struct sbuf *b, unsigned char tag, int64_t v)
{
	unsigned char x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (unsigned char)((uint64_t)v >> (8 * i));
	put_field(b, tag, x, 8);
}

static void put_file(struct sbuf *b, unsigned char tag, const struct plan_file *f)
{
	struct sbuf in = SBUF_INIT;
	put_str(&in, F_PATH, f->path);
	put_str(&in, F_SHA256, f->sha256);
	put_i64(&in, F_MODE, f->mode);
	put_str(&in, F_OWNER, f->owner);
	put_field(b, tag, in.sb_buf, in.sb_len);
	sbuf_free(&in);
}

void plan_encode(const struct op_plan *p, unsigned char **out, size_t *len)
{
	struct sbuf b = SBUF_INIT;
	sbuf_append(&b, "PPL", 3);
	/* the lowest version that holds the plan, so a punix of version 2 reads what it could have written */
	unsigned char v = p->confirm_timeout ? 4 : p->supervisor_conf ? 3 : 2;
	sbuf_append(&b, &v, 1);
	put_str(&b, P_SSH, p->ssh);
	put_str(&b, P_KNOWN_HOSTS, p->known_hosts);
	put_str(&b, P_KEY, p->key);
	put_str(&b, P_TRANSPORT_ROOT, p->transport_root);
	put_str(&b, P_DEPLOYMENTS_ROOT, p->deployments_root);
	put_str(&b, P_UNIT_DIR, p->unit_dir);
	put_str(&b, P_STORE_ROOT, p->store_root);
	put_str(&b, P_STACK, p->stack);
	put_i64(&b, P_ACTIVATE, p->activate);
	put_i64(&b, P_ENABLE, p->enable);
	put_i64(&b, P_GENERATION, p->generation);
	put_i64(&b, P_PREVIOUS, p->previous);
	put_str(&b, P_DEPLOYED_AT, p->deployed_at);
	put_str(&b, P_SOURCE_HASH, p->source_hash);
	for (size_t i = 0; i < p->npaths; i++)
		put_str(&b, P_STORE_PATH, p->store_paths[i]);
	for (size_t i = 0; i < p->nconfig; i++)
		put_file(&b, P_CONFIG_FILE, &p->config_files[i]);
	for (size_t i = 0; i < p->nsecret; i++)
		put_file(&b, P_SECRET_FILE, &p->secret_files[i]);
	for (size_t i = 0; i < p->nadopt; i++)
		put_str(&b, P_ADOPT, p->adopt[i]);
	put_str(&b, P_SERVICES, p->services);
	for (size_t i = 0; i < p->ndead; i++)
		put_str(&b, P_DEAD, p->dead[i]);
	put_i64(&b, P_ROOTS, p->roots);
	put_i64(&b, P_KEEP_SET, p->keep_set);
	put_i64(&b, P_KEEP, p->keep);
	for (size_t i = 0; i < p->nprune; i++)
		put_i64(&b, P_PRUNE, p->prune[i]);
	put_str(&b, P_REMOTE_PUNIX, p->remote_punix);
	put_str(&b, P_FLEET, p->fleet);
	put_str(&b, P_SUPERVISOR_CONF, p->supervisor_conf);
	if (p->confirm_timeout) {
		put_i64(&b, P_CONFIRM_TIMEOUT, p->confirm_timeout);
		put_str(&b, P_CONFIRM_TOKEN, p->confirm_token);
		put_str(&b, P_HEALTH, p->health);
		put_i64(&b, P_CONFIRM_NEEDED, p->confirm_needed);
	}
	*out = (unsigned char *)sbuf_detach(&b, len);
}

/* ---- decoding ---------------------------------------------------------------------------- */

struct rd {
	const unsigned char *p;
	size_t n, at;
};

__attribute__((format(printf, 2, 3))) static int bad(struct sbuf *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sbuf_puts(err, "plan: ");
	sbuf_vprintf(err, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* The next field; 1 at the end, 0 with it, <0 if it is cut short. */
static int next_field(struct rd *r, unsigned char *tag, const unsigned char **v, size_t *n, struct sbuf *err)
{
	if (r->at == r->n)
		return 1;
	if (r->n - r->at < 5)
		return bad(err, "a field header is cut short at byte %zu", r->at);
	const unsigned char *h = r->p + r->at;
	size_t len = (size_t)h[1] | (size_t)h[2] << 8 | (size_t)h[3] << 16 | (size_t)h[4] << 24;
	if (len > r->n - r->at - 5)
		return bad(err, "field %u claims %zu bytes past the end", h[0], len);
	*tag = h[0];
	*v = h + 5;
	*n = len;
	r->at += 5 + len;
	return 0;
}

static int get_str(unsigned char tag, const unsigned char *v, size_t n, char **out, struct sbuf *err)
{
	if (memchr(v, '\0', n))
		return bad(err, "text field %u holds a NUL byte", tag);
	if (*out)
		return bad(err, "field %u appears twice", tag);
	*out = xstrndup((const char *)v, n);
	return 0;
}

static int get_i64(unsigned char tag, const unsigned char *v, size_t n, int64_t *out, struct sbuf *err)
{
	if (n != 8)
		return bad(err, "number field %u has %zu bytes, not 8", tag, n);
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x |= (uint64_t)v[i] << (8 * i);
	*out = (int64_t)x;
	return 0;
}

static int get_file(unsigned char tag, const unsigned char *v, size_t n, struct plan_file *f, struct sbuf *err)
{
	struct rd r = {v, n, 0};
	memset(f, 0, sizeof(*f));
	unsigned char t = 0;
	const unsigned char *fv = NULL;
	size_t fn = 0;
	int rc;
	bool mode = false;
	while ((rc = next_field(&r, &t, &fv, &fn, err)) == 0) {
		int64_t m = 0;
		switch (t) {
		case F_PATH: rc = get_str(t, fv, fn, &f->path, err); break;
		case F_SHA256: rc = get_str(t, fv, fn, &f->sha256, err); break;
		case F_OWNER: rc = get_str(t, fv, fn, &f->owner, err); break;
		case F_MODE:
			rc = get_i64(t, fv, fn, &m, err);
			if (rc == 0 && (m < 0 || m > 07777))
				rc = bad(err, "a file's mode %lld is not a mode", (long long)m);
			f->mode = (uint32_t)m;
			mode = true;
			break;
		default: rc = bad(err, "unknown field %u in a file entry (field %u)", t, tag);
		}
		if (rc < 0)
			break;
	}
	if (rc == 1 && (!f->path || !mode))
		rc = bad(err, "a file entry (field %u) lacks its path or mode", tag);
	if (rc < 0) {
		free(f->path);
		free(f->sha256);
		free(f->owner);
		memset(f, 0, sizeof(*f));
		return rc;
	}
	return 0;
}

static int decode_binary(const unsigned char *buf, size_t len, struct op_plan *p, struct sbuf *err)
{
	if (buf[3] < 1 || buf[3] > PLAN_VERSION)
		return bad(err, "version %u is not one this punix reads (1..%u)", buf[3], PLAN_VERSION);
	unsigned version = buf[3];
	struct rd r = {buf, len, 4};
	unsigned char t = 0;
	const unsigned char *v = NULL;
	size_t n = 0;
	int rc;
	while ((rc = next_field(&r, &t, &v, &n, err)) == 0) {
		int64_t x = 0;
		struct plan_file f;
		char *s = NULL;
		switch (t) {
		case P_SSH: rc = get_str(t, v, n, &p->ssh, err); break;
		case P_KNOWN_HOSTS: rc = get_str(t, v, n, &p->known_hosts, err); break;
		case P_KEY: rc = get_str(t, v, n, &p->key, err); break;
		case P_TRANSPORT_ROOT: rc = get_str(t, v, n, &p->transport_root, err); break;
		case P_DEPLOYMENTS_ROOT: rc = get_str(t, v, n, &p->deployments_root, err); break;
		case P_UNIT_DIR: rc = get_str(t, v, n, &p->unit_dir, err); break;
		case P_STORE_ROOT: rc = get_str(t, v, n, &p->store_root, err); break;
		case P_STACK: rc = get_str(t, v, n, &p->stack, err); break;
		case P_DEPLOYED_AT: rc = get_str(t, v, n, &p->deployed_at, err); break;
		case P_SOURCE_HASH: rc = get_str(t, v, n, &p->source_hash, err); break;
		case P_SERVICES: rc = get_str(t, v, n, &p->services, err); break;
		case P_ACTIVATE: rc = get_i64(t, v, n, &x, err), p->activate = x != 0; break;
		case P_ENABLE: rc = get_i64(t, v, n, &x, err), p->enable = x != 0; break;
		case P_GENERATION: rc = get_i64(t, v, n, &x, err), p->generation = (long)x; break;
		case P_PREVIOUS: rc = get_i64(t, v, n, &x, err), p->previous = (long)x; break;
		case P_ROOTS: rc = get_i64(t, v, n, &x, err), p->roots = (long)x; break;
		case P_KEEP_SET: rc = get_i64(t, v, n, &x, err), p->keep_set = (long)x; break;
		case P_KEEP: rc = get_i64(t, v, n, &x, err), p->keep = (long)x; break;
		case P_PRUNE:
			rc = get_i64(t, v, n, &x, err);
			if (rc == 0) {
				p->prune = xrealloc(p->prune, (p->nprune + 1) * sizeof(*p->prune));
				p->prune[p->nprune++] = (long)x;
			}
			break;
		case P_STORE_PATH:
		case P_ADOPT:
		case P_DEAD:
			rc = get_str(t, v, n, &s, err);
			if (rc == 0) {
				char ***l = t == P_STORE_PATH ? &p->store_paths : t == P_ADOPT ? &p->adopt : &p->dead;
				size_t *ln = t == P_STORE_PATH ? &p->npaths : t == P_ADOPT ? &p->nadopt : &p->ndead;
				*l = xrealloc(*l, (*ln + 1) * sizeof(**l));
				(*l)[(*ln)++] = s;
			}
			break;
		case P_CONFIG_FILE:
		case P_SECRET_FILE:
			rc = get_file(t, v, n, &f, err);
			if (rc == 0) {
				struct plan_file **l = t == P_CONFIG_FILE ? &p->config_files : &p->secret_files;
				size_t *ln = t == P_CONFIG_FILE ? &p->nconfig : &p->nsecret;
				*l = xrealloc(*l, (*ln + 1) * sizeof(**l));
				(*l)[(*ln)++] = f;
			}
			break;
		case P_REMOTE_PUNIX:
			if (version < 2) {
				rc = bad(err, "unknown field %u (plan version %u)", t, version);
				break;
			}
			rc = get_str(t, v, n, &p->remote_punix, err);
			break;
		case P_FLEET:
			if (version < 2) {
				rc = bad(err, "unknown field %u (plan version %u)", t, version);
				break;
			}
			rc = get_str(t, v, n, &p->fleet, err);
			break;
		case P_SUPERVISOR_CONF:
			if (version < 3) {
				rc = bad(err, "unknown field %u (plan version %u)", t, version);
				break;
			}
			rc = get_str(t, v, n, &p->supervisor_conf, err);
			break;
		case P_CONFIRM_TIMEOUT:
		case P_CONFIRM_TOKEN:
		case P_HEALTH:
		case P_CONFIRM_NEEDED:
			if (version < 4) {
				rc = bad(err, "unknown field %u (plan version %u)", t, version);
				break;
			}
			if (t == P_CONFIRM_TIMEOUT)
				rc = get_i64(t, v, n, &x, err), p->confirm_timeout = (long)x;
			else if (t == P_CONFIRM_NEEDED)
				rc = get_i64(t, v, n, &x, err), p->confirm_needed = x != 0;
			else
				rc = get_str(t, v, n, t == P_HEALTH ? &p->health : &p->confirm_token, err);
			break;
		default: rc = bad(err, "unknown field %u (plan version %u)", t, version);
		}
		if (rc < 0)
			return rc;
	}
	return rc < 0 ? rc : 0;
}

/* ---- the JSON plans of punix before the binary one --------------------------------------- */

static int json_text(json_t *o, const char *key, char **out, struct sbuf *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		sbuf_printf(err, "plan: \"%s\" is not text", key);
		return -EBADMSG;
	}
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int json_texts(json_t *o, const char *key, char ***out, size_t *n, struct sbuf *err)
{
	json_t *a = json_object_get(o, key);
	if (!a)
		return 0;
	if (!json_is_array(a)) {
		sbuf_printf(err, "plan: \"%s\" is not a list", key);
		return -EBADMSG;
	}
	for (size_t i = 0; i < json_array_size(a); i++) {
		if (!json_is_string(json_array_get(a, i))) {
			sbuf_printf(err, "plan: entry %zu of \"%s\" is not text", i + 1, key);
			return -EBADMSG;
		}
		plan_list_add(out, n, json_string_value(json_array_get(a, i)));
	}
	return 0;
}

static int json_files(json_t *o, const char *key, struct plan_file **out, size_t *n, struct sbuf *err)
{
	json_t *a = json_object_get(o, key);
	if (!a)
		return 0;
	if (!json_is_array(a)) {
		sbuf_printf(err, "plan: \"%s\" is not a list", key);
		return -EBADMSG;
	}
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *e = json_array_get(a, i);
		const char *path = json_string_value(json_object_get(e, "path"));
		const char *mode = json_string_value(json_object_get(e, "mode"));
		if (!path || !mode) {
			sbuf_printf(err, "plan: entry %zu of \"%s\" lacks its path or mode", i + 1, key);
			return -EBADMSG;
		}
		char *end;
		unsigned long m = strtoul(mode, &end, 8);
		if (!*mode || *end || mode[0] == '-' || mode[0] == '+' || m > 07777) {
			sbuf_printf(err, "plan: entry %zu of \"%s\" has the mode '%s', not one of 0000 to 7777", i + 1,
				    key, mode);
			return -EBADMSG;
		}
		*out = xrealloc(*out, (*n + 1) * sizeof(**out));
		struct plan_file *f = &(*out)[(*n)++];
		memset(f, 0, sizeof(*f));
		f->path = xstrdup(path);
		f->mode = (uint32_t)m;
		f->sha256 = plan_strdup(json_string_value(json_object_get(e, "sha256")));
		f->owner = plan_strdup(json_string_value(json_object_get(e, "owner")));
	}
	return 0;
}

static int decode_json(const char *buf, size_t len, struct op_plan *p, struct sbuf *err)
{
	json_error_t je;
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o)) {
		sbuf_printf(err, "plan: not a plan (%s)", o ? "not a JSON object" : je.text);
		json_decref(o);
		return -EBADMSG;
	}
	int rc = 0;
	const char *keys[] = {"ssh",	  "known_hosts", "key",		"transport_root", "deployments_root",
			      "unit_dir", "store_root",	 "stack",	"deployed_at",	  "source_hash"};
	char **slots[] = {&p->ssh,	&p->known_hosts, &p->key,	  &p->transport_root, &p->deployments_root,
			  &p->unit_dir, &p->store_root,	 &p->stack,	  &p->deployed_at,    &p->source_hash};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && rc == 0; i++)
		rc = json_text(o, keys[i], slots[i], err);
	if (rc == 0)
		rc = json_texts(o, "store_paths", &p->store_paths, &p->npaths, err);
	if (rc == 0)
		rc = json_texts(o, "adopt", &p->adopt, &p->nadopt, err);
	if (rc == 0)
		rc = json_texts(o, "dead", &p->dead, &p->ndead, err);
	if (rc == 0)
		rc = json_files(o, "config_files", &p->config_files, &p->nconfig, err);
	if (rc == 0)
		rc = json_files(o, "secret_files", &p->secret_files, &p->nsecret, err);
	p->activate = json_is_true(json_object_get(o, "activate"));
	p->enable = json_is_true(json_object_get(o, "enable"));
	p->generation = (long)json_integer_value(json_object_get(o, "generation"));
	p->previous = (long)json_integer_value(json_object_get(o, "previous"));
	p->roots = (long)json_integer_value(json_object_get(o, "roots"));
	p->keep = (long)json_integer_value(json_object_get(o, "keep"));
	json_t *svcs = json_object_get(o, "services");
	if (svcs)
		p->services = json_dumps(svcs, JSON_COMPACT | JSON_SORT_KEYS);
	json_t *pr = json_object_get(o, "prune");
	for (size_t i = 0; i < json_array_size(pr) && rc == 0; i++) {
		if (!json_is_integer(json_array_get(pr, i))) {
			sbuf_printf(err, "plan: entry %zu of \"prune\" is not a number", i + 1);
			rc = -EBADMSG;
			break;
		}
		p->prune = xrealloc(p->prune, (p->nprune + 1) * sizeof(*p->prune));
		p->prune[p->nprune++] = (long)json_integer_value(json_array_get(pr, i));
	}
	json_decref(o);
	return rc;
}

int plan_decode(const void *buf, size_t len, struct op_plan *p, struct sbuf *err)
{
	memset(p, 0, sizeof(*p));
	const unsigned char *b = buf;
	int rc;
	if (len >= 4 && memcmp(b, "PPL", 3) == 0)
		rc = decode_binary(b, len, p, err);
	else if (len && b[0] == '{')
		rc = decode_json(buf, len, p, err);
	else
		rc = bad(err, "%zu bytes that are not a plan", len);
	if (rc < 0)
		plan_free(p);
	return rc;
}

/* ---- for people ---------------------------------------------------------------------------- */

json_t *plan_files_json(const struct plan_file *f, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		char mode[8];
		snprintf(mode, sizeof(mode), "%04o", f[i].mode);
		json_t *e = json_pack("{s:s, s:s}", "path", f[i].path, "mode", mode);
		if (f[i].sha256)
			json_object_set_new(e, "sha256", json_string(f[i].sha256));
		if (f[i].owner)
			json_object_set_new(e, "owner", json_string(f[i].owner));
		json_array_append_new(a, e);
	}
	return a;
}

json_t *plan_texts_json(char *const *l, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(l[i]));
	return a;
}

char *plan_to_json(const struct op_plan *p)
{
	json_t *o = json_object();
	const char *keys[] = {"ssh",	  "known_hosts", "key",	  "transport_root", "deployments_root",
			      "unit_dir", "store_root",	 "stack", "deployed_at",    "source_hash"};
	const char *vals[] = {p->ssh,	   p->known_hosts, p->key,   p->transport_root, p->deployments_root,
			      p->unit_dir, p->store_root,  p->stack, p->deployed_at,	p->source_hash};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (vals[i])
			json_object_set_new(o, keys[i], json_string(vals[i]));
	if (p->remote_punix)
		json_object_set_new(o, "remote_punix", json_string(p->remote_punix));
	if (p->supervisor_conf)
		json_object_set_new(o, "supervisor_conf", json_string(p->supervisor_conf));
	if (p->confirm_timeout) {
		json_object_set_new(o, "confirm_timeout", json_integer(p->confirm_timeout));
		if (p->confirm_token)
			json_object_set_new(o, "confirm_token", json_string(p->confirm_token));
		if (p->health)
			json_object_set_new(o, "health", json_string(p->health));
		json_object_set_new(o, "confirm_needed", json_boolean(p->confirm_needed));
	}
	json_t *fl = p->fleet ? json_loads(p->fleet, 0, NULL) : NULL;
	if (fl)
		json_object_set_new(o, "fleet", fl);
	json_object_set_new(o, "activate", json_boolean(p->activate));
	json_object_set_new(o, "enable", json_boolean(p->enable));
	if (p->generation)
		json_object_set_new(o, "generation", json_integer(p->generation));
	if (p->previous)
		json_object_set_new(o, "previous", json_integer(p->previous));
	if (p->npaths)
		json_object_set_new(o, "store_paths", plan_texts_json(p->store_paths, p->npaths));
	if (p->nconfig)
		json_object_set_new(o, "config_files", plan_files_json(p->config_files, p->nconfig));
	if (p->nsecret)
		json_object_set_new(o, "secret_files", plan_files_json(p->secret_files, p->nsecret));
	if (p->nadopt)
		json_object_set_new(o, "adopt", plan_texts_json(p->adopt, p->nadopt));
	if (p->services) {
		json_t *s = json_loads(p->services, 0, NULL);
		json_object_set_new(o, "services", s ? s : json_string(p->services));
	}
	if (p->ndead)
		json_object_set_new(o, "dead", plan_texts_json(p->dead, p->ndead));
	if (p->roots)
		json_object_set_new(o, "roots", json_integer(p->roots));
	if (p->keep_set)
		json_object_set_new(o, "keep_set", json_integer(p->keep_set));
	if (p->keep)
		json_object_set_new(o, "keep", json_integer(p->keep));
	if (p->nprune) {
		json_t *a = json_array();
		for (size_t i = 0; i < p->nprune; i++)
			json_array_append_new(a, json_integer(p->prune[i]));
		json_object_set_new(o, "prune", a);
	}
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}
