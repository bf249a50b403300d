/*
 * config.c: configuration from defaults, a file, GATEHOUSE_* variables and
 * flags, in that order of precedence. Every key is typed and bounded; an
 * unknown key or a bad value is an error that names it and where it came
 * from. Untrusted input: the file and the environment (operator-controlled).
 */
#include "cli/cli_int.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum key_type { KEY_STR, KEY_BOOL, KEY_UINT };

struct key {
	const char *name;
	enum key_type type;
	size_t off;
	size_t size;		/* KEY_STR: buffer size */
	unsigned min, max;	/* KEY_UINT */
	const char *def;
};

#define STR(n, d) { #n, KEY_STR, offsetof(struct gh_config, n), \
	sizeof(((struct gh_config *)0)->n), 0, 0, d }
#define BOOL(n, d) { #n, KEY_BOOL, offsetof(struct gh_config, n), 0, 0, 0, d }
#define UINT(n, lo, hi, d) { #n, KEY_UINT, offsetof(struct gh_config, n), 0, \
	lo, hi, d }

static const struct key keys[] = {
	STR(data_dir, "./data"),
	STR(listen, "127.0.0.1:8080"),
	STR(base_url, ""),
	BOOL(dev, "false"),
	STR(tls_cert, ""),
	STR(tls_key, ""),
	STR(trusted_proxies, ""),
	UINT(http_threads, 0, 64, "0"),
	UINT(http_workers, 0, 64, "0"),
	UINT(max_body_bytes, 1024, 64 * 1024 * 1024, "1048576"),
	UINT(max_header_bytes, 1024, 1024 * 1024, "16384"),
	UINT(connection_timeout_s, 1, 3600, "30"),
	UINT(max_connections, 1, 100000, "1024"),
	UINT(session_lifetime_s, 60, 90 * 86400, "43200"),
	UINT(session_idle_timeout_s, 60, 90 * 86400, "1800"),
	UINT(argon2_t_cost, 2, 10, "2"),
	UINT(argon2_m_kib, 19456, 1024 * 1024, "19456"),
	UINT(argon2_parallelism, 1, 16, "1"),
	STR(default_region, "eu"),
	STR(log_level, "info"),
	STR(kms_provider, "file"),
	STR(master_key_file, ""),
	STR(key_store_file, ""),
	STR(pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so"),
	STR(pkcs11_token, "gatehouse"),
	STR(pkcs11_pin, ""),
	UINT(org_retention_days, 0, 3650, "30"),
	STR(smtp_host, ""),
	UINT(smtp_port, 1, 65535, "25"),
	STR(smtp_from, "gatehouse@localhost"),
	STR(smtp_helo, "localhost"),
	UINT(smtp_timeout_s, 1, 300, "10"),
	UINT(mfa_approval_ttl_s, 1, 600, "120"),
	UINT(oidc_key_publish_delay_s, 0, 7 * 86400, "3600"),
	UINT(oidc_backchannel_retry_s, 1, 3600, "30"),
	UINT(signin_rate_ip_per_min, 0, 100000, "300"),
	UINT(signin_rate_org_per_min, 0, 1000000, "6000"),
	UINT(lockout_failures, 0, 1000, "5"),
	UINT(lockout_max_s, 1, 86400, "3600"),
	STR(redis_url, ""),
	STR(geoip_file, ""),
	UINT(store_max_open, 4, 100000, "8"),
	UINT(store_cache_kib, 64, 1024 * 1024, "2048"),
};

static const struct key *
key_find(const char *name)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static gh_err
key_set(struct gh_config *cfg, const struct key *k, const char *v,
    const char *origin)
{
	char *p = (char *)cfg + k->off;

	switch (k->type) {
	case KEY_STR:
		if (strlen(v) >= k->size) {
			fprintf(stderr, "gatehouse: %s: %s: value too long (at "
			    "most %zu bytes)\n", origin, k->name, k->size - 1);
			return GH_ERR_INVALID;
		}
		strcpy(p, v);
		return GH_OK;
	case KEY_BOOL:
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
		    strcmp(v, "yes") == 0) {
			*(bool *)p = true;
		} else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 ||
		    strcmp(v, "no") == 0) {
			*(bool *)p = false;
		} else {
			fprintf(stderr, "gatehouse: %s: %s: expected true or "
			    "false, got '%s'\n", origin, k->name, v);
			return GH_ERR_INVALID;
		}
		return GH_OK;
	case KEY_UINT: {
		unsigned long long n;
		char *end;

		errno = 0;
		n = strtoull(v, &end, 10);
		if (!isdigit((unsigned char)v[0]) || *end != '\0' ||
		    errno != 0 || n < k->min || n > k->max) {
			fprintf(stderr, "gatehouse: %s: %s: expected an integer "
			    "from %u to %u, got '%s'\n", origin, k->name, k->min,
			    k->max, v);
			return GH_ERR_INVALID;
		}
		*(unsigned *)p = (unsigned)n;
		return GH_OK;
	}
	}
	return GH_ERR_INTERNAL;
}

gh_err
config_set(struct gh_config *cfg, const char *key, const char *value,
    const char *origin)
{
	const struct key *k = key_find(key);

	if (k == NULL) {
		fprintf(stderr, "gatehouse: %s: unknown configuration key "
		    "'%s'\n", origin, key);
		return GH_ERR_INVALID;
	}
	return key_set(cfg, k, value, origin);
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static gh_err
config_file(struct gh_config *cfg, const char *path)
{
	char line[2048], origin[PATH_MAX + 32];
	gh_err err = GH_OK;
	unsigned lineno = 0;
	FILE *f;

	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "gatehouse: config file %s: %s\n", path,
		    strerror(errno));
		return GH_ERR_INVALID;
	}
	while (err == GH_OK && fgets(line, sizeof line, f) != NULL) {
		char *s, *eq, *key, *val;
		size_t n;

		lineno++;
		snprintf(origin, sizeof origin, "%s line %u", path, lineno);
		if (strchr(line, '\n') == NULL && !feof(f)) {
			fprintf(stderr, "gatehouse: %s: line too long\n", origin);
			err = GH_ERR_INVALID;
			break;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL) {
			fprintf(stderr, "gatehouse: %s: expected key = value\n",
			    origin);
			err = GH_ERR_INVALID;
			break;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		n = strlen(val);
		if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
			val[n - 1] = '\0';
			val++;
		}
		err = config_set(cfg, key, val, origin);
	}
	if (err == GH_OK && ferror(f)) {
		fprintf(stderr, "gatehouse: config file %s: read error\n", path);
		err = GH_ERR_INVALID;
	}
	fclose(f);
	return err;
}

gh_err
config_load(struct gh_config *cfg, const char *path)
{
	gh_err err = GH_OK;

	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; err == GH_OK && i < sizeof keys / sizeof keys[0];
	    i++)
		err = key_set(cfg, &keys[i], keys[i].def, "default");
	if (err != GH_OK)
		GH_PANIC("a default does not parse");
	if (path == NULL)
		path = getenv("GATEHOUSE_CONFIG");
	if (path != NULL && path[0] != '\0')
		err = config_file(cfg, path);
	for (size_t i = 0; err == GH_OK && i < sizeof keys / sizeof keys[0];
	    i++) {
		char var[64];
		const char *v;
		size_t j;

		j = (size_t)snprintf(var, sizeof var, "GATEHOUSE_%s",
		    keys[i].name);
		for (j = 10; var[j] != '\0'; j++)
			var[j] = (char)toupper((unsigned char)var[j]);
		v = getenv(var);
		if (v != NULL)
			err = key_set(cfg, &keys[i], v, var);
	}
	return err;
}

gh_err
config_listen(const char *listen, char *host, size_t host_cap, uint16_t *port)
{
	const char *colon, *h = listen;
	size_t hlen;
	char *end;
	unsigned long p;

	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');

		if (close == NULL || close[1] != ':')
			return GH_ERR_INVALID;
		h = listen + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(listen, ':');
		if (colon == NULL)
			return GH_ERR_INVALID;
		hlen = (size_t)(colon - listen);
	}
	if (hlen == 0 || hlen >= host_cap)
		return GH_ERR_INVALID;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || *end != '\0' || errno != 0 ||
	    p > 65535)
		return GH_ERR_INVALID;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return GH_OK;
}

/* Fills the key paths left empty with "<data_dir>.master-key" and
 * "<data_dir>.keystore". */
gh_err
config_derive(struct gh_config *cfg)
{
	char dir[PATH_MAX];
	size_t n;

	gh_strlcpy(dir, cfg->data_dir, sizeof dir);
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	if (cfg->master_key_file[0] == '\0' &&
	    snprintf(cfg->master_key_file, sizeof cfg->master_key_file,
	    "%s.master-key", dir) >= (int)sizeof cfg->master_key_file)
		return GH_ERR_INVALID;
	if (cfg->key_store_file[0] == '\0' &&
	    snprintf(cfg->key_store_file, sizeof cfg->key_store_file,
	    "%s.keystore", dir) >= (int)sizeof cfg->key_store_file)
		return GH_ERR_INVALID;
	return GH_OK;
}

/* True if path names something inside dir (textually). */
static bool
inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (strncmp(path, "./", 2) == 0 && strncmp(dir, "./", 2) != 0)
		path += 2;
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

gh_err
config_check(const struct gh_config *cfg)
{
	enum gh_log_level lvl;
	char host[64];
	uint16_t port;

	if (config_listen(cfg->listen, host, sizeof host, &port) != GH_OK) {
		fprintf(stderr, "gatehouse: listen: expected HOST:PORT or "
		    "[IPv6]:PORT, got '%s'\n", cfg->listen);
		return GH_ERR_INVALID;
	}
	if (gh_log_level_parse(cfg->log_level, &lvl) != GH_OK) {
		fprintf(stderr, "gatehouse: log_level: expected debug, info, "
		    "warn or error, got '%s'\n", cfg->log_level);
		return GH_ERR_INVALID;
	}
	if (!gh_store_region_valid(cfg->default_region)) {
		fprintf(stderr, "gatehouse: default_region: expected 1-32 "
		    "chars of [a-z0-9-] starting with a letter, got '%s'\n",
		    cfg->default_region);
		return GH_ERR_INVALID;
	}
	if (cfg->data_dir[0] == '\0') {
		fprintf(stderr, "gatehouse: data_dir: must not be empty\n");
		return GH_ERR_INVALID;
	}
	if (cfg->base_url[0] != '\0' &&
	    strncmp(cfg->base_url, "http://", 7) != 0 &&
	    strncmp(cfg->base_url, "https://", 8) != 0) {
		fprintf(stderr, "gatehouse: base_url: must start with http:// "
		    "or https://\n");
		return GH_ERR_INVALID;
	}
	if (inside(cfg->master_key_file, cfg->data_dir) ||
	    inside(cfg->key_store_file, cfg->data_dir)) {
		fprintf(stderr, "gatehouse: %s: must be outside the data "
		    "directory %s, so that the keys are never copied with the "
		    "data\n", inside(cfg->master_key_file, cfg->data_dir) ?
		    "master_key_file" : "key_store_file", cfg->data_dir);
		return GH_ERR_INVALID;
	}
	if (strcmp(cfg->kms_provider, "file") != 0 &&
	    strcmp(cfg->kms_provider, "pkcs11") != 0) {
		fprintf(stderr, "gatehouse: kms_provider: expected file or "
		    "pkcs11, got '%s'\n", cfg->kms_provider);
		return GH_ERR_INVALID;
	}
	if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
		fprintf(stderr, "gatehouse: tls_cert and tls_key: set both or "
		    "neither\n");
		return GH_ERR_INVALID;
	}
	return GH_OK;
}

void
config_base_url(const struct gh_config *cfg, char *out, size_t cap)
{
	size_t n;

	if (cfg->base_url[0] != '\0') {
		gh_strlcpy(out, cfg->base_url, cap);
		n = strlen(out);
		if (n > 0 && out[n - 1] == '/')
			out[n - 1] = '\0';
		return;
	}
	snprintf(out, cap, "%s://%s", cfg->tls_cert[0] ? "https" : "http",
	    cfg->listen);
}

void
config_pw_params(const struct gh_config *cfg, struct gh_pw_params *p)
{
	p->t_cost = cfg->argon2_t_cost;
	p->m_kib = cfg->argon2_m_kib;
	p->parallelism = cfg->argon2_parallelism;
}
