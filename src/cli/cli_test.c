/* cli_test.c: configuration precedence, validation and listen parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_int.h"

static char *
write_tmp(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	strcpy(path, "/tmp/gh-cli-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_defaults_are_documented_values(void **state)
{
	struct gh_config cfg;

	(void)state;
	unsetenv("GATEHOUSE_LISTEN");
	unsetenv("GATEHOUSE_CONFIG");
	assert_int_equal(config_load(&cfg, NULL), GH_OK);
	assert_string_equal(cfg.data_dir, "./data");
	assert_string_equal(cfg.listen, "127.0.0.1:8080");
	assert_int_equal(cfg.argon2_m_kib, 19456);
	assert_int_equal(cfg.argon2_t_cost, 2);
	assert_int_equal(cfg.session_idle_timeout_s, 1800);
	assert_false(cfg.dev);
	assert_int_equal(config_check(&cfg), GH_OK);
}

static void
test_file_then_env_then_flag_take_precedence(void **state)
{
	char *path = write_tmp("# comment\nlisten = 127.0.0.1:9000\n"
	    "dev = true\nlog_level = \"warn\"\n");
	struct gh_config cfg;

	(void)state;
	assert_int_equal(config_load(&cfg, path), GH_OK);
	assert_string_equal(cfg.listen, "127.0.0.1:9000");
	assert_true(cfg.dev);
	assert_string_equal(cfg.log_level, "warn");
	setenv("GATEHOUSE_LISTEN", "127.0.0.1:9100", 1);
	assert_int_equal(config_load(&cfg, path), GH_OK);
	assert_string_equal(cfg.listen, "127.0.0.1:9100");
	assert_int_equal(config_set(&cfg, "listen", "127.0.0.1:9200",
	    "--listen"), GH_OK);
	assert_string_equal(cfg.listen, "127.0.0.1:9200");
	unsetenv("GATEHOUSE_LISTEN");
	unlink(path);
}

static void
test_unknown_key_and_bad_values_are_refused(void **state)
{
	struct gh_config cfg;
	char *path;

	(void)state;
	path = write_tmp("listen = 127.0.0.1:1\nlisen = x\n");
	assert_int_equal(config_load(&cfg, path), GH_ERR_INVALID);
	unlink(path);
	path = write_tmp("argon2_m_kib = 1024\n");
	assert_int_equal(config_load(&cfg, path), GH_ERR_INVALID);
	unlink(path);
	path = write_tmp("dev = maybe\n");
	assert_int_equal(config_load(&cfg, path), GH_ERR_INVALID);
	unlink(path);
	path = write_tmp("no equals sign\n");
	assert_int_equal(config_load(&cfg, path), GH_ERR_INVALID);
	unlink(path);
	setenv("GATEHOUSE_MAX_BODY_BYTES", "12abc", 1);
	assert_int_equal(config_load(&cfg, NULL), GH_ERR_INVALID);
	unsetenv("GATEHOUSE_MAX_BODY_BYTES");
	assert_int_equal(config_load(&cfg, "/nonexistent/gatehouse.conf"),
	    GH_ERR_INVALID);
	assert_int_equal(config_load(&cfg, NULL), GH_OK);
	strcpy(cfg.listen, "localhost");
	assert_int_equal(config_check(&cfg), GH_ERR_INVALID);
}

static void
test_listen_parses_ipv4_and_ipv6(void **state)
{
	char host[64];
	uint16_t port;

	(void)state;
	assert_int_equal(config_listen("127.0.0.1:8080", host, sizeof host,
	    &port), GH_OK);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(config_listen("[::1]:443", host, sizeof host, &port),
	    GH_OK);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 443);
	assert_int_equal(config_listen("::1:443x", host, sizeof host, &port),
	    GH_ERR_INVALID);
	assert_int_equal(config_listen("1.2.3.4:70000", host, sizeof host,
	    &port), GH_ERR_INVALID);
	assert_int_equal(config_listen(":80", host, sizeof host, &port),
	    GH_ERR_INVALID);
}

static void
test_repeated_and_flag_options(void **state)
{
	char *argv[] = { "--org", "acme", "--redirect-uri", "https://a/cb",
	    "--public", "--redirect-uri", "https://b/cb", "--grant-type",
	    "authorization_code", "--first-party", NULL };
	char *bad[] = { "--redirect-uri", NULL };
	char *unknown[] = { "--public", NULL };
	struct cli_opts o;

	(void)state;
	assert_int_equal(cli_parse(10, argv, "org redirect-uri grant-type "
	    "public first-party", &o), GH_OK);
	assert_string_equal(o.org, "acme");
	assert_int_equal(o.redirect_uris.n, 2);
	assert_string_equal(o.redirect_uris.v[0], "https://a/cb");
	assert_string_equal(o.redirect_uris.v[1], "https://b/cb");
	assert_int_equal(o.grant_types.n, 1);
	assert_true(o.public_client);
	assert_true(o.first_party);
	assert_false(o.pkce);
	assert_int_equal(o.nargs, 0);
	/* A repeated option needs its value; options not allowed here fail. */
	assert_int_equal(cli_parse(1, bad, "redirect-uri", &o),
	    GH_ERR_INVALID);
	assert_int_equal(cli_parse(1, unknown, "org", &o), GH_ERR_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repeated_and_flag_options),
		cmocka_unit_test(test_defaults_are_documented_values),
		cmocka_unit_test(test_file_then_env_then_flag_take_precedence),
		cmocka_unit_test(test_unknown_key_and_bad_values_are_refused),
		cmocka_unit_test(test_listen_parses_ipv4_and_ipv6),
	};

	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
