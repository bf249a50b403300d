/* cli_int.h: shared by the files of src/cli. */
#ifndef GH_CLI_INT_H
#define GH_CLI_INT_H

#include <limits.h>
#include <stdio.h>

#include "api/api.h"
#include "audit/audit.h"
#include "core/core.h"
#include "identity/identity.h"
#include "kms/kms.h"
#include "store/store.h"

/* Exit statuses. */
#define EXIT_FAIL 1
#define EXIT_USAGE 2

struct gh_config {
	char data_dir[PATH_MAX];
	char listen[128];
	char base_url[256];
	bool dev;
	char tls_cert[PATH_MAX];
	char tls_key[PATH_MAX];
	char trusted_proxies[1024];
	unsigned http_threads;
	unsigned http_workers;
	unsigned max_body_bytes;
	unsigned max_header_bytes;
	unsigned connection_timeout_s;
	unsigned max_connections;
	unsigned session_lifetime_s;
	unsigned session_idle_timeout_s;
	unsigned argon2_t_cost;
	unsigned argon2_m_kib;
	unsigned argon2_parallelism;
	char default_region[33];
	char log_level[8];
	char kms_provider[16];
	char master_key_file[PATH_MAX];
	char key_store_file[PATH_MAX];
	char pkcs11_module[PATH_MAX];
	char pkcs11_token[64];
	char pkcs11_pin[128];
	unsigned org_retention_days;
	char smtp_host[256];
	unsigned smtp_port;
	char smtp_from[256];
	char smtp_helo[256];
	unsigned smtp_timeout_s;
	unsigned mfa_approval_ttl_s;
	unsigned oidc_key_publish_delay_s;
	unsigned oidc_backchannel_retry_s;
	unsigned signin_rate_ip_per_min;
	unsigned signin_rate_org_per_min;
	unsigned lockout_failures;
	unsigned lockout_max_s;
	char redis_url[256];
	char geoip_file[PATH_MAX];
	unsigned store_max_open;
	unsigned store_cache_kib;
};

/* Fills the defaults, then the file (path may be NULL), then GATEHOUSE_*
 * variables. On error prints a message naming the key and returns
 * GH_ERR_INVALID. */
gh_err config_load(struct gh_config *cfg, const char *path) GH_MUST_CHECK;
/* Sets one key from a flag or elsewhere; prints an error naming origin. */
gh_err config_set(struct gh_config *cfg, const char *key, const char *value,
    const char *origin) GH_MUST_CHECK;
/* Fills derived defaults (key file paths beside the data directory). */
gh_err config_derive(struct gh_config *cfg) GH_MUST_CHECK;
/* Cross-key checks (argon2 minimums, listen syntax...). */
gh_err config_check(const struct gh_config *cfg) GH_MUST_CHECK;
/* Splits listen into host and port. */
gh_err config_listen(const char *listen, char *host, size_t host_cap,
    uint16_t *port) GH_MUST_CHECK;
/* The public base URL: base_url, or derived from listen. */
void config_base_url(const struct gh_config *cfg, char *out, size_t cap);
void config_pw_params(const struct gh_config *cfg, struct gh_pw_params *p);

#define CLI_MULTI_MAX 20	/* values of a repeatable option */

/* The values of a repeatable option, in order. */
struct cli_multi {
	const char *v[CLI_MULTI_MAX];
	int n;
};

/* Command-line options of one command. */
struct cli_opts {
	const char *config;
	const char *data_dir;
	const char *org;
	const char *admin;
	const char *name;
	const char *region;
	const char *email;
	const char *display_name;
	const char *role;
	const char *listen;
	const char *params;
	const char *kind;		/* app options (cmd_app.c) */
	const char *app;
	const char *user;
	const char *group;
	const char *description;
	const char *auth_method;
	const char *claims;
	const char *settings;
	struct cli_multi redirect_uris;
	struct cli_multi post_logout_uris;
	struct cli_multi grant_types;
	bool public_client;
	bool first_party;
	bool pkce;
	bool write;
	bool dev;
	bool json;
	bool force;
	bool master;
	const char *args[4];	/* positional arguments */
	int nargs;
};

/* Parses argv (after the command words) into o; prints usage errors. */
gh_err cli_parse(int argc, char **argv, const char *allowed,
    struct cli_opts *o) GH_MUST_CHECK;
/* Loads the configuration and applies --data-dir / --listen / --dev. */
gh_err cli_config(const struct cli_opts *o, struct gh_config *cfg)
    GH_MUST_CHECK;
/* The kms settings of cfg, with the derived default paths: the master key
 * file "<data_dir>.master-key" and the key store "<data_dir>.keystore",
 * both beside the data directory, never inside it. Strings point into
 * cfg. */
void cli_kms_config(const struct gh_config *cfg, struct gh_kms_config *out);

/* Opens the store of an initialised data directory and its keys (the
 * store gets the org page keys from the kms), printing why not. Free with
 * cli_close. */
gh_err cli_store(const struct gh_config *cfg, struct gh_store **st_out,
    struct gh_kms **kms_out) GH_MUST_CHECK;
void cli_close(struct gh_store *st, struct gh_kms *kms);
/* Hands page keys from kms to st. */
void cli_store_keys(struct gh_store *st, struct gh_kms *kms);
/* The operator's name for audit events ("cli:root"). */
const char *cli_operator(void);
/* Makes a random password that meets the default policy; caller wipes
 * and frees. */
gh_err cli_random_password(char **out) GH_MUST_CHECK;

/* Adds a user to org with a password from env (or generated: then
 * *generated is set), checked against the org's policy, audited as the
 * operator, and applies the org's assignment rules to the new user (kms
 * evaluates rules on encrypted attributes). On success *pw_out holds the
 * password (caller wipes/frees). */
gh_err cli_user_create(struct gh_store *st, struct gh_kms *kms,
    const struct gh_config *cfg, const struct gh_org *org,
    const struct cli_opts *o, const char *username,
    const char *role, const char *env, char **pw_out, bool *generated,
    struct gh_user *out) GH_MUST_CHECK;

/* Creates an organisation and its tenant database, audited. Prints why
 * it fails. */
gh_err cli_org_create(struct gh_store *st, struct gh_kms *kms,
    const char *slug, const char *name, const char *region,
    struct gh_org *out) GH_MUST_CHECK;

/* Opens the store and its keys and finds --org (not deleted), printing
 * why not; GH_ERR_INVALID without --org, else GH_ERR_STORE on failure.
 * Free with cli_close. */
gh_err cli_open_org(const struct cli_opts *o, struct gh_config *cfg,
    struct gh_store **st, struct gh_kms **kms, struct gh_org *org)
    GH_MUST_CHECK;

int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_org(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_group(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_app(int argc, char **argv);

#endif
