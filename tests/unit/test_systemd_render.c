/*
 * test_systemd_render.c - the renderer's own guard, for descriptions the
 * PCL checker never sees (another front end, a store path, a secret): every
 * value that reaches a rendered line is checked first, and one that would
 * make systemd read another line fails the render naming the stack, the
 * service and the directive, never quoting a secret.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ownership.h"
#include "engine/systemd.h"

static const char *path_of(void *arg, const char *module)
{
	(void)module;
	return arg;
}

/* A stack of one service "web" of package "App"; tests change what they need. */
struct fixture {
	struct stack_desc st;
	struct service_desc s;
	const char *args[2];
	struct directive config[1], timer[1];
	struct env_desc env[2];
	const char *tmpfiles[1];
	struct user_desc users[1];
	const char *groups[1];
	struct secret_value secret;
};

static void fixture(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->args[0] = "--port";
	f->args[1] = "80";
	f->config[0] = (struct directive){"User", DIRECTIVE_STR, "web", false, 0};
	f->timer[0] = (struct directive){"OnCalendar", DIRECTIVE_STR, "daily", false, 0};
	f->env[0] = (struct env_desc){"MODE", ENV_LITERAL, "prod"};
	f->env[1] = (struct env_desc){"TOKEN", ENV_FROM_ENV, "TOKEN"};
	f->tmpfiles[0] = "d /run/web 0755 web web -";
	f->users[0] = (struct user_desc){"web", "web", "/var/lib/web"};
	f->groups[0] = "web";
	f->secret = (struct secret_value){"web", "TOKEN", "t-0k3n"};
	f->s = (struct service_desc){.name = "web", .package = "App", .binary = "app", .args = f->args, .nargs = 2,
				     .env = f->env, .nenv = 2, .config = f->config, .nconfig = 1, .timer = f->timer,
				     .ntimer = 1, .has_timer = true, .tmpfiles = f->tmpfiles, .ntmpfiles = 1};
	f->st = (struct stack_desc){.name = "S", .backend = "systemd", .services = &f->s, .nservices = 1,
				    .users = f->users, .nusers = 1, .groups = f->groups, .ngroups = 1};
}

/* Renders f with pkg as the store path; returns the error, or "" when it rendered. */
static char *render(struct fixture *f, const char *pkg)
{
	struct rendered out;
	struct sbuf err = SBUF_INIT;
	struct backend_env env = {.unit_dir = "/etc/systemd/system"};
	struct backend_args a = {&env, path_of, (void *)pkg, &f->secret, 1};
	int r = backend_render(&f->st, &a, &out, &err);
	cr_expect_eq(r < 0, err.sb_len > 0, "an error exactly when the render fails");
	if (r == 0)
		rendered_free(&out);
	else
		cr_expect_eq(out.n, 0, "a failed render leaves nothing");
	char *msg = strdup(sbuf_str(&err));
	sbuf_free(&err);
	return msg;
}

static void expect_refused(struct fixture *f, const char *pkg, const char *want)
{
	char *got = render(f, pkg);
	cr_expect_str_eq(got, want);
	cr_expect(strstr(got, "t-0k3n") == NULL, "the secret is never quoted");
	free(got);
}

Test(render, the_fixture_renders)
{
	struct fixture f;
	fixture(&f);
	char *got = render(&f, "/store/abc-app-1");
	cr_expect_str_eq(got, "");
	free(got);
}

Test(render, a_trailing_backslash_is_refused_in_every_directive)
{
	struct fixture f;
	fixture(&f);
	f.config[0].s = "web\\";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'web': cannot render User= (serviceConfig.User): the value ends in a backslash");
	fixture(&f);
	f.timer[0].s = "daily\\";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'web': cannot render OnCalendar= of its timer (timer.OnCalendar): the value "
		       "ends in a backslash");
	fixture(&f);
	f.args[1] = "80\\";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'web': cannot render ExecStart= (args[1]): the value ends in a backslash");
	fixture(&f);
	f.env[0].value = "prod\\";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'web': cannot render Environment= (environment.MODE): the value ends in a "
		       "backslash");
	fixture(&f);
	f.tmpfiles[0] = "d /run/web 0755 web web -\\";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'web': cannot render a tmpfiles.d line (tmpfiles[0]): the value ends in a "
		       "backslash");
	fixture(&f);
	f.users[0].home = "/var/lib/web\\";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': cannot render the home of system user 'web' (sysusers.d): the value ends in a backslash");
}

Test(render, control_bytes_line_breaks_and_bad_utf8_are_refused)
{
	struct fixture f;
	fixture(&f);
	expect_refused(&f, "/store/abc\x01-app-1",
		       "stack 'S': service 'web': cannot render ExecStart= (the store path of package 'App'): the value "
		       "holds a control character other than tab");
	fixture(&f);
	f.config[0].s = "web\nExecStartPre=/bin/evil";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'web': cannot render User= (serviceConfig.User): the value holds a line break");
	fixture(&f);
	f.timer[0].s = "daily\x7f";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'web': cannot render OnCalendar= of its timer (timer.OnCalendar): the value "
		       "holds a control character other than tab");
	fixture(&f);
	f.groups[0] = "w\xff";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': cannot render a system group's name (sysusers.d): the value is not valid UTF-8");
	/* a bad name is shown escaped, so the message stays one line */
	fixture(&f);
	f.s.name = "we\nb";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'we\\x0Ab': cannot render its name (Description=, the unit file's name): the "
		       "value holds a line break");
}

Test(render, a_secret_is_refused_without_being_quoted)
{
	struct fixture f;
	fixture(&f);
	f.secret.value = "t-0k3n\x1b";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'web': cannot render EnvironmentFile= (the secret TOKEN): the value holds a "
		       "control character other than tab");
	f.secret.value = "t-0k3n\\";
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'web': cannot render EnvironmentFile= (the secret TOKEN): the value ends in a "
		       "backslash");
}

Test(render, tabs_and_inner_backslashes_render)
{
	struct fixture f;
	fixture(&f);
	f.tmpfiles[0] = "d\t/run/web\t0755 web web -";
	f.config[0].s = "a\\b";
	f.secret.value = "t-0k3n\twith\\tab";
	char *got = render(&f, "/store/abc-app-1");
	cr_expect_str_eq(got, "");
	free(got);
}

Test(render, the_value_check_names_each_class)
{
	const char *why = NULL;
	cr_expect(systemd_value_ok("a\tb\\c", 5, &why));
	cr_expect_null(why);
	cr_expect_not(systemd_value_ok("a\0b", 3, &why));
	cr_expect_str_eq(why, "holds a NUL byte");
	cr_expect_not(systemd_value_ok("a\rb", 3, &why));
	cr_expect_str_eq(why, "holds a line break");
	cr_expect_not(systemd_value_ok("a\x1f", 2, &why));
	cr_expect_str_eq(why, "holds a control character other than tab");
	cr_expect_not(systemd_value_ok("\xc3", 1, &why));
	cr_expect_str_eq(why, "is not valid UTF-8");
	cr_expect_not(systemd_value_ok("a\\", 2, &why));
	cr_expect_str_eq(why, "ends in a backslash");
	cr_expect(systemd_value_ok("", 0, NULL));
}

/* ---- a service's provision ------------------------------------------------ */

/* The one rendered file at path (NULL if none). */
static const char *file_at(const struct rendered *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->files[i].path, path))
			return r->files[i].content;
	return NULL;
}

Test(provision, renders_a_oneshot_after_its_service_with_its_user_state_and_environment)
{
	struct fixture f;
	fixture(&f);
	struct directive config[3] = {
		{"DynamicUser", DIRECTIVE_BOOL, NULL, true, 0},
		{"LimitNOFILE", DIRECTIVE_INT, NULL, false, 4096},
		{"StateDirectory", DIRECTIVE_STR, "web", false, 0},
	};
	const char *pargs[] = {"--to", "v 2", "50%"};
	struct env_desc penv[2] = {{"DB", ENV_LITERAL, "/var/lib/web/db"}, {"MODE", ENV_LITERAL, "migrate"}};
	struct provision_desc pr = {.package = "App", .binary = "migrate", .args = pargs, .nargs = 3, .env = penv,
				    .nenv = 2};
	f.s.config = config;
	f.s.nconfig = 3;
	f.s.has_timer = false;
	f.s.ntimer = 0;
	f.s.provision = &pr;
	struct rendered out;
	struct sbuf err = SBUF_INIT;
	struct backend_env env = {.unit_dir = "/etc/systemd/system"};
	struct backend_args a = {&env, path_of, "/store/abc-app-1", &f.secret, 1};
	cr_assert_eq(backend_render(&f.st, &a, &out, &err), 0, "%s", err.sb_buf);
	const char *unit = file_at(&out, "/etc/systemd/system/web-provision.service");
	cr_assert_not_null(unit);
	cr_expect_str_eq(unit, "[Unit]\n"
			       "Description=Punix stack S: web (provision)\n"
			       "After=web.service\n"
			       "Requires=web.service\n"
			       "\n"
			       "[Service]\n"
			       "Type=oneshot\n"
			       "RemainAfterExit=no\n"
			       "ExecStart=/store/abc-app-1/bin/migrate --to \"v 2\" 50%%\n"
			       "DynamicUser=yes\n"
			       "StateDirectory=web\n"
			       "User=web\n"
			       "Environment=\"DB=/var/lib/web/db\"\n"
			       "Environment=\"MODE=migrate\"\n"
			       "EnvironmentFile=/etc/punix/secrets/S/web.env\n");
	cr_expect(strstr(unit, "[Install]") == NULL, "a provision is never started at boot on its own");
	cr_expect(strstr(unit, "LimitNOFILE") == NULL, "only who it runs as and where its state is are shared");
	cr_expect(strstr(unit, "t-0k3n") == NULL, "secrets stay in the sidecar");
	rendered_free(&out);
	/* a service's literal environment is the provision's too, its own winning */
	struct env_desc senv[2] = {{"MODE", ENV_LITERAL, "prod"}, {"ZONE", ENV_LITERAL, "eu"}};
	f.s.env = senv;
	f.s.nenv = 2;
	f.config[0] = (struct directive){"User", DIRECTIVE_STR, "web", false, 0};
	f.s.config = f.config;
	f.s.nconfig = 1;
	cr_assert_eq(backend_render(&f.st, &a, &out, &err), 0, "%s", err.sb_buf);
	unit = file_at(&out, "/etc/systemd/system/web-provision.service");
	cr_assert_not_null(unit);
	cr_expect(strstr(unit, "User=web\nEnvironment=\"DB=/var/lib/web/db\"\nEnvironment=\"MODE=migrate\"\n"
			       "Environment=\"ZONE=eu\"\n") != NULL,
		  "%s", unit);
	cr_expect(strstr(unit, "EnvironmentFile=") == NULL, "no secrets, no sidecar");
	rendered_free(&out);
	sbuf_free(&err);
}

Test(provision, its_values_are_checked_like_the_service_s)
{
	struct fixture f;
	fixture(&f);
	const char *pargs[] = {"ok", "bad\\"};
	struct provision_desc pr = {.package = "App", .binary = "migrate", .args = pargs, .nargs = 2};
	f.s.provision = &pr;
	expect_refused(&f, "/store/abc-app-1",
		       "stack 'S': service 'web': cannot render ExecStart= of its provision (provision.args[1]): the value "
		       "ends in a backslash");
}

Test(provision, supervisord_refuses_it_where_it_is_written)
{
	struct fixture f;
	fixture(&f);
	struct provision_desc pr = {.loc = {"s.pcl", 7, 17}, .package = "App", .binary = "migrate"};
	f.s = (struct service_desc){.name = "web", .package = "App", .binary = "app", .provision = &pr};
	f.st = (struct stack_desc){.name = "S", .loc = {"s.pcl", 3, 8}, .backend = "supervisord", .services = &f.s,
				   .nservices = 1};
	struct backend_env env = {.include_dir = "/d", .include_suffix = ".conf"};
	struct backend_args a = {&env, path_of, "/store/abc-app-1", NULL, 0};
	struct rendered out;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(backend_render(&f.st, &a, &out, &err), -1);
	cr_expect_str_eq(err.sb_buf, "s.pcl:7:17: [E6] stack 'S': service 'web': backend 'supervisord' has no oneshot: "
				     "provision is systemd's (use backend 'systemd')");
	sbuf_free(&err);
}

Test(provision, a_config_file_inside_a_state_directory_is_refused)
{
	struct fixture f;
	fixture(&f);
	struct directive config[1] = {{"StateDirectory", DIRECTIVE_STR, "web web-cache:cache", false, 0}};
	struct file_desc files[3] = {
		{"/var/lib/web-cache/x", "x", 1}, {"/var/lib/web/app.conf", "y", 1}, {"/var/lib/webby/ok", "z", 1}};
	f.s.config = config;
	f.s.nconfig = 1;
	f.st.files = files;
	f.st.nfiles = 3;
	struct sbuf err = SBUF_INIT;
	cr_expect_eq(ownership_state_check(&f.st, &err), -1);
	cr_expect_str_eq(err.sb_buf, "[E13] stack 'S' may not write 2 file(s):\n"
				     "  /var/lib/web/app.conf is a config file inside StateDirectory 'web' of service 'web': "
				     "state is the service's, never the generation's\n"
				     "  /var/lib/web-cache/x is a config file inside StateDirectory 'web-cache' of service "
				     "'web': state is the service's, never the generation's");
	f.st.nfiles = 0;
	sbuf_reset(&err);
	cr_expect_eq(ownership_state_check(&f.st, &err), 0);
	cr_expect_eq(err.sb_len, 0);
	sbuf_free(&err);
}
