/*
 * testing.c: the throw-away tenant database of unit tests (see testing.h).
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/testing.h"

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	if (remove(path) != 0)
		perror(path);
	return 0;
}

static void
rm_tree(const char *dir)
{
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

static gh_err
tenant_open(struct gh_test_tenant *t, const char *tag, const char *org_id)
{
	gh_err err;
	int n;

	n = snprintf(t->dir, sizeof t->dir, "/tmp/gh-%s-XXXXXX", tag);
	if (n < 0 || (size_t)n >= sizeof t->dir) {
		fprintf(stderr, "gh_test_tenant: tag %s is too long\n", tag);
		t->dir[0] = '\0';
		return GH_ERR_INVALID;
	}
	if (mkdtemp(t->dir) == NULL) {
		perror("gh_test_tenant: mkdtemp");
		t->dir[0] = '\0';
		return GH_ERR_INTERNAL;
	}
	if (org_id != NULL)
		gh_strlcpy(t->org_id, org_id, sizeof t->org_id);
	else if ((err = gh_id_new(t->org_id)) != GH_OK) {
		fprintf(stderr, "gh_test_tenant: gh_id_new: %s\n",
		    gh_err_str(err));
		return err;
	}
	if ((err = gh_store_open(t->dir, true, &t->st)) != GH_OK) {
		fprintf(stderr, "gh_test_tenant: gh_store_open %s: %s\n",
		    t->dir, gh_err_str(err));
		return err;
	}
	if ((err = gh_store_tenant(t->st, t->org_id, "eu", true,
	    &t->db)) != GH_OK) {
		fprintf(stderr, "gh_test_tenant: gh_store_tenant %s: %s\n",
		    t->org_id, gh_err_str(err));
		return err;
	}
	return GH_OK;
}

struct gh_test_tenant *
gh_test_tenant_new(const char *tag, const char *org_id)
{
	struct gh_test_tenant *t = calloc(1, sizeof *t);

	if (t == NULL) {
		fprintf(stderr, "gh_test_tenant: out of memory\n");
		return NULL;
	}
	if (tenant_open(t, tag, org_id) != GH_OK) {
		gh_test_tenant_free(t);
		return NULL;
	}
	return t;
}

void
gh_test_tenant_free(struct gh_test_tenant *t)
{
	if (t == NULL)
		return;
	gh_db_release(t->db);
	gh_store_free(t->st);
	if (t->dir[0] != '\0')
		rm_tree(t->dir);
	free(t);
}

gh_err
gh_test_user_insert(struct gh_db *db, const char *id, const char *username,
    const char *role, const char *email)
{
	return gh_db_run(db, "INSERT INTO users (id, username, username_key, "
	    "email, state, role, created_at, updated_at) VALUES (?, ?, ?, ?, "
	    "'active', ?, 0, 0)", "ttttt", id, username, username, email, role);
}

int
gh_test_tenant_setup(void **state)
{
	*state = gh_test_tenant_new(program_invocation_short_name, NULL);
	return *state == NULL ? -1 : 0;
}

int
gh_test_tenant_setup_users(void **state)
{
	struct gh_test_tenant *t;

	t = gh_test_tenant_new(program_invocation_short_name, GH_TEST_ORG);
	*state = t;
	if (t == NULL)
		return -1;
	if (gh_test_user_insert(t->db, GH_TEST_USER, "alice", "member",
	    NULL) != GH_OK || gh_test_user_insert(t->db, GH_TEST_OTHER_USER,
	    "bob", "member", NULL) != GH_OK) {
		fprintf(stderr, "gh_test_tenant: inserting the users failed\n");
		gh_test_tenant_free(t);
		*state = NULL;
		return -1;
	}
	return 0;
}

int
gh_test_tenant_teardown(void **state)
{
	gh_test_tenant_free(*state);
	*state = NULL;
	return 0;
}
