/*
 * gen_program.c - writes large, valid PCL programs for the benchmarks.
 *
 *   gen_program check N OUTDIR   N modules of every kind, 1000 per file:
 *                                packages with short dependency chains,
 *                                stacks with inline services and config
 *                                files, data modules read through refs
 *   gen_program build N OUTDIR   N small packages (mkdir only), each
 *                                depending on up to two earlier ones
 *
 * Deterministic for a given N (fixed seed), so runs compare.
 */
#include <errno.h>
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

static FILE *open_part(const char *dir, long part)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/part%04ld.pcl", dir, part);
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	return f;
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

static void gen_check(long n, const char *dir)
{
	FILE *f = NULL;
	long npkg = 0;
	for (long i = 0; i < n; i++) {
		if (i % 1000 == 0) {
			if (f)
				fclose(f);
			f = open_part(dir, i / 1000);
		}
		long kind = i % 10;
		if (kind < 6 || npkg == 0) {
			/* up to 3 dependencies, on packages of the same file */
			package(f, npkg, npkg % 1000 ? (int)(rnd() % 4) : 0);
			npkg++;
		} else if (kind < 8) {
			fprintf(f, "module D%ld { port = %ld host = \"10.0.%ld.%ld\" tags = [\"a\", \"b\"] }\n", i,
				8000 + i % 1000, (i / 256) % 256, i % 256);
		} else {
			long p = npkg - 1 - (long)(rnd() % (unsigned long)(npkg % 1000 ? npkg % 1000 : 1));
			long d = i - 1 - (i - 1) % 10 + 6 <= i - 1 ? i - 1 - (i - 1) % 10 + 6 : -1;
			fprintf(f, "module S%ld {\n  backend = \"systemd\"\n  storeModules = [\"P%ld\"]\n", i, p);
			fprintf(f, "  services = [\n");
			for (int s = 0; s < 3; s++)
				fprintf(f,
					"    { name = \"svc%d\" package = \"P%ld\" binary = \"run\" args = [\"--port\"] "
					"dependsOn = [%s] environment = { MODE = \"prod\" } }\n",
					s, p, s ? "\"svc0\"" : "");
			fprintf(f, "  ]\n  configFiles = [{ path = \"/etc/s%ld.conf\" content = %s%ld%s }]\n}\n", i,
				d >= 0 && d % 10 >= 6 && d % 10 < 8 ? "D" : "\"x", d >= 0 && d % 10 >= 6 && d % 10 < 8 ? d : i,
				d >= 0 && d % 10 >= 6 && d % 10 < 8 ? ".host" : "\"");
		}
	}
	if (f)
		fclose(f);
}

static void gen_build(long n, const char *dir)
{
	FILE *f = NULL;
	for (long i = 0; i < n; i++) {
		if (i % 1000 == 0) {
			if (f)
				fclose(f);
			f = open_part(dir, i / 1000);
		}
		package(f, i, (int)(rnd() % 3));
	}
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[1], "check") && strcmp(argv[1], "build"))) {
		fprintf(stderr, "usage: gen_program check|build N OUTDIR\n");
		return 2;
	}
	long n = atol(argv[2]);
	if (mkdir(argv[3], 0755) < 0 && errno != EEXIST) {
		perror(argv[3]);
		return 1;
	}
	if (!strcmp(argv[1], "check"))
		gen_check(n, argv[3]);
	else
		gen_build(n, argv[3]);
	return 0;
}
