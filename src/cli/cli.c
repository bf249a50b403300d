/*
 * cli.c: the command line: dispatch, help, option parsing, and the helpers
 * every command shares (configuration, opening the store, the operator's
 * name, generated passwords).
 * Untrusted input: argv and the environment (operator-controlled).
 * Secrets: generated passwords (returned to the caller, who wipes them).
 */
#include "cli/cli.h"
#include "cli/cli_int.h"

#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gh_version.h"

static const char usage[] =
"Usage: gatehouse [--config FILE] COMMAND [OPTIONS]\n"
"\n"
"Gatehouse: multi-tenant sign-in with MFA (TOTP, passkeys, security keys,\n"
"approval from a signed-in device), users, groups, apps, roles, security\n"
"policies, SCIM provisioning, audit and encryption at rest for\n"
"organisations (single sign-on is on the way).\n"
"\n"
"Commands:\n"
"  init --org SLUG --admin USERNAME [--org-name NAME] [--region R] [--email E]\n"
"                      create the data directory, the first organisation and\n"
"                      its owner (password from GATEHOUSE_ADMIN_PASSWORD, or\n"
"                      generated and printed once)\n"
"  serve [--listen HOST:PORT] [--dev]\n"
"                      serve HTTP(S) until SIGINT or SIGTERM\n"
"  org create SLUG [--name NAME] [--region R]\n"
"  org list [--json]\n"
"  org show SLUG [--json]\n"
"  org suspend|activate|delete SLUG\n"
"  org purge [SLUG [--force]]\n"
"                      destroy the keys (crypto-shredding) and data of\n"
"                      deleted organisations past org_retention_days\n"
"  user add --org SLUG USERNAME [--email E] [--display-name N]\n"
"           [--role owner|admin|member]   (password from\n"
"                      GATEHOUSE_USER_PASSWORD, or generated and printed)\n"
"  user list --org SLUG [--json]\n"
"  user show --org SLUG USERNAME [--json]\n"
"  user disable --org SLUG USERNAME\n"
"  user reset-password --org SLUG USERNAME   (new password from\n"
"                      GATEHOUSE_NEW_PASSWORD, or generated and printed)\n"
"  group create --org SLUG NAME\n"
"  group list --org SLUG [--json]\n"
"  group add-member|remove-member --org SLUG GROUP USERNAME\n"
"                      GROUP is a group's name or id\n"
"  app create --org SLUG --name NAME [--kind oidc|saml|other]\n"
"           [--description D] [--first-party] [--redirect-uri URI ...]\n"
"           [--post-logout-redirect-uri URI ...] [--grant-type G ...]\n"
"           [--public] [--auth-method M] [--pkce] [--claims JSON]\n"
"           [--settings JSON]\n"
"                      an app; of kind oidc also an OpenID Connect client\n"
"                      (a confidential client's secret is printed once)\n"
"  app list --org SLUG [--json]\n"
"  app show --org SLUG --app ID [--json]\n"
"  app delete --org SLUG --app ID\n"
"  app secret --org SLUG --app ID   a new client secret, printed once\n"
"  app assign --org SLUG --app ID (--user USERNAME|EMAIL | --group NAME)\n"
"           [--role ROLE]\n"
"  keys status [--json]\n"
"  keys rotate --master | --org SLUG\n"
"                      re-wrap under a new master key, or new org and data\n"
"                      keys followed by re-encryption of the org's data\n"
"  keys reencrypt --org SLUG   resume an interrupted re-encryption\n"
"  keys customer-key set|revoke --org SLUG   (key from\n"
"                      GATEHOUSE_CUSTOMER_KEY: 32 bytes, base64url)\n"
"  db sql --org SLUG [--write] [--params JSON-ARRAY] SQL\n"
"                      run one statement on the org's encrypted database\n"
"                      and print the rows as JSON (writes are audited)\n"
"\n"
"Options accepted by every command that touches data:\n"
"  --data-dir DIR      the data directory (default ./data)\n"
"  --config FILE       a configuration file (also GATEHOUSE_CONFIG)\n"
"\n"
"  --help              this text\n"
"  --version           the version\n"
"\n"
"Configuration keys, their defaults and GATEHOUSE_* variables: docs/cli.md.\n"
"Exit status: 0 success, 1 failure, 2 usage or configuration error.\n";

static const char *global_config;

int
gh_cli_main(int argc, char **argv)
{
	struct rlimit nocore = { 0, 0 };
	int i = 1;

	/* Every command may hold keys: no core dump may carry them (the
	 * key pages are also MADV_DONTDUMP), and no other process of the
	 * same user may attach to read them. */
	(void)setrlimit(RLIMIT_CORE, &nocore);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	json_object_seed(0);
	/* Help wins wherever it stands: "gatehouse user add --help". */
	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--help") == 0 ||
		    strcmp(argv[k], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
	}
	while (i < argc && strncmp(argv[i], "--", 2) == 0) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("gatehouse %s\n", GH_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			global_config = argv[i + 1];
			i += 2;
			continue;
		}
		fprintf(stderr, "gatehouse: unknown option '%s'\n%s", argv[i],
		    "Run 'gatehouse --help' for usage.\n");
		return EXIT_USAGE;
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[i], "init") == 0)
		return cmd_init(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "serve") == 0)
		return cmd_serve(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "org") == 0)
		return cmd_org(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "user") == 0)
		return cmd_user(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "group") == 0)
		return cmd_group(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "keys") == 0)
		return cmd_keys(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "db") == 0)
		return cmd_db(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "app") == 0)
		return cmd_app(argc - i - 1, argv + i + 1);
	fprintf(stderr, "gatehouse: unknown command '%s'\n"
	    "Run 'gatehouse --help' for usage.\n", argv[i]);
	return EXIT_USAGE;
}

static bool
allowed_has(const char *allowed, const char *name)
{
	size_t n = strlen(name);
	const char *p = allowed;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == allowed || p[-1] == ' ') &&
		    (p[n] == ' ' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

gh_err
cli_parse(int argc, char **argv, const char *allowed, struct cli_opts *o)
{
	static const struct {
		const char *name;
		size_t off;	/* offset of a const char * in cli_opts */
	} valued[] = {
		{ "config", offsetof(struct cli_opts, config) },
		{ "data-dir", offsetof(struct cli_opts, data_dir) },
		{ "org", offsetof(struct cli_opts, org) },
		{ "admin", offsetof(struct cli_opts, admin) },
		{ "name", offsetof(struct cli_opts, name) },
		{ "org-name", offsetof(struct cli_opts, name) },
		{ "region", offsetof(struct cli_opts, region) },
		{ "email", offsetof(struct cli_opts, email) },
		{ "display-name", offsetof(struct cli_opts, display_name) },
		{ "role", offsetof(struct cli_opts, role) },
		{ "listen", offsetof(struct cli_opts, listen) },
		{ "params", offsetof(struct cli_opts, params) },
		{ "kind", offsetof(struct cli_opts, kind) },
		{ "app", offsetof(struct cli_opts, app) },
		{ "user", offsetof(struct cli_opts, user) },
		{ "group", offsetof(struct cli_opts, group) },
		{ "description", offsetof(struct cli_opts, description) },
		{ "auth-method", offsetof(struct cli_opts, auth_method) },
		{ "claims", offsetof(struct cli_opts, claims) },
		{ "settings", offsetof(struct cli_opts, settings) },
	};
	static const struct {
		const char *name;
		size_t off;	/* offset of a struct cli_multi in cli_opts */
	} repeated[] = {
		{ "redirect-uri", offsetof(struct cli_opts, redirect_uris) },
		{ "post-logout-redirect-uri",
		    offsetof(struct cli_opts, post_logout_uris) },
		{ "grant-type", offsetof(struct cli_opts, grant_types) },
	};
	static const struct {
		const char *name;
		size_t off;	/* offset of a bool in cli_opts */
	} flags[] = {
		{ "dev", offsetof(struct cli_opts, dev) },
		{ "json", offsetof(struct cli_opts, json) },
		{ "force", offsetof(struct cli_opts, force) },
		{ "master", offsetof(struct cli_opts, master) },
		{ "write", offsetof(struct cli_opts, write) },
		{ "public", offsetof(struct cli_opts, public_client) },
		{ "first-party", offsetof(struct cli_opts, first_party) },
		{ "pkce", offsetof(struct cli_opts, pkce) },
	};

	memset(o, 0, sizeof *o);
	o->config = global_config;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool found = false;

		if (strncmp(a, "--", 2) != 0) {
			if (o->nargs >= 4) {
				fprintf(stderr, "gatehouse: too many arguments\n");
				return GH_ERR_INVALID;
			}
			o->args[o->nargs++] = a;
			continue;
		}
		a += 2;
		if (!allowed_has(allowed, a)) {
			fprintf(stderr, "gatehouse: unknown option '--%s' "
			    "(allowed here: %s)\n", a, allowed);
			return GH_ERR_INVALID;
		}
		for (size_t k = 0; k < sizeof flags / sizeof *flags; k++) {
			if (strcmp(a, flags[k].name) == 0) {
				*(bool *)((char *)o + flags[k].off) = true;
				found = true;
			}
		}
		for (size_t k = 0; k < sizeof repeated / sizeof *repeated;
		    k++) {
			struct cli_multi *m;

			if (strcmp(a, repeated[k].name) != 0)
				continue;
			m = (struct cli_multi *)((char *)o + repeated[k].off);
			if (i + 1 >= argc || m->n >= CLI_MULTI_MAX) {
				fprintf(stderr, "gatehouse: option '--%s' needs "
				    "a value (at most %d times)\n", a,
				    CLI_MULTI_MAX);
				return GH_ERR_INVALID;
			}
			m->v[m->n++] = argv[++i];
			found = true;
		}
		if (found)
			continue;
		for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) {
			if (strcmp(a, valued[k].name) != 0)
				continue;
			if (i + 1 >= argc) {
				fprintf(stderr, "gatehouse: option '--%s' needs "
				    "a value\n", a);
				return GH_ERR_INVALID;
			}
			*(const char **)((char *)o + valued[k].off) = argv[++i];
			found = true;
		}
		if (!found)
			GH_PANIC("option %s allowed but not known", a);
	}
	return GH_OK;
}

gh_err
cli_config(const struct cli_opts *o, struct gh_config *cfg)
{
	enum gh_log_level lvl;
	gh_err err;

	err = config_load(cfg, o->config);
	if (err == GH_OK && o->data_dir != NULL)
		err = config_set(cfg, "data_dir", o->data_dir, "--data-dir");
	if (err == GH_OK && o->listen != NULL)
		err = config_set(cfg, "listen", o->listen, "--listen");
	if (err == GH_OK && o->dev)
		cfg->dev = true;
	if (err == GH_OK)
		err = config_derive(cfg);
	if (err == GH_OK)
		err = config_check(cfg);
	if (err == GH_OK && gh_log_level_parse(cfg->log_level, &lvl) == GH_OK)
		gh_log_set_level(lvl);
	return err;
}

void
cli_kms_config(const struct gh_config *cfg, struct gh_kms_config *out)
{
	memset(out, 0, sizeof *out);
	out->provider = cfg->kms_provider;
	out->master_key_file = cfg->master_key_file;
	out->key_store_file = cfg->key_store_file;
	out->pkcs11_module = cfg->pkcs11_module;
	out->pkcs11_token = cfg->pkcs11_token;
	out->pkcs11_pin = cfg->pkcs11_pin;
}

static gh_err
page_key(void *arg, const char *org_id, uint32_t version,
    uint32_t *version_out, uint8_t key[32])
{
	return gh_kms_storage_key(arg, org_id, version, version_out, key);
}

void
cli_store_keys(struct gh_store *st, struct gh_kms *kms)
{
	struct gh_store_keys keys = { page_key, kms };

	gh_store_set_keys(st, &keys);
}

gh_err
cli_store(const struct gh_config *cfg, struct gh_store **st_out,
    struct gh_kms **kms_out)
{
	struct gh_kms_config kc;
	char msg[512];
	gh_err err;

	*st_out = NULL;
	*kms_out = NULL;
	err = gh_store_open(cfg->data_dir, false, st_out);
	if (err == GH_ERR_NOTFOUND) {
		fprintf(stderr, "gatehouse: %s is not an initialised data "
		    "directory; run 'gatehouse init' first\n", cfg->data_dir);
		return err;
	}
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: cannot open the data directory %s: "
		    "%s\n", cfg->data_dir, gh_err_str(err));
		return err;
	}
	cli_kms_config(cfg, &kc);
	msg[0] = '\0';
	err = gh_kms_open(&kc, kms_out, msg, sizeof msg);
	if (err != GH_OK) {
		/* Refuse to go on rather than touch data without its keys. */
		fprintf(stderr, "gatehouse: cannot open the keys: %s\n",
		    msg[0] ? msg : gh_err_str(err));
		gh_store_free(*st_out);
		*st_out = NULL;
		return err;
	}
	cli_store_keys(*st_out, *kms_out);
	gh_store_set_limits(*st_out, (int)cfg->store_max_open,
	    (int)cfg->store_cache_kib);
	return GH_OK;
}

void
cli_close(struct gh_store *st, struct gh_kms *kms)
{
	gh_store_free(st);
	gh_kms_free(kms);
}

const char *
cli_operator(void)
{
	static char name[80];
	struct passwd *pw;

	if (name[0] == '\0') {
		pw = getpwuid(getuid());
		snprintf(name, sizeof name, "cli:%s",
		    pw != NULL ? pw->pw_name : "unknown");
	}
	return name;
}

gh_err
cli_random_password(char **out)
{
	uint8_t raw[18];
	char *s;
	gh_err err;

	*out = NULL;
	s = malloc(gh_b64url_len(sizeof raw) + 1);
	if (s == NULL)
		return GH_ERR_NOMEM;
	err = gh_rand_bytes(raw, sizeof raw);
	if (err != GH_OK) {
		free(s);
		return err;
	}
	/* 144 random bits: far past any strength rule. */
	gh_b64url_encode(raw, sizeof raw, s);
	gh_wipe(raw, sizeof raw);
	*out = s;
	return GH_OK;
}
