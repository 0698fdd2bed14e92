/*
 * test_backends.c - the backend registry (engine/backends.h) and the
 * supervisord generator (engine/supervisord.h): the registry's names are
 * the ones the PCL checker accepts (base/backend_names.h), in order; an
 * unknown backend lists them; a supervisord.conf's include directory;
 * the program text, quoted for supervisord; and what it refuses, located.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/backend_names.h"
#include "engine/backends.h"
#include "engine/launchd.h"
#include "engine/supervisord.h"

static const char *path_of(void *arg, const char *module)
{
	(void)module;
	return arg;
}

Test(registry, its_names_are_the_ones_pcl_accepts_in_order)
{
	static const char *const names[] = {PUNIX_BACKEND_NAMES};
	size_t n = sizeof(names) / sizeof(names[0]);
	for (size_t i = 0; i < n; i++) {
		cr_assert_not_null(backend_at(i), "the engine has no backend %zu (%s)", i, names[i]);
		cr_expect_str_eq(backend_at(i)->name, names[i]);
		cr_expect_eq(backend_find(names[i]), backend_at(i));
		cr_expect_not_null(backend_at(i)->generate);
	}
	cr_expect_null(backend_at(n), "the engine has more backends than base/backend_names.h names");
	struct sbuf joined = SBUF_INIT;
	for (size_t i = 0; i < n; i++)
		sbuf_printf(&joined, "%s%s", i ? ", " : "", names[i]);
	cr_expect_str_eq(joined.sb_buf, PUNIX_BACKENDS_SUPPORTED);
	sbuf_free(&joined);
	cr_expect_null(backend_find("runit"));
	cr_expect_null(backend_find(NULL));
}

Test(registry, an_unknown_backend_is_refused_listing_the_registered_ones)
{
	struct stack_desc st = {.name = "S", .backend = "runit"};
	struct backend_env env = {0};
	struct backend_args a = {&env, path_of, "/s/x-app-1", NULL, 0};
	struct rendered out;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(backend_render(&st, &a, &out, &err), -1);
	cr_expect_str_eq(err.sb_buf, "stack 'S': unsupported backend \"runit\"; supported: systemd, supervisord, launchd");
	sbuf_free(&err);
}

static void include_is(const char *conf, const char *text, const char *dir, const char *suffix)
{
	char *d, *s;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(supervisord_include(conf, text, strlen(text), &d, &s, &err), 0, "%s", err.sb_buf);
	cr_expect_str_eq(d, dir);
	cr_expect_str_eq(s, suffix);
	free(d);
	free(s);
	sbuf_free(&err);
}

static void include_refused(const char *text, const char *want)
{
	char *d, *s;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(supervisord_include("/etc/s.conf", text, strlen(text), &d, &s, &err), -1);
	cr_expect(strstr(err.sb_buf, want) != NULL, "'%s' does not say '%s'", err.sb_buf, want);
	cr_expect(!d && !s);
	sbuf_free(&err);
}

Test(supervisord, the_include_directory_is_read_from_the_conf)
{
	/* Debian's */
	include_is("/etc/supervisor/supervisord.conf",
		   "; supervisor config file\n[unix_http_server]\nfile=/var/run/supervisor.sock   ; (the path)\n\n"
		   "[include]\nfiles = /etc/supervisor/conf.d/*.conf\n",
		   "/etc/supervisor/conf.d", ".conf");
	include_is("/tmp/x/s.conf", "[include]\nfiles=conf.d/*.ini ; a comment\n", "/tmp/x/conf.d", ".ini");
	include_is("/tmp/x/s.conf", "[include]\nfiles = %(here)s/d/*.conf\n", "/tmp/x/d", ".conf");
	/* the first glob of the right form */
	include_is("/s.conf", "[include]\nfiles = /a/x?.conf\n  /b/*.conf\n", "/b", ".conf");
	include_refused("[supervisord]\nlogfile=/x\n", "has no [include] section");
	include_refused("[include]\nfiles = /a/*/b.conf\n", "no glob of the form DIR/*SUFFIX");
	/* the directory holds generation files: a path a manifest can hold, never one that climbs */
	include_refused("[include]\nfiles = /etc/supervisor/../systemd/system/*.conf\n",
			"not an absolute path without '.', '..' or '//'");
	include_refused("[include]\nfiles = ../../x/*.conf\n", "not an absolute path without '.', '..' or '//'");
}

struct fixture {
	const char *args[3];
	struct env_desc env[2];
	struct directive config[2];
	struct service_desc s;
	struct stack_desc st;
};

static void setup(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->args[0] = "--name";
	f->args[1] = "a b;c 'd' 50%";
	f->env[0] = (struct env_desc){"GREETING", ENV_LITERAL, "say \"hi\", twice"};
	f->env[1] = (struct env_desc){"MODE", ENV_LITERAL, "prod"};
	f->config[0] = (struct directive){.key = "User", .kind = DIRECTIVE_STR, .s = "nobody"};
	f->config[1] = (struct directive){.key = "WorkingDirectory", .kind = DIRECTIVE_STR, .s = "/var/lib/web"};
	f->s = (struct service_desc){.name = "web", .package = "App", .binary = "app", .args = f->args, .nargs = 2,
				     .env = f->env, .nenv = 2, .config = f->config, .nconfig = 2};
	f->st = (struct stack_desc){.name = "S", .loc = {"s.pcl", 3, 8}, .backend = "supervisord",
				    .services = &f->s, .nservices = 1};
}

Test(supervisord, each_service_is_a_program_file_in_the_include_directory)
{
	struct fixture f;
	setup(&f);
	struct backend_env env = {.include_dir = "/etc/supervisor/conf.d", .include_suffix = ".conf"};
	struct backend_args a = {&env, path_of, "/s/x-app-1", NULL, 0};
	struct rendered out;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(backend_render(&f.st, &a, &out, &err), 0, "%s", err.sb_buf);
	cr_assert_eq(out.n, 1);
	cr_expect_str_eq(out.files[0].path, "/etc/supervisor/conf.d/web.conf");
	cr_expect_eq(out.files[0].mode, 0644);
	cr_expect_str_eq(out.files[0].content, "; punix stack S: service web\n"
					       "[program:web]\n"
					       "command=/s/x-app-1/bin/app --name 'a b'\\;'c '\\''d'\\'' 50%%'\n"
					       "autostart=true\n"
					       "autorestart=true\n"
					       "stopasgroup=true\n"
					       "killasgroup=true\n"
					       "environment=GREETING='say \"hi\", twice',MODE=\"prod\"\n"
					       "user=nobody\n"
					       "directory=/var/lib/web\n");
	rendered_free(&out);
	sbuf_free(&err);
}

static void refused(struct fixture *f, const char *want)
{
	struct backend_env env = {.include_dir = "/d", .include_suffix = ".conf"};
	struct backend_args a = {&env, path_of, "/s/x-app-1", NULL, 0};
	struct rendered out;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(backend_render(&f->st, &a, &out, &err), -1);
	cr_expect(strstr(err.sb_buf, want) != NULL, "'%s' does not say '%s'", err.sb_buf, want);
	cr_expect_eq(out.n, 0);
	sbuf_free(&err);
}

Test(supervisord, what_it_cannot_carry_is_refused_where_it_is)
{
	struct fixture f;
	setup(&f);
	f.config[0] = (struct directive){.key = "LimitNOFILE", .kind = DIRECTIVE_INT, .i = 5};
	refused(&f, "takes serviceConfig.User and serviceConfig.WorkingDirectory (text) only, not serviceConfig.LimitNOFILE");
	setup(&f);
	f.env[1] = (struct env_desc){"MODE", ENV_LITERAL, "a ;b"};
	refused(&f, "cannot write environment= (environment.MODE): the value holds ';' or '#' after whitespace");
	setup(&f);
	f.env[1] = (struct env_desc){"MODE", ENV_LITERAL, "'x'"};
	refused(&f, "starts and ends with a quote");
	setup(&f);
	f.args[1] = "two\nlines";
	refused(&f, "cannot write command= (args[1]): the value holds a line break");
	setup(&f);
	f.s.has_timer = true;
	refused(&f, "has no timers");
}

/* launchd: a property list per service, XML-escaped; no activator. */
Test(launchd, each_service_is_a_property_list_and_nothing_activates_it)
{
	struct fixture f;
	setup(&f);
	f.st.backend = "launchd";
	struct backend_env env = {0};
	struct backend_args a = {&env, path_of, "/s/x-app-1", NULL, 0};
	struct rendered out;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(backend_render(&f.st, &a, &out, &err), 0, "%s", err.sb_buf);
	cr_assert_eq(out.n, 1);
	cr_expect_str_eq(out.files[0].path, "/Library/LaunchDaemons/punix.S.web.plist");
	cr_expect_eq(out.files[0].mode, 0644);
	cr_expect_str_eq(out.files[0].content,
			 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			 "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
			 "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
			 "<plist version=\"1.0\">\n<dict>\n"
			 "\t<key>Label</key>\n\t<string>punix.S.web</string>\n"
			 "\t<key>ProgramArguments</key>\n\t<array>\n"
			 "\t\t<string>/s/x-app-1/bin/app</string>\n"
			 "\t\t<string>--name</string>\n"
			 "\t\t<string>a b;c &apos;d&apos; 50%</string>\n"
			 "\t</array>\n"
			 "\t<key>EnvironmentVariables</key>\n\t<dict>\n"
			 "\t\t<key>GREETING</key>\n\t\t<string>say &quot;hi&quot;, twice</string>\n"
			 "\t\t<key>MODE</key>\n\t\t<string>prod</string>\n"
			 "\t</dict>\n"
			 "\t<key>UserName</key>\n\t<string>nobody</string>\n"
			 "\t<key>WorkingDirectory</key>\n\t<string>/var/lib/web</string>\n"
			 "\t<key>RunAtLoad</key>\n\t<true/>\n\t<key>KeepAlive</key>\n\t<true/>\n"
			 "</dict>\n</plist>\n");
	rendered_free(&out);
	sbuf_free(&err);
	const struct backend *b = backend_find("launchd");
	cr_assert_not_null(b);
	cr_expect_null(b->activate, "render now, activate later");

	/* what a property list here cannot carry */
	setup(&f);
	f.st.backend = "launchd";
	f.env[1] = (struct env_desc){"TOKEN", ENV_FROM_FILE, "/run/token"};
	cr_assert_eq(backend_render(&f.st, &a, &out, &err), -1);
	cr_expect(strstr(err.sb_buf, "s.pcl:3:8: [E6] stack 'S': service 'web': backend 'launchd' cannot pass secrets: "
				     "environment.TOKEN is from_file /run/token"),
		  "%s", err.sb_buf);
	sbuf_reset(&err);
	setup(&f);
	f.st.backend = "launchd";
	f.args[1] = "bell\a";
	cr_assert_eq(backend_render(&f.st, &a, &out, &err), -1);
	cr_expect(strstr(err.sb_buf, "holds a control character (XML has none)"), "%s", err.sb_buf);
	sbuf_free(&err);
}

/* Secrets: a 0600 file the program's user owns, sourced by /bin/sh before the program; never in the config. */
Test(supervisord, secrets_go_through_a_file_only_the_programs_user_reads)
{
	struct fixture f;
	setup(&f);
	f.env[1] = (struct env_desc){"TOKEN", ENV_FROM_ENV, "TOKEN"};
	struct backend_env env = {.include_dir = "/etc/supervisor/conf.d", .include_suffix = ".conf"};
	struct secret_value sv = {"web", "TOKEN", "it's s3cret"};
	struct backend_args a = {&env, path_of, "/s/x-app-1", &sv, 1};
	struct rendered out;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(backend_render(&f.st, &a, &out, &err), 0, "%s", err.sb_buf);
	cr_assert_eq(out.n, 2);
	cr_expect_str_eq(out.files[0].path, "/etc/punix/secrets/S/web.env");
	cr_expect(out.files[0].secret);
	cr_expect_eq(out.files[0].mode, 0600);
	cr_expect_str_eq(out.files[0].owner, "nobody");
	cr_expect_str_eq(out.files[0].content, "TOKEN='it'\\''s s3cret'\n");
	cr_expect_str_eq(out.files[1].path, "/etc/supervisor/conf.d/web.conf");
	cr_expect(strstr(out.files[1].content, "command=/bin/sh -c 'set -a'\\;' . \"$0\"'\\;' set +a'\\;' exec \"$@\"' "
					       "/etc/punix/secrets/S/web.env /s/x-app-1/bin/app --name") != NULL,
		  "%s", out.files[1].content);
	cr_expect(strstr(out.files[1].content, "s3cret") == NULL, "the config never holds a secret");
	cr_expect(strstr(out.files[1].content, "environment=GREETING='say \"hi\", twice'\n") != NULL, "%s",
		  out.files[1].content);
	rendered_free(&out);
	sbuf_free(&err);
}
