/*
 * rbac.c: the permission vocabulary, the built-in roles, resolving what a
 * user holds (legacy users.role plus role assignments) and the scope and
 * delegation checks every admin route relies on.
 *
 * Untrusted input: permission, role and scope names (compared against
 * fixed tables), ids (bound as SQL parameters). Secrets: none.
 */
#include "rbac/rbac.h"

#include <stdlib.h>
#include <string.h>

static const char *const perm_names[GH_RBAC_PERM_COUNT] = {
	"users.read", "users.write", "groups.read", "groups.write",
	"apps.read", "apps.write", "policies.read", "policies.write",
	"roles.read", "roles.write", "audit.read", "signins.read",
	"org.read", "org.write", "keys.write", "attributes.write",
	"tokens.write", "scim.write",
};

static const struct {
	const char *name;
	uint32_t perms;
	enum gh_rbac_scope kind;
} builtins[] = {
	{ "owner", GH_PERM_ALL, GH_SCOPE_ORG },
	/* An admin holds every permission too; what it lacks is the owner
	 * flag (struct gh_rbac_grants): it cannot manage or make owners. */
	{ "admin", GH_PERM_ALL, GH_SCOPE_ORG },
	{ "user_admin", GH_PERM_USERS_READ | GH_PERM_USERS_WRITE |
	    GH_PERM_GROUPS_READ | GH_PERM_GROUPS_WRITE | GH_PERM_SIGNINS_READ,
	    GH_SCOPE_GROUPS },
	{ "app_admin", GH_PERM_APPS_READ | GH_PERM_APPS_WRITE |
	    GH_PERM_USERS_READ, GH_SCOPE_APPS },
	{ "auditor", GH_PERM_AUDIT_READ | GH_PERM_SIGNINS_READ |
	    GH_PERM_ORG_READ | GH_PERM_USERS_READ | GH_PERM_GROUPS_READ |
	    GH_PERM_APPS_READ | GH_PERM_POLICIES_READ | GH_PERM_ROLES_READ,
	    GH_SCOPE_ORG },
};

const char *
gh_rbac_perm_name(uint32_t perm)
{
	for (unsigned i = 0; i < GH_RBAC_PERM_COUNT; i++)
		if (perm == (1u << i))
			return perm_names[i];
	return NULL;
}

uint32_t
gh_rbac_perm_bit(const char *name)
{
	if (name == NULL)
		return 0;
	for (unsigned i = 0; i < GH_RBAC_PERM_COUNT; i++)
		if (strcmp(name, perm_names[i]) == 0)
			return 1u << i;
	return 0;
}

const char *
gh_rbac_scope_name(enum gh_rbac_scope kind)
{
	switch (kind) {
	case GH_SCOPE_GROUPS:
		return "groups";
	case GH_SCOPE_APPS:
		return "apps";
	default:
		return "org";
	}
}

bool
gh_rbac_scope_parse(const char *s, enum gh_rbac_scope *out)
{
	if (s == NULL)
		return false;
	if (strcmp(s, "org") == 0)
		*out = GH_SCOPE_ORG;
	else if (strcmp(s, "groups") == 0)
		*out = GH_SCOPE_GROUPS;
	else if (strcmp(s, "apps") == 0)
		*out = GH_SCOPE_APPS;
	else
		return false;
	return true;
}

uint32_t
gh_rbac_scopable(enum gh_rbac_scope kind)
{
	switch (kind) {
	case GH_SCOPE_GROUPS:
		return GH_PERM_USERS_READ | GH_PERM_USERS_WRITE |
		    GH_PERM_GROUPS_READ | GH_PERM_GROUPS_WRITE |
		    GH_PERM_SIGNINS_READ | GH_PERM_ROLES_READ |
		    GH_PERM_ROLES_WRITE;
	case GH_SCOPE_APPS:
		return GH_PERM_APPS_READ | GH_PERM_APPS_WRITE |
		    GH_PERM_USERS_READ | GH_PERM_ROLES_READ |
		    GH_PERM_ROLES_WRITE;
	default:
		return GH_PERM_ALL;
	}
}

bool
gh_rbac_builtin(const char *name, uint32_t *perms_out,
    enum gh_rbac_scope *kind_out)
{
	if (name == NULL)
		return false;
	for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
		if (strcmp(name, builtins[i].name) != 0)
			continue;
		if (perms_out != NULL)
			*perms_out = builtins[i].perms;
		if (kind_out != NULL)
			*kind_out = builtins[i].kind;
		return true;
	}
	return false;
}

gh_err
gh_rbac_grants_add(struct gh_rbac_grants *g, uint32_t perms,
    enum gh_rbac_scope kind, const char *scope_id)
{
	struct gh_rbac_scoped *nv;
	size_t ncap;

	perms &= gh_rbac_scopable(kind);
	if (perms == 0)
		return GH_OK;
	g->any |= perms;
	if (kind == GH_SCOPE_ORG) {
		g->org |= perms;
		return GH_OK;
	}
	if (scope_id == NULL || strlen(scope_id) > GH_ID_LEN)
		return GH_ERR_INVALID;
	for (size_t i = 0; i < g->len; i++) {
		if (g->v[i].kind == kind && strcmp(g->v[i].id, scope_id) == 0) {
			g->v[i].perms |= perms;
			return GH_OK;
		}
	}
	if (g->len == g->cap) {
		ncap = g->cap ? g->cap * 2 : 8;
		nv = realloc(g->v, ncap * sizeof *nv);
		if (nv == NULL)
			return GH_ERR_NOMEM;
		g->v = nv;
		g->cap = ncap;
	}
	g->v[g->len].perms = perms;
	g->v[g->len].kind = kind;
	gh_strlcpy(g->v[g->len].id, scope_id, sizeof g->v[g->len].id);
	g->len++;
	return GH_OK;
}

void
gh_rbac_grants_free(struct gh_rbac_grants *g)
{
	if (g == NULL)
		return;
	free(g->v);
	memset(g, 0, sizeof *g);
}

bool
gh_rbac_holds(const struct gh_rbac_grants *g, uint32_t perms)
{
	return perms != 0 && (g->any & perms) == perms;
}

bool
gh_rbac_holds_org(const struct gh_rbac_grants *g, uint32_t perms)
{
	return perms != 0 && (g->org & perms) == perms;
}

/* The bits of perms held through scopes of kind matching id (or, for
 * groups, parent). */
static uint32_t
scoped_bits(const struct gh_rbac_grants *g, uint32_t perms,
    enum gh_rbac_scope kind, const char *id, const char *parent)
{
	uint32_t have = 0;

	for (size_t i = 0; i < g->len; i++) {
		if (g->v[i].kind != kind)
			continue;
		if ((id != NULL && strcmp(g->v[i].id, id) == 0) ||
		    (parent != NULL && parent[0] != '\0' &&
		    strcmp(g->v[i].id, parent) == 0))
			have |= g->v[i].perms & perms;
	}
	return have;
}

bool
gh_rbac_covers_group(const struct gh_rbac_grants *g, uint32_t perms,
    const char *group_id, const char *parent_id)
{
	uint32_t have = g->org & perms;

	if (perms == 0)
		return false;
	have |= scoped_bits(g, perms, GH_SCOPE_GROUPS, group_id, parent_id);
	return have == perms;
}

bool
gh_rbac_covers_app(const struct gh_rbac_grants *g, uint32_t perms,
    const char *app_id)
{
	uint32_t have = g->org & perms;

	if (perms == 0)
		return false;
	have |= scoped_bits(g, perms, GH_SCOPE_APPS, app_id, NULL);
	return have == perms;
}

gh_err
gh_rbac_may_grant(const struct gh_rbac_grants *granter, uint32_t perms,
    enum gh_rbac_scope kind, const struct gh_rbac_target *targets, size_t n,
    const char **missing_out, bool *out_of_scope_out)
{
	uint32_t need = perms | GH_PERM_ROLES_WRITE, lacking;
	bool ok;

	*missing_out = NULL;
	*out_of_scope_out = false;
	/* A permission held nowhere is the clearer refusal: name it first. */
	lacking = need & ~granter->any;
	for (unsigned b = 0; b < GH_RBAC_PERM_COUNT; b++) {
		if (lacking & (1u << b)) {
			*missing_out = gh_rbac_perm_name(1u << b);
			return GH_ERR_DENIED;
		}
	}
	for (unsigned b = 0; b < GH_RBAC_PERM_COUNT; b++) {
		uint32_t bit = 1u << b;

		if ((need & bit) == 0)
			continue;
		ok = gh_rbac_holds_org(granter, bit);
		if (!ok && kind != GH_SCOPE_ORG && n > 0) {
			ok = true;
			for (size_t i = 0; i < n && ok; i++)
				ok = kind == GH_SCOPE_GROUPS ?
				    gh_rbac_covers_group(granter, bit,
				    targets[i].id, targets[i].parent_id) :
				    gh_rbac_covers_app(granter, bit,
				    targets[i].id);
		}
		if (!ok) {
			*missing_out = gh_rbac_perm_name(bit);
			*out_of_scope_out = true;
			return GH_ERR_DENIED;
		}
	}
	return GH_OK;
}

gh_err
gh_rbac_perms_parse(const char *const *names, size_t n, uint32_t *perms_out,
    const char **bad_out)
{
	uint32_t bit;

	*perms_out = 0;
	*bad_out = NULL;
	for (size_t i = 0; i < n; i++) {
		bit = gh_rbac_perm_bit(names[i]);
		if (bit == 0) {
			*bad_out = names[i];
			return GH_ERR_INVALID;
		}
		*perms_out |= bit;
	}
	return GH_OK;
}
