/*
 * filter.c: the SCIM filter language (RFC 7644 section 3.4.2.2) and PATCH
 * paths: a recursive-descent parser into a fixed pool of nodes, and an
 * evaluator over a resource's JSON representation.
 * Untrusted input: the filter and path text, from provisioning clients;
 * bounded to GH_SCIM_FILTER_MAX bytes, GH_SCIM_FILTER_DEPTH levels and
 * GH_SCIM_FILTER_NODES nodes. No secrets.
 */
#include "scim/scim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct parser {
	const char *s;
	size_t pos, len;
	struct gh_scim_filter *f;
	int depth;
	char *msg;
	size_t msg_cap;
};

static gh_err
fail(struct parser *p, gh_err err, const char *what)
{
	snprintf(p->msg, p->msg_cap, "%s at offset %zu", what, p->pos);
	return err;
}

static void
skip_ws(struct parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' ||
	    p->s[p->pos] == '\t'))
		p->pos++;
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_name_char(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	    c == ':' || c == '.' || c == '$';
}

/* True (and consumes it) when the keyword kw is next, as a whole word. */
static bool
keyword(struct parser *p, const char *kw)
{
	size_t n = strlen(kw);

	if (p->len - p->pos < n || strncasecmp(p->s + p->pos, kw, n) != 0)
		return false;
	if (p->pos + n < p->len && is_name_char(p->s[p->pos + n]))
		return false;
	p->pos += n;
	return true;
}

static gh_err
node_new(struct parser *p, enum gh_scim_op op, struct gh_scim_node **out)
{
	struct gh_scim_node *n;

	if (p->f->n_nodes == GH_SCIM_FILTER_NODES)
		return fail(p, GH_ERR_LIMIT, "filter has too many nodes");
	n = &p->f->nodes[p->f->n_nodes++];
	memset(n, 0, sizeof *n);
	n->op = op;
	*out = n;
	return GH_OK;
}

static const char *const core_prefixes[] = {
	GH_SCIM_SCHEMA_USER ":", GH_SCIM_SCHEMA_GROUP ":", NULL
};

/* Reads an attribute path; strips the core schema URN. */
static gh_err
attr_path(struct parser *p, char **out)
{
	size_t start = p->pos, n;
	const char *a;

	*out = NULL;
	while (p->pos < p->len && is_name_char(p->s[p->pos]))
		p->pos++;
	n = p->pos - start;
	a = p->s + start;
	if (n == 0 || !(is_alpha(a[0]) || a[0] == '$'))
		return fail(p, GH_ERR_INVALID, "attribute name expected");
	if (a[n - 1] == '.' || a[n - 1] == ':')
		return fail(p, GH_ERR_INVALID, "attribute name is cut short");
	for (size_t i = 0; core_prefixes[i] != NULL; i++) {
		size_t k = strlen(core_prefixes[i]);

		if (n > k && strncasecmp(a, core_prefixes[i], k) == 0) {
			a += k;
			n -= k;
			break;
		}
	}
	if (strncasecmp(a, "urn:", 4) != 0 && memchr(a, ':', n) != NULL)
		return fail(p, GH_ERR_INVALID, "bad attribute name");
	*out = strndup(a, n);
	return *out != NULL ? GH_OK : GH_ERR_NOMEM;
}

/* A JSON string, number, true, false or null. */
static gh_err
comp_value(struct parser *p, json_t **out)
{
	size_t start = p->pos;
	json_error_t je;

	*out = NULL;
	if (p->pos < p->len && p->s[p->pos] == '"') {
		p->pos++;
		while (p->pos < p->len && p->s[p->pos] != '"') {
			if (p->s[p->pos] == '\\')
				p->pos++;
			p->pos++;
		}
		if (p->pos >= p->len)
			return fail(p, GH_ERR_INVALID, "unterminated string");
		p->pos++;
	} else if (keyword(p, "true")) {
		*out = json_true();
		return GH_OK;
	} else if (keyword(p, "false")) {
		*out = json_false();
		return GH_OK;
	} else if (keyword(p, "null")) {
		*out = json_null();
		return GH_OK;
	} else {
		while (p->pos < p->len && strchr("-+.eE0123456789",
		    p->s[p->pos]) != NULL)
			p->pos++;
		if (p->pos == start)
			return fail(p, GH_ERR_INVALID, "value expected");
	}
	*out = json_loadb(p->s + start, p->pos - start, JSON_DECODE_ANY, &je);
	if (*out == NULL || !(json_is_string(*out) || json_is_number(*out))) {
		json_decref(*out);
		*out = NULL;
		p->pos = start;
		return fail(p, GH_ERR_INVALID, "bad value");
	}
	return GH_OK;
}

static const struct {
	const char *name;
	enum gh_scim_op op;
} ops[] = {
	{ "eq", GH_SCIM_EQ }, { "ne", GH_SCIM_NE }, { "co", GH_SCIM_CO },
	{ "sw", GH_SCIM_SW }, { "ew", GH_SCIM_EW }, { "gt", GH_SCIM_GT },
	{ "ge", GH_SCIM_GE }, { "lt", GH_SCIM_LT }, { "le", GH_SCIM_LE },
};

static gh_err parse_or(struct parser *p, struct gh_scim_node **out);

static gh_err
enter(struct parser *p)
{
	if (++p->depth > GH_SCIM_FILTER_DEPTH)
		return fail(p, GH_ERR_LIMIT, "filter is nested too deeply");
	return GH_OK;
}

static gh_err
expect(struct parser *p, char c, const char *what)
{
	skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != c)
		return fail(p, GH_ERR_INVALID, what);
	p->pos++;
	return GH_OK;
}

/* "(" filter ")" after the "(" was seen. */
static gh_err
group(struct parser *p, char close, struct gh_scim_node **out)
{
	gh_err err;

	if ((err = enter(p)) != GH_OK)
		return err;
	if ((err = parse_or(p, out)) != GH_OK)
		return err;
	p->depth--;
	return expect(p, close, close == ')' ? "')' expected" : "']' expected");
}

static gh_err
parse_attr_exp(struct parser *p, struct gh_scim_node **out)
{
	struct gh_scim_node *n = NULL, *sub = NULL;
	char *attr = NULL;
	size_t i;
	gh_err err;

	if ((err = attr_path(p, &attr)) != GH_OK)
		goto out;
	if (p->pos < p->len && p->s[p->pos] == '[') {
		p->pos++;
		if ((err = group(p, ']', &sub)) != GH_OK ||
		    (err = node_new(p, GH_SCIM_VALUE_PATH, &n)) != GH_OK)
			goto out;
		n->left = sub;
		goto done;
	}
	skip_ws(p);
	if (keyword(p, "pr")) {
		if ((err = node_new(p, GH_SCIM_PR, &n)) != GH_OK)
			goto out;
		goto done;
	}
	for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (keyword(p, ops[i].name))
			break;
	if (i == sizeof ops / sizeof ops[0]) {
		err = fail(p, GH_ERR_INVALID, "operator expected");
		goto out;
	}
	if ((err = node_new(p, ops[i].op, &n)) != GH_OK)
		goto out;
	skip_ws(p);
	if ((err = comp_value(p, &n->value)) != GH_OK)
		goto out;
done:
	n->attr = attr;
	attr = NULL;
	*out = n;
out:
	free(attr);
	return err;
}

static gh_err
parse_unary(struct parser *p, struct gh_scim_node **out)
{
	struct gh_scim_node *n, *inner;
	gh_err err;

	skip_ws(p);
	if (p->pos >= p->len)
		return fail(p, GH_ERR_INVALID, "filter expected");
	if (p->s[p->pos] == '(') {
		p->pos++;
		return group(p, ')', out);
	}
	if (keyword(p, "not")) {
		if ((err = expect(p, '(', "'(' expected after not")) != GH_OK ||
		    (err = group(p, ')', &inner)) != GH_OK ||
		    (err = node_new(p, GH_SCIM_NOT, &n)) != GH_OK)
			return err;
		n->left = inner;
		*out = n;
		return GH_OK;
	}
	return parse_attr_exp(p, out);
}

static gh_err
parse_and(struct parser *p, struct gh_scim_node **out)
{
	struct gh_scim_node *l, *r, *n;
	gh_err err;

	if ((err = parse_unary(p, &l)) != GH_OK)
		return err;
	for (;;) {
		skip_ws(p);
		if (!keyword(p, "and"))
			break;
		if ((err = parse_unary(p, &r)) != GH_OK ||
		    (err = node_new(p, GH_SCIM_AND, &n)) != GH_OK)
			return err;
		n->left = l;
		n->right = r;
		l = n;
	}
	*out = l;
	return GH_OK;
}

static gh_err
parse_or(struct parser *p, struct gh_scim_node **out)
{
	struct gh_scim_node *l, *r, *n;
	gh_err err;

	if ((err = parse_and(p, &l)) != GH_OK)
		return err;
	for (;;) {
		skip_ws(p);
		if (!keyword(p, "or"))
			break;
		if ((err = parse_and(p, &r)) != GH_OK ||
		    (err = node_new(p, GH_SCIM_OR, &n)) != GH_OK)
			return err;
		n->left = l;
		n->right = r;
		l = n;
	}
	*out = l;
	return GH_OK;
}

static gh_err
parser_init(struct parser *p, const char *s, char *msg, size_t msg_cap)
{
	memset(p, 0, sizeof *p);
	p->s = s;
	p->msg = msg;
	p->msg_cap = msg_cap;
	if (msg_cap > 0)
		msg[0] = '\0';
	p->len = strnlen(s, GH_SCIM_FILTER_MAX + 1);
	if (p->len > GH_SCIM_FILTER_MAX) {
		snprintf(msg, msg_cap, "longer than %d bytes",
		    GH_SCIM_FILTER_MAX);
		return GH_ERR_LIMIT;
	}
	if (!gh_utf8_valid(s, p->len)) {
		snprintf(msg, msg_cap, "not valid UTF-8");
		return GH_ERR_INVALID;
	}
	p->f = calloc(1, sizeof *p->f);
	return p->f != NULL ? GH_OK : GH_ERR_NOMEM;
}

gh_err
gh_scim_filter_parse(const char *s, struct gh_scim_filter **out, char *msg,
    size_t msg_cap)
{
	struct parser p;
	gh_err err;

	*out = NULL;
	if ((err = parser_init(&p, s, msg, msg_cap)) != GH_OK)
		return err;
	err = parse_or(&p, &p.f->root);
	if (err == GH_OK) {
		skip_ws(&p);
		if (p.pos != p.len)
			err = fail(&p, GH_ERR_INVALID, "unexpected text");
	}
	if (err != GH_OK) {
		gh_scim_filter_free(p.f);
		return err;
	}
	*out = p.f;
	return GH_OK;
}

void
gh_scim_filter_free(struct gh_scim_filter *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n_nodes; i++) {
		free(f->nodes[i].attr);
		json_decref(f->nodes[i].value);
	}
	free(f);
}

gh_err
gh_scim_path_parse(const char *s, struct gh_scim_path **out, char *msg,
    size_t msg_cap)
{
	struct gh_scim_path *path = NULL;
	struct parser p;
	gh_err err;

	*out = NULL;
	if ((err = parser_init(&p, s, msg, msg_cap)) != GH_OK)
		return err;
	path = calloc(1, sizeof *path);
	if (path == NULL) {
		err = GH_ERR_NOMEM;
		goto out;
	}
	if ((err = attr_path(&p, &path->attr)) != GH_OK)
		goto out;
	if (p.pos < p.len && p.s[p.pos] == '[') {
		if (strchr(path->attr, '.') != NULL &&
		    strncasecmp(path->attr, "urn:", 4) != 0) {
			err = fail(&p, GH_ERR_INVALID,
			    "filter on a sub-attribute");
			goto out;
		}
		p.pos++;
		if ((err = group(&p, ']', &p.f->root)) != GH_OK)
			goto out;
		path->filter = p.f;
		p.f = NULL;
		if (p.pos < p.len && p.s[p.pos] == '.') {
			p.pos++;
			if ((err = attr_path(&p, &path->sub)) != GH_OK)
				goto out;
			if (strpbrk(path->sub, ".:") != NULL) {
				err = fail(&p, GH_ERR_INVALID,
				    "bad sub-attribute");
				goto out;
			}
		}
	}
	if (p.pos != p.len)
		err = fail(&p, GH_ERR_INVALID, "unexpected text");
out:
	gh_scim_filter_free(p.f);
	if (err != GH_OK) {
		gh_scim_path_free(path);
		return err;
	}
	*out = path;
	return GH_OK;
}

void
gh_scim_path_free(struct gh_scim_path *path)
{
	if (path == NULL)
		return;
	free(path->attr);
	gh_scim_filter_free(path->filter);
	free(path->sub);
	free(path);
}

/* ---- evaluation -------------------------------------------------------- */

json_t *
gh_scim_get_ci(json_t *obj, const char *key)
{
	const char *k;
	json_t *v;

	if (!json_is_object(obj))
		return NULL;
	if ((v = json_object_get(obj, key)) != NULL)
		return v;
	json_object_foreach(obj, k, v) {
		if (strcasecmp(k, key) == 0)
			return v;
	}
	return NULL;
}

/* Splits "urn:...:name.sub" or "name.sub": *container_out is the object
 * holding name (the resource or an extension object, NULL if absent). */
static void
split_attr(json_t *resource, const char *attr, json_t **container_out,
    char name[static 128], char sub[static 128])
{
	const char *rest = attr, *dot;
	char schema[256];

	*container_out = resource;
	name[0] = sub[0] = '\0';
	if (strncasecmp(attr, "urn:", 4) == 0) {
		const char *colon = strrchr(attr, ':');
		size_t n = (size_t)(colon - attr);

		if (n >= sizeof schema) {
			*container_out = NULL;
			return;
		}
		memcpy(schema, attr, n);
		schema[n] = '\0';
		*container_out = gh_scim_get_ci(resource, schema);
		rest = colon + 1;
	}
	dot = strchr(rest, '.');
	if (dot == NULL) {
		gh_strlcpy(name, rest, 128);
	} else {
		size_t n = (size_t)(dot - rest);

		if (n >= 128)
			n = 127;
		memcpy(name, rest, n);
		name[n] = '\0';
		gh_strlcpy(sub, dot + 1, 128);
	}
}

static void
collect(json_t *v, const char *sub, json_t *out)
{
	if (json_is_array(v)) {
		size_t i;
		json_t *e;

		json_array_foreach(v, i, e) {
			if (json_is_object(e))
				collect(gh_scim_get_ci(e, sub[0] ? sub :
				    "value"), "", out);
			else if (e != NULL)
				json_array_append(out, e);
		}
		return;
	}
	if (json_is_object(v)) {
		if (sub[0] != '\0')
			collect(gh_scim_get_ci(v, sub), "", out);
		return;
	}
	if (v != NULL && sub[0] == '\0')
		json_array_append(out, v);
}

static bool
str_has(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return n == 0;
}

static bool
case_exact(const char *attr)
{
	return strcasecmp(attr, "id") == 0 ||
	    strcasecmp(attr, "externalId") == 0 ||
	    strcasecmp(attr, "meta.version") == 0;
}

static int
order(int c, enum gh_scim_op op)
{
	switch (op) {
	case GH_SCIM_GT:
		return c > 0;
	case GH_SCIM_GE:
		return c >= 0;
	case GH_SCIM_LT:
		return c < 0;
	case GH_SCIM_LE:
		return c <= 0;
	default:
		return c == 0;
	}
}

static bool
compare_str(const char *v, const char *c, enum gh_scim_op op, bool exact)
{
	size_t vl = strlen(v), cl = strlen(c);
	int64_t a, b;

	switch (op) {
	case GH_SCIM_EQ:
		return exact ? strcmp(v, c) == 0 : strcasecmp(v, c) == 0;
	case GH_SCIM_CO:
		return str_has(v, c);
	case GH_SCIM_SW:
		return vl >= cl && strncasecmp(v, c, cl) == 0;
	case GH_SCIM_EW:
		return vl >= cl && strcasecmp(v + vl - cl, c) == 0;
	default:
		break;
	}
	/* Times written with and without milliseconds compare as times. */
	if (gh_time_parse_rfc3339(v, &a) == GH_OK &&
	    gh_time_parse_rfc3339(c, &b) == GH_OK)
		return order(a < b ? -1 : a > b, op);
	return order(exact ? strcmp(v, c) : strcasecmp(v, c), op);
}

static bool
compare_one(json_t *v, json_t *c, enum gh_scim_op op, bool exact)
{
	if (json_is_string(v) && json_is_string(c))
		return compare_str(json_string_value(v), json_string_value(c),
		    op, exact);
	if (json_is_number(v) && json_is_number(c)) {
		double a = json_number_value(v), b = json_number_value(c);

		if (op == GH_SCIM_CO || op == GH_SCIM_SW || op == GH_SCIM_EW)
			return false;
		return order(a < b ? -1 : a > b, op);
	}
	if (op == GH_SCIM_EQ)
		return json_equal(v, c);
	return false;
}

static bool
attr_match(const struct gh_scim_node *n, json_t *resource)
{
	char name[128], sub[128];
	json_t *container, *vals;
	enum gh_scim_op op = n->op == GH_SCIM_NE ? GH_SCIM_EQ : n->op;
	bool hit = false;
	size_t i;
	json_t *v;

	split_attr(resource, n->attr, &container, name, sub);
	vals = json_array();
	if (vals == NULL)
		return false;
	if (container != NULL)
		collect(gh_scim_get_ci(container, name), sub, vals);
	json_array_foreach(vals, i, v) {
		if (op == GH_SCIM_PR)
			hit = !json_is_null(v) && !(json_is_string(v) &&
			    json_string_length(v) == 0);
		else
			hit = compare_one(v, n->value, op, case_exact(n->attr));
		if (hit)
			break;
	}
	/* "eq null" matches an absent attribute. */
	if (json_array_size(vals) == 0 && op == GH_SCIM_EQ &&
	    json_is_null(n->value))
		hit = true;
	json_decref(vals);
	return n->op == GH_SCIM_NE ? !hit : hit;
}

static bool
value_path_match(const struct gh_scim_node *n, json_t *resource)
{
	char name[128], sub[128];
	json_t *container, *v, *e;
	size_t i;

	split_attr(resource, n->attr, &container, name, sub);
	v = gh_scim_get_ci(container, name);
	if (json_is_object(v))
		return gh_scim_node_match(n->left, v);
	json_array_foreach(v, i, e) {
		if (json_is_object(e) && gh_scim_node_match(n->left, e))
			return true;
	}
	return false;
}

bool
gh_scim_node_match(const struct gh_scim_node *n, json_t *resource)
{
	switch (n->op) {
	case GH_SCIM_AND:
		return gh_scim_node_match(n->left, resource) &&
		    gh_scim_node_match(n->right, resource);
	case GH_SCIM_OR:
		return gh_scim_node_match(n->left, resource) ||
		    gh_scim_node_match(n->right, resource);
	case GH_SCIM_NOT:
		return !gh_scim_node_match(n->left, resource);
	case GH_SCIM_VALUE_PATH:
		return value_path_match(n, resource);
	default:
		return attr_match(n, resource);
	}
}

bool
gh_scim_filter_match(const struct gh_scim_filter *f, json_t *resource)
{
	return gh_scim_node_match(f->root, resource);
}

bool
gh_scim_filter_is_eq(const struct gh_scim_filter *f, const char *attr,
    const char **value_out)
{
	const struct gh_scim_node *n = f->root;

	if (n->op != GH_SCIM_EQ || strcasecmp(n->attr, attr) != 0 ||
	    !json_is_string(n->value))
		return false;
	*value_out = json_string_value(n->value);
	return true;
}
