/*
 * gen_program.c - writes large, valid PCL programs for the benchmarks.
 *
 *   gen_program check N OUTDIR   N modules of every kind, 1000 per file:
 *                                packages with short dependency chains,
 *                                stacks with inline services and config
 *                                files, data modules read through refs
 *   gen_program json N OUTDIR    the modules of 'check N' as JSON, 1000
 *                                per file: one object per file, module
 *                                name -> the module's fields as nested
 *                                objects and arrays (a reference becomes
 *                                {"ref": "D6.host"}); the same content in
 *                                about the same bytes, for json.load
 *   gen_program build N OUTDIR   N small packages (mkdir only), each
 *                                depending on up to two earlier ones
 *
 * Deterministic for a given N (fixed seed), so runs compare.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static unsigned long seed = 42;

static unsigned long rnd(void)
{
	seed = seed * 6364136223846793005UL + 1442695040888963407UL;
	return seed >> 33;
}

static FILE *open_part(const char *dir, long part, const char *ext)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/part%04ld.%s", dir, part, ext);
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	return f;
}

/* JSON: a comma before every module of a file but its first. */
static const char *sep(long i)
{
	return i % 1000 ? ",\n" : "";
}

static void package_json(FILE *f, long i, long at, int ndeps)
{
	fprintf(f, "%s\"P%ld\": {\n  \"pname\": \"p%ld\",\n  \"version\": \"1.%ld\",\n  \"recipe\": \"std.shell\",\n",
		sep(at), i, i, i % 7);
	fprintf(f, "  \"recipeArgs\": {\"command\": \"mkdir -p $OUTPUT/bin\"}");
	if (ndeps && i > 0) {
		fputs(",\n  \"deps\": [", f);
		for (int d = 0; d < ndeps; d++)
			fprintf(f, "%s\"P%lu\"", d ? ", " : "", rnd() % (unsigned long)i);
		fputs("]", f);
	}
	fputs("\n}", f);
}

static void package(FILE *f, long i, int ndeps)
{
	fprintf(f, "module P%ld {\n  pname = \"p%ld\"\n  version = \"1.%ld\"\n  recipe = \"std.shell\"\n", i, i, i % 7);
	fprintf(f, "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" }\n");
	if (ndeps && i > 0) {
		fputs("  deps = [", f);
		for (int d = 0; d < ndeps; d++)
			fprintf(f, "%s\"P%lu\"", d ? ", " : "", rnd() % (unsigned long)i);
		fputs("]\n", f);
	}
	fputs("}\n", f);
}

static void gen_check(long n, const char *dir, bool json)
{
	FILE *f = NULL;
	long npkg = 0;
	for (long i = 0; i < n; i++) {
		if (i % 1000 == 0) {
			if (f) {
				if (json)
					fputs("\n}\n", f);
				fclose(f);
			}
			f = open_part(dir, i / 1000, json ? "json" : "pcl");
			if (json)
				fputs("{\n", f);
		}
		long kind = i % 10;
		if (kind < 6 || npkg == 0) {
			/* up to 3 dependencies, on packages of the same file */
			int ndeps = npkg % 1000 ? (int)(rnd() % 4) : 0;
			if (json)
				package_json(f, npkg, i, ndeps);
			else
				package(f, npkg, ndeps);
			npkg++;
		} else if (kind < 8) {
			if (json)
				fprintf(f, "%s\"D%ld\": {\"port\": %ld, \"host\": \"10.0.%ld.%ld\", \"tags\": [\"a\", \"b\"]}", sep(i),
					i, 8000 + i % 1000, (i / 256) % 256, i % 256);
			else
				fprintf(f, "module D%ld { port = %ld host = \"10.0.%ld.%ld\" tags = [\"a\", \"b\"] }\n", i,
					8000 + i % 1000, (i / 256) % 256, i % 256);
		} else {
			long p = npkg - 1 - (long)(rnd() % (unsigned long)(npkg % 1000 ? npkg % 1000 : 1));
			long d = i - 1 - (i - 1) % 10 + 6 <= i - 1 ? i - 1 - (i - 1) % 10 + 6 : -1;
			bool ref = d >= 0 && d % 10 >= 6 && d % 10 < 8;
			char content[64];
			if (json) {
				snprintf(content, sizeof(content), ref ? "{\"ref\": \"D%ld.host\"}" : "\"x%ld\"", ref ? d : i);
				fprintf(f, "%s\"S%ld\": {\n  \"backend\": \"systemd\",\n  \"storeModules\": [\"P%ld\"],\n",
					sep(i), i, p);
				fprintf(f, "  \"services\": [\n");
				for (int s = 0; s < 3; s++)
					fprintf(f,
						"    {\"name\": \"svc%d\", \"package\": \"P%ld\", \"binary\": \"run\", "
						"\"args\": [\"--port\"], \"dependsOn\": [%s], \"environment\": {\"MODE\": \"prod\"}}%s\n",
						s, p, s ? "\"svc0\"" : "", s < 2 ? "," : "");
				fprintf(f, "  ],\n  \"configFiles\": [{\"path\": \"/etc/s%ld.conf\", \"content\": %s}]\n}", i,
					content);
				continue;
			}
			snprintf(content, sizeof(content), ref ? "D%ld.host" : "\"x%ld\"", ref ? d : i);
			fprintf(f, "module S%ld {\n  backend = \"systemd\"\n  storeModules = [\"P%ld\"]\n", i, p);
			fprintf(f, "  services = [\n");
			for (int s = 0; s < 3; s++)
				fprintf(f,
					"    { name = \"svc%d\" package = \"P%ld\" binary = \"run\" args = [\"--port\"] "
					"dependsOn = [%s] environment = { MODE = \"prod\" } }\n",
					s, p, s ? "\"svc0\"" : "");
			fprintf(f, "  ]\n  configFiles = [{ path = \"/etc/s%ld.conf\" content = %s }]\n}\n", i, content);
		}
	}
	if (f) {
		if (json)
			fputs("\n}\n", f);
		fclose(f);
	}
}

static void gen_build(long n, const char *dir)
{
	FILE *f = NULL;
	for (long i = 0; i < n; i++) {
		if (i % 1000 == 0) {
			if (f)
				fclose(f);
			f = open_part(dir, i / 1000, "pcl");
		}
		package(f, i, (int)(rnd() % 3));
	}
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[1], "check") && strcmp(argv[1], "json") && strcmp(argv[1], "build"))) {
		fprintf(stderr, "usage: gen_program check|json|build N OUTDIR\n");
		return 2;
	}
	long n = atol(argv[2]);
	if (mkdir(argv[3], 0755) < 0 && errno != EEXIST) {
		perror(argv[3]);
		return 1;
	}
	if (!strcmp(argv[1], "check") || !strcmp(argv[1], "json"))
		gen_check(n, argv[3], !strcmp(argv[1], "json"));
	else
		gen_build(n, argv[3]);
	return 0;
}
