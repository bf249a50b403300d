/*
 * cmd_init.c: gatehouse init. Creates the data directory, the first
 * organisation and its owner, non-interactively. Refuses an initialised
 * directory, and leaves none half-made: on a failure the files it created
 * are removed.
 * Secrets: the owner's password (GATEHOUSE_ADMIN_PASSWORD, or generated and
 * printed once), wiped after use.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p with mode 0700 for the directories it creates. */
static gh_err
make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof buf)
		return GH_ERR_INVALID;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "gatehouse: cannot create %s: %s\n", buf,
			    strerror(errno));
			return GH_ERR_INVALID;
		}
		buf[i] = i == n ? '\0' : '/';
	}
	return GH_OK;
}

static void
unlink_db(const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char p[PATH_MAX + 96];

	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
		(void)unlink(p);
	}
}

/* Refuses a weak GATEHOUSE_ADMIN_PASSWORD before anything is written. */
static gh_err
precheck_password(const char *slug, const char *name, const char *admin,
    const char *email)
{
	struct gh_pw_context pc = { admin, email, slug, name };
	const char *pw = getenv("GATEHOUSE_ADMIN_PASSWORD"), *code;
	struct gh_pw_policy pol;
	char reason[200];

	if (pw == NULL || pw[0] == '\0')
		return GH_OK;
	gh_auth_pw_policy_default(&pol);
	if (gh_auth_pw_policy_check(&pol, pw, &pc, &code, reason,
	    sizeof reason) == GH_OK)
		return GH_OK;
	fprintf(stderr, "gatehouse: GATEHOUSE_ADMIN_PASSWORD is refused by the "
	    "password policy (%s): %s\n", code, reason);
	return GH_ERR_INVALID;
}

int
cmd_init(int argc, char **argv)
{
	char dbpath[PATH_MAX + 16], tenant[PATH_MAX + 80], base[300];
	struct gh_store *st = NULL;
	struct gh_kms *kms = NULL;
	struct gh_kms_config kc;
	struct gh_config cfg;
	struct cli_opts o;
	bool made_keys = false;
	char msg[512];
	struct gh_user u;
	struct gh_org org;
	struct stat sb;
	bool generated = false;
	char *pw = NULL;
	const char *name, *region;
	gh_err err;

	memset(&org, 0, sizeof org);
	if (cli_parse(argc, argv, "config data-dir org admin org-name name "
	    "region email", &o) != GH_OK || cli_config(&o, &cfg) != GH_OK)
		return EXIT_USAGE;
	if (o.org == NULL || o.admin == NULL || o.nargs != 0) {
		fprintf(stderr, "gatehouse: init --data-dir DIR --org SLUG "
		    "--admin USERNAME [--org-name NAME] [--region R] "
		    "[--email E]\n");
		return EXIT_USAGE;
	}
	name = o.name ? o.name : o.org;
	region = o.region ? o.region : cfg.default_region;
	if (!gh_identity_slug_valid(o.org) || !gh_identity_org_name_valid(name) ||
	    !gh_store_region_valid(region) ||
	    !gh_identity_username_valid(o.admin) ||
	    (o.email && !gh_identity_email_valid(o.email))) {
		fprintf(stderr, "gatehouse: invalid %s\n",
		    !gh_identity_slug_valid(o.org) ? "--org slug (2-63 chars "
		    "of a-z, 0-9, '-')" : !gh_identity_org_name_valid(name) ?
		    "--org-name" : !gh_store_region_valid(region) ? "--region" :
		    !gh_identity_username_valid(o.admin) ? "--admin username" :
		    "--email");
		return EXIT_USAGE;
	}
	if (precheck_password(o.org, name, o.admin, o.email) != GH_OK)
		return EXIT_USAGE;
	snprintf(dbpath, sizeof dbpath, "%s/directory.db", cfg.data_dir);
	if (stat(dbpath, &sb) == 0) {
		fprintf(stderr, "gatehouse: %s is initialised already; "
		    "refusing to overwrite it\n", cfg.data_dir);
		return EXIT_FAIL;
	}
	if (make_dirs(cfg.data_dir) != GH_OK)
		return EXIT_FAIL;
	/* The master key and the key store first, beside the data. */
	cli_kms_config(&cfg, &kc);
	msg[0] = '\0';
	err = gh_kms_create(&kc, msg, sizeof msg);
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: cannot create the keys: %s\n",
		    msg[0] ? msg : gh_err_str(err));
		return EXIT_FAIL;
	}
	made_keys = true;
	err = gh_kms_open(&kc, &kms, msg, sizeof msg);
	if (err != GH_OK)
		fprintf(stderr, "gatehouse: cannot open the new keys: %s\n",
		    msg[0] ? msg : gh_err_str(err));
	if (err == GH_OK) {
		err = gh_store_open(cfg.data_dir, true, &st);
		if (err != GH_OK)
			fprintf(stderr, "gatehouse: cannot create the store in "
			    "%s: %s\n", cfg.data_dir, gh_err_str(err));
	}
	if (err == GH_OK) {
		cli_store_keys(st, kms);
		err = cli_org_create(st, kms, o.org, name, region, &org);
	}
	if (err == GH_OK)
		err = cli_user_create(st, kms, &cfg, &org, &o, o.admin, "owner",
		    "GATEHOUSE_ADMIN_PASSWORD", &pw, &generated, &u);
	cli_close(st, kms);
	if (err != GH_OK) {
		if (org.id[0] != '\0') {
			snprintf(tenant, sizeof tenant, "%s/%s/%s.db",
			    cfg.data_dir, org.region, org.id);
			unlink_db(tenant);
		}
		unlink_db(dbpath);
		if (made_keys && strcmp(cfg.kms_provider, "file") == 0)
			(void)unlink(cfg.master_key_file);
		if (made_keys)
			unlink_db(cfg.key_store_file);
		fprintf(stderr, "gatehouse: init failed; nothing was kept\n");
		return err == GH_ERR_INVALID ? EXIT_USAGE : EXIT_FAIL;
	}
	config_base_url(&cfg, base, sizeof base);
	printf("Gatehouse is initialised in %s.\n"
	    "Its keys are in %s and %s: keep them apart from the data and "
	    "from its backups.\n\n"
	    "  organisation:  %s (%s)\n"
	    "  sign-in URL:   %s/o/%s/login\n"
	    "  admin user:    %s\n", cfg.data_dir,
	    strcmp(cfg.kms_provider, "file") == 0 ? cfg.master_key_file :
	    "the PKCS#11 token", cfg.key_store_file, org.slug, org.name, base,
	    org.slug, u.username);
	if (generated)
		printf("  password:      %s\n\nThe password is shown only "
		    "once: keep it safe.\n", pw);
	else
		printf("  password:      the one in GATEHOUSE_ADMIN_PASSWORD\n");
	fflush(stdout);
	gh_str_wipe_free(pw);
	gh_wipe(&u, sizeof u);
	return 0;
}
