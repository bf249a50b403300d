/*
 * patch.c: SCIM PATCH (RFC 7644 section 3.5.2) applied to a resource's
 * JSON representation. The caller maps the result back to its rows, so
 * the same validation runs for PUT and PATCH.
 * Untrusted input: the Operations array and its paths, from provisioning
 * clients; at most GH_SCIM_PATCH_OPS_MAX operations, each path bounded by
 * the path parser. No secrets.
 */
#include "scim/scim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum op_kind { OP_ADD, OP_REPLACE, OP_REMOVE };

struct patch {
	char *msg;
	size_t msg_cap;
	const char **type;
};

static gh_err
bad(struct patch *pt, const char *type, const char *fmt, const char *arg)
{
	snprintf(pt->msg, pt->msg_cap, fmt, arg);
	*pt->type = type;
	return GH_ERR_INVALID;
}

/* Sets obj[key] (reusing the spelling of an existing key that matches
 * ignoring case); steals v. */
static gh_err
set_ci(json_t *obj, const char *key, json_t *v)
{
	const char *k;
	json_t *old;

	json_object_foreach(obj, k, old) {
		if (strcasecmp(k, key) == 0)
			return json_object_set_new(obj, k, v) == 0 ? GH_OK :
			    GH_ERR_NOMEM;
	}
	return json_object_set_new(obj, key, v) == 0 ? GH_OK : GH_ERR_NOMEM;
}

static void
del_ci(json_t *obj, const char *key)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		if (strcasecmp(k, key) == 0) {
			json_object_del(obj, k);
			return;
		}
	}
}

/* The child object obj[key], made when absent (unless create is false). */
static json_t *
child_obj(json_t *obj, const char *key, bool create)
{
	json_t *c = gh_scim_get_ci(obj, key);

	if (c != NULL || !create)
		return json_is_object(c) ? c : NULL;
	c = json_object();
	if (c == NULL || set_ci(obj, key, c) != GH_OK)
		return NULL;
	return c;
}

static bool
same_element(json_t *a, json_t *b)
{
	json_t *av = gh_scim_get_ci(a, "value");
	json_t *bv = gh_scim_get_ci(b, "value");

	if (json_is_object(a) && json_is_object(b) && av != NULL && bv != NULL)
		return json_equal(av, bv);
	return json_equal(a, b);
}

static gh_err
merge(json_t *dst, json_t *src)
{
	const char *k;
	json_t *v;

	json_object_foreach(src, k, v) {
		if (set_ci(dst, k, json_incref(v)) != GH_OK)
			return GH_ERR_NOMEM;
	}
	return GH_OK;
}

static gh_err
append_new(json_t *arr, json_t *value)
{
	size_t i, j;
	json_t *e, *f;
	bool dup;

	if (!json_is_array(value))
		return json_array_append(arr, value) == 0 ? GH_OK :
		    GH_ERR_NOMEM;
	json_array_foreach(value, i, e) {
		dup = false;
		json_array_foreach(arr, j, f) {
			if (same_element(e, f))
				dup = true;
		}
		if (!dup && json_array_append(arr, e) != 0)
			return GH_ERR_NOMEM;
	}
	return GH_OK;
}

/* Removes the elements of arr whose "value" is listed in value. */
static void
remove_listed(json_t *arr, json_t *value)
{
	size_t i = 0, j;
	json_t *e;
	bool hit;

	while (i < json_array_size(arr)) {
		hit = false;
		json_array_foreach(value, j, e) {
			if (same_element(json_array_get(arr, i), e))
				hit = true;
		}
		if (hit)
			json_array_remove(arr, i);
		else
			i++;
	}
}

/* An attribute without a filter: name or name.sub in container. */
static gh_err
apply_plain(struct patch *pt, enum op_kind op, json_t *container,
    const char *name, const char *sub, json_t *value)
{
	json_t *cur, *obj;

	if (sub[0] != '\0') {
		obj = child_obj(container, name, op != OP_REMOVE);
		if (obj == NULL && op == OP_REMOVE)
			return GH_OK;
		if (obj == NULL)
			return bad(pt, "invalidPath", "%s: not a complex "
			    "attribute", name);
		if (op == OP_REMOVE) {
			del_ci(obj, sub);
			return GH_OK;
		}
		return set_ci(obj, sub, json_incref(value));
	}
	cur = gh_scim_get_ci(container, name);
	if (op == OP_REMOVE) {
		if (json_is_array(cur) && json_is_array(value))
			remove_listed(cur, value);
		else
			del_ci(container, name);
		return GH_OK;
	}
	if (op == OP_ADD && json_is_array(cur))
		return append_new(cur, value);
	if (json_is_object(cur) && json_is_object(value))
		return merge(cur, value);
	return set_ci(container, name, json_incref(value));
}

/* A filtered path: name[filter] or name[filter].sub. */
static gh_err
apply_filtered(struct patch *pt, enum op_kind op, json_t *container,
    const char *name, const struct gh_scim_path *p, json_t *value)
{
	const struct gh_scim_node *root = p->filter->root;
	json_t *arr = gh_scim_get_ci(container, name), *e, *fresh;
	size_t i = 0;
	bool matched = false;

	if (arr != NULL && !json_is_array(arr))
		return bad(pt, "invalidPath", "%s: not multi-valued", name);
	if (op == OP_REMOVE) {
		/* Removing what is not there leaves the same end state: the
		 * clients retry removals, so it is not an error. */
		while (arr != NULL && i < json_array_size(arr)) {
			e = json_array_get(arr, i);
			if (json_is_object(e) && gh_scim_node_match(root, e)) {
				if (p->sub != NULL) {
					del_ci(e, p->sub);
				} else {
					json_array_remove(arr, i);
					continue;
				}
			}
			i++;
		}
		return GH_OK;
	}
	if (p->sub == NULL && !json_is_object(value))
		return bad(pt, "invalidValue", "%s: the value must be an "
		    "object", name);
	json_array_foreach(arr, i, e) {
		if (!json_is_object(e) || !gh_scim_node_match(root, e))
			continue;
		matched = true;
		if (p->sub != NULL ? set_ci(e, p->sub, json_incref(value)) :
		    merge(e, value))
			return GH_ERR_NOMEM;
	}
	if (matched)
		return GH_OK;
	/* emails[type eq "work"].value on a user without a work address:
	 * what the filter names becomes the new element. */
	if (root->op != GH_SCIM_EQ || !json_is_string(root->value) ||
	    strpbrk(root->attr, ".:") != NULL)
		return bad(pt, "noTarget", "%s: no element matches the filter",
		    name);
	if (arr == NULL) {
		arr = json_array();
		if (arr == NULL || set_ci(container, name, arr) != GH_OK)
			return GH_ERR_NOMEM;
	}
	fresh = json_object();
	if (fresh == NULL || json_object_set(fresh, root->attr, root->value) ||
	    (p->sub != NULL ? json_object_set(fresh, p->sub, value) :
	    merge(fresh, value)) || json_array_append_new(arr, fresh)) {
		json_decref(fresh);
		return GH_ERR_NOMEM;
	}
	return GH_OK;
}

static gh_err
apply_path(struct patch *pt, json_t *resource, enum op_kind op,
    const char *path_s, json_t *value)
{
	struct gh_scim_path *p = NULL;
	char name[128], sub[128], schema[256];
	json_t *container = resource;
	const char *rest;
	gh_err err;

	err = gh_scim_path_parse(path_s, &p, pt->msg, pt->msg_cap);
	if (err != GH_OK) {
		*pt->type = "invalidPath";
		return err;
	}
	rest = p->attr;
	if (strncasecmp(rest, "urn:", 4) == 0) {
		const char *colon = strrchr(rest, ':');
		size_t n = (size_t)(colon - rest);

		if (n >= sizeof schema) {
			err = bad(pt, "invalidPath", "%s: too long", "path");
			goto out;
		}
		memcpy(schema, rest, n);
		schema[n] = '\0';
		container = child_obj(resource, schema, op != OP_REMOVE);
		if (container == NULL) {
			if (op != OP_REMOVE)
				err = bad(pt, "invalidPath", "%s: not an "
				    "extension", schema);
			goto out;
		}
		rest = colon + 1;
	}
	{
		const char *dot = strchr(rest, '.');
		size_t n = dot ? (size_t)(dot - rest) : strlen(rest);

		if (n >= sizeof name ||
		    (dot && strlen(dot + 1) >= sizeof sub)) {
			err = bad(pt, "invalidPath", "%s: too long", "path");
			goto out;
		}
		memcpy(name, rest, n);
		name[n] = '\0';
		gh_strlcpy(sub, dot ? dot + 1 : "", sizeof sub);
		if (strchr(sub, '.') != NULL) {
			err = bad(pt, "invalidPath", "%s: nested too deeply",
			    p->attr);
			goto out;
		}
	}
	if (op != OP_REMOVE && value == NULL) {
		err = bad(pt, "invalidValue", "%s: a value is required",
		    p->attr);
		goto out;
	}
	if (p->filter != NULL)
		err = apply_filtered(pt, op, container, name, p, value);
	else
		err = apply_plain(pt, op, container, name, sub, value);
out:
	gh_scim_path_free(p);
	return err;
}

/* add or replace without a path: each member of value is a path. */
static gh_err
apply_members(struct patch *pt, json_t *resource, enum op_kind op,
    json_t *value)
{
	char path[GH_SCIM_FILTER_MAX + 1];
	const char *k, *k2;
	json_t *v, *v2;
	gh_err err;

	if (!json_is_object(value))
		return bad(pt, "invalidValue", "%s: must be an object without "
		    "a path", "value");
	json_object_foreach(value, k, v) {
		if (strcasecmp(k, GH_SCIM_SCHEMA_ENTERPRISE) == 0 &&
		    json_is_object(v)) {
			/* An extension schema URN holding its attributes. */
			json_object_foreach(v, k2, v2) {
				if (snprintf(path, sizeof path, "%s:%s", k, k2)
				    >= (int)sizeof path)
					return bad(pt, "invalidPath", "%s: too "
					    "long", "path");
				err = apply_path(pt, resource, op, path, v2);
				if (err != GH_OK)
					return err;
			}
			continue;
		}
		if ((err = apply_path(pt, resource, op, k, v)) != GH_OK)
			return err;
	}
	return GH_OK;
}

gh_err
gh_scim_patch_apply(json_t *resource, json_t *operations, char *msg,
    size_t msg_cap, const char **scim_type_out)
{
	struct patch pt = { msg, msg_cap, scim_type_out };
	const char *ops, *path;
	enum op_kind op;
	json_t *o;
	size_t i;
	gh_err err;

	*scim_type_out = NULL;
	if (!json_is_array(operations) || json_array_size(operations) == 0)
		return bad(&pt, "invalidSyntax", "%s: a non-empty array is "
		    "required", "Operations");
	if (json_array_size(operations) > GH_SCIM_PATCH_OPS_MAX) {
		snprintf(msg, msg_cap, "Operations: at most %d",
		    GH_SCIM_PATCH_OPS_MAX);
		*scim_type_out = "tooMany";
		return GH_ERR_LIMIT;
	}
	json_array_foreach(operations, i, o) {
		ops = json_string_value(gh_scim_get_ci(o, "op"));
		path = json_string_value(gh_scim_get_ci(o, "path"));
		if (ops == NULL || (gh_scim_get_ci(o, "path") != NULL &&
		    path == NULL))
			return bad(&pt, "invalidSyntax", "%s: each operation "
			    "needs a string op and an optional string path",
			    "Operations");
		if (strcasecmp(ops, "add") == 0)
			op = OP_ADD;
		else if (strcasecmp(ops, "replace") == 0)
			op = OP_REPLACE;
		else if (strcasecmp(ops, "remove") == 0)
			op = OP_REMOVE;
		else
			return bad(&pt, "invalidSyntax", "op: %s is not add, "
			    "replace or remove", "this");
		if (path != NULL)
			err = apply_path(&pt, resource, op, path,
			    gh_scim_get_ci(o, "value"));
		else if (op == OP_REMOVE)
			err = bad(&pt, "noTarget", "%s: remove needs a path",
			    "path");
		else
			err = apply_members(&pt, resource, op,
			    gh_scim_get_ci(o, "value"));
		if (err != GH_OK) {
			if (*scim_type_out == NULL)
				*scim_type_out = "invalidValue";
			return err;
		}
	}
	return GH_OK;
}
