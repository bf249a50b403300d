/*
 * rule.c: the rule expression language: a recursive-descent parser into a
 * fixed array of nodes and an evaluator over a gh_access_facts. Both pure.
 *
 * Untrusted input: the expression text from the admin API, bounded in
 * length (GH_RULE_EXPR_MAX), nesting (GH_RULE_DEPTH_MAX, which also bounds
 * the recursion) and size (GH_RULE_NODES_MAX); fuzz/fuzz_rule.c drives it.
 * Secrets: none.
 */
#include "access/access_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct parser {
	const char *s;
	size_t len, pos;
	int depth;
	struct gh_access_rule *r;
	struct gh_access_rule_error *e;
	gh_err err;
};

static gh_err
fail_at(struct parser *p, size_t pos, const char *what)
{
	if (p->err == GH_OK) {
		p->err = GH_ERR_INVALID;
		p->e->code = "invalid_rule";
		p->e->pos = pos;
		snprintf(p->e->msg, sizeof p->e->msg, "%s at position %zu",
		    what, pos);
	}
	return p->err;
}

static void
skip_ws(struct parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' ||
	    p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
	    p->s[p->pos] == '\r'))
		p->pos++;
}

static bool
is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || c == '_';
}

static bool
is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

/* The length of the name at pos (0 when none). */
static size_t
name_len(const struct parser *p)
{
	size_t n = 0;

	if (p->pos >= p->len || !is_name_start(p->s[p->pos]))
		return 0;
	while (p->pos + n < p->len && is_name_char(p->s[p->pos + n]))
		n++;
	return n;
}

/* True (and consumed) when the next token is the keyword kw. */
static bool
keyword(struct parser *p, const char *kw)
{
	size_t n;

	skip_ws(p);
	n = name_len(p);
	if (n != strlen(kw) || memcmp(p->s + p->pos, kw, n) != 0)
		return false;
	p->pos += n;
	return true;
}

/* True (and consumed) when the next token is the punctuation tok. */
static bool
punct(struct parser *p, const char *tok)
{
	size_t n = strlen(tok);

	skip_ws(p);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, tok, n) != 0)
		return false;
	p->pos += n;
	return true;
}

static int
node_new(struct parser *p, enum rule_kind kind, size_t pos)
{
	struct rule_node *n;

	if (p->r->n + p->r->lits >= GH_RULE_NODES_MAX) {
		fail_at(p, pos, "too many terms (at most 64)");
		return -1;
	}
	n = &p->r->nodes[p->r->n];
	memset(n, 0, sizeof *n);
	n->kind = kind;
	n->a = n->b = -1;
	n->pos = pos;
	return (int)p->r->n++;
}

/* A string literal into a malloc'd copy without its escapes. */
static char *
string_lit(struct parser *p)
{
	size_t start, n = 0;
	char *out;

	skip_ws(p);
	start = p->pos;
	if (p->pos >= p->len || p->s[p->pos] != '"') {
		fail_at(p, p->pos, "expected a string in double quotes");
		return NULL;
	}
	out = malloc(p->len - p->pos);	/* at least as long as needed */
	if (out == NULL) {
		p->err = GH_ERR_NOMEM;
		return NULL;
	}
	p->pos++;
	for (;;) {
		char c;

		if (p->pos >= p->len) {
			fail_at(p, start, "unterminated string");
			break;
		}
		c = p->s[p->pos++];
		if (c == '"') {
			out[n] = '\0';
			if (!gh_utf8_valid(out, n)) {
				fail_at(p, start, "string is not valid UTF-8");
				break;
			}
			return out;
		}
		if ((unsigned char)c < 0x20 || c == 0x7f) {
			fail_at(p, p->pos - 1, "control character in string");
			break;
		}
		if (c == '\\') {
			if (p->pos >= p->len || (p->s[p->pos] != '"' &&
			    p->s[p->pos] != '\\')) {
				fail_at(p, p->pos - 1, "unknown escape (only "
				    "\\\" and \\\\)");
				break;
			}
			c = p->s[p->pos++];
		}
		out[n++] = c;
	}
	free(out);
	return NULL;
}

static int parse_or(struct parser *p);

static int
parse_list(struct parser *p, int node)
{
	struct rule_node *n;
	char **vals = NULL;
	size_t count = 0;

	if (!punct(p, "["))
		return fail_at(p, p->pos, "expected '[' after in"), -1;
	do {
		char *v, **grown;

		/* Each member counts as a node. */
		if (p->r->n + p->r->lits >= GH_RULE_NODES_MAX) {
			fail_at(p, p->pos, "too many terms (at most 64)");
			break;
		}
		p->r->lits++;
		if ((v = string_lit(p)) == NULL)
			break;
		grown = realloc(vals, (count + 1) * sizeof *vals);
		if (grown == NULL) {
			free(v);
			p->err = GH_ERR_NOMEM;
			break;
		}
		vals = grown;
		vals[count++] = v;
	} while (punct(p, ","));
	n = &p->r->nodes[node];
	n->vals = vals;
	n->n_vals = count;
	if (p->err != GH_OK)
		return -1;
	if (!punct(p, "]"))
		return fail_at(p, p->pos, "expected ',' or ']'"), -1;
	return node;
}

static int
parse_cmp(struct parser *p)
{
	static const struct { const char *tok; enum rule_op op; bool kw; }
	    ops[] = { { "==", RO_EQ, false }, { "!=", RO_NE, false },
		{ "co", RO_CO, true }, { "sw", RO_SW, true },
		{ "ew", RO_EW, true }, { "in", RO_IN, true } };
	size_t start, n, i;
	struct rule_node *nd;
	int node;
	char *v;

	skip_ws(p);
	start = p->pos;
	n = name_len(p);
	if (n == 0)
		return fail_at(p, p->pos, "expected a name, group(), not or "
		    "'('"), -1;
	if (n > GH_RULE_NAME_MAX)
		return fail_at(p, p->pos, "name too long"), -1;
	if ((node = node_new(p, RK_CMP, start)) < 0)
		return -1;
	nd = &p->r->nodes[node];
	if ((nd->name = strndup(p->s + p->pos, n)) == NULL) {
		p->err = GH_ERR_NOMEM;
		return -1;
	}
	p->pos += n;
	for (i = 0; i < sizeof ops / sizeof *ops; i++)
		if (ops[i].kw ? keyword(p, ops[i].tok) : punct(p, ops[i].tok))
			break;
	if (i == sizeof ops / sizeof *ops)
		return fail_at(p, p->pos, "expected ==, !=, in, co, sw or ew"),
		    -1;
	nd->op = ops[i].op;
	if (nd->op == RO_IN)
		return parse_list(p, node);
	if ((v = string_lit(p)) == NULL)
		return -1;
	if ((nd->vals = malloc(sizeof *nd->vals)) == NULL) {
		free(v);
		p->err = GH_ERR_NOMEM;
		return -1;
	}
	nd->vals[0] = v;
	nd->n_vals = 1;
	return node;
}

static int
parse_group(struct parser *p, size_t start)
{
	struct rule_node *nd;
	int node;
	char *v;

	if ((node = node_new(p, RK_GROUP, start)) < 0)
		return -1;
	if (!punct(p, "("))
		return fail_at(p, p->pos, "expected '(' after group"), -1;
	if ((v = string_lit(p)) == NULL)
		return -1;
	nd = &p->r->nodes[node];
	nd->name = v;
	if (!punct(p, ")"))
		return fail_at(p, p->pos, "expected ')'"), -1;
	return node;
}

static int
parse_unary(struct parser *p)
{
	size_t start, save;
	int node = -1, child;

	skip_ws(p);
	start = p->pos;
	if (++p->depth > GH_RULE_DEPTH_MAX) {
		fail_at(p, start, "nested too deeply (at most 16)");
		goto out;
	}
	if (keyword(p, "not")) {
		if ((node = node_new(p, RK_NOT, start)) < 0)
			goto out;
		child = parse_unary(p);
		p->r->nodes[node].a = child;
		if (child < 0)
			node = -1;
		goto out;
	}
	if (punct(p, "(")) {
		node = parse_or(p);
		if (node >= 0 && !punct(p, ")")) {
			fail_at(p, p->pos, "expected ')'");
			node = -1;
		}
		goto out;
	}
	save = p->pos;
	if (keyword(p, "group")) {
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == '(') {
			node = parse_group(p, start);
			goto out;
		}
		p->pos = save;	/* an attribute named "group" */
	}
	node = parse_cmp(p);
out:
	p->depth--;
	return node;
}

/* One binary level: items of next joined by kw into kind nodes. */
static int
parse_binary(struct parser *p, const char *kw, enum rule_kind kind,
    int (*next)(struct parser *))
{
	int left, node;
	size_t pos;

	if ((left = next(p)) < 0)
		return -1;
	for (;;) {
		skip_ws(p);
		pos = p->pos;
		if (!keyword(p, kw))
			return left;
		if ((node = node_new(p, kind, pos)) < 0)
			return -1;
		p->r->nodes[node].a = left;
		if ((p->r->nodes[node].b = next(p)) < 0)
			return -1;
		left = node;
	}
}

static int
parse_and(struct parser *p)
{
	return parse_binary(p, "and", RK_AND, parse_unary);
}

static int
parse_or(struct parser *p)
{
	return parse_binary(p, "or", RK_OR, parse_and);
}

gh_err
gh_access_rule_parse(const char *src, size_t len, struct gh_access_rule **out,
    struct gh_access_rule_error *e)
{
	struct parser p = { .s = src, .len = len, .e = e };
	int root;

	*out = NULL;
	memset(e, 0, sizeof *e);
	if (len > GH_RULE_EXPR_MAX)
		return fail_at(&p, GH_RULE_EXPR_MAX, "expression too long "
		    "(at most 2048 bytes)");
	if (memchr(src, '\0', len) != NULL)
		return fail_at(&p, (size_t)((const char *)memchr(src, '\0',
		    len) - src), "NUL byte");
	if ((p.r = calloc(1, sizeof *p.r)) == NULL)
		return GH_ERR_NOMEM;
	skip_ws(&p);
	if (p.pos == len) {
		fail_at(&p, 0, "empty expression");
		goto out;
	}
	root = parse_or(&p);
	skip_ws(&p);
	if (p.err == GH_OK && root >= 0 && p.pos != len)
		fail_at(&p, p.pos, "unexpected text");
	if (p.err == GH_OK && root < 0)
		fail_at(&p, p.pos, "syntax error");
	p.r->root = root;
out:
	if (p.err != GH_OK) {
		gh_access_rule_free(p.r);
		return p.err;
	}
	*out = p.r;
	return GH_OK;
}

void
gh_access_rule_free(struct gh_access_rule *r)
{
	size_t i, j;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++) {
		for (j = 0; j < r->nodes[i].n_vals; j++)
			free(r->nodes[i].vals[j]);
		free(r->nodes[i].vals);
		free(r->nodes[i].name);
	}
	free(r);
}

/* ---- evaluation ---------------------------------------------------------------- */

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* strcasestr without relying on a GNU extension's locale behaviour. */
static bool
contains(const char *s, const char *needle)
{
	size_t n = strlen(needle);

	if (n == 0)
		return true;
	for (; *s != '\0'; s++)
		if (strncasecmp(s, needle, n) == 0)
			return true;
	return false;
}

static bool
cmp_eval(const struct rule_node *n, const char *v)
{
	size_t i;

	if (v == NULL)
		return n->op == RO_NE;
	switch (n->op) {
	case RO_EQ:
		return strcmp(v, n->vals[0]) == 0;
	case RO_NE:
		return strcmp(v, n->vals[0]) != 0;
	case RO_IN:
		for (i = 0; i < n->n_vals; i++)
			if (strcmp(v, n->vals[i]) == 0)
				return true;
		return false;
	case RO_CO:
		return contains(v, n->vals[0]);
	case RO_SW:
		return strncasecmp(v, n->vals[0], strlen(n->vals[0])) == 0;
	case RO_EW:
		return ends_with(v, n->vals[0]);
	}
	return false;
}

static bool
node_eval(const struct gh_access_rule *r, int i, const struct gh_access_facts *f)
{
	const struct rule_node *n;

	if (i < 0 || (size_t)i >= r->n)
		GH_PANIC("rule node %d out of range", i);
	n = &r->nodes[i];
	switch (n->kind) {
	case RK_AND:
		return node_eval(r, n->a, f) && node_eval(r, n->b, f);
	case RK_OR:
		return node_eval(r, n->a, f) || node_eval(r, n->b, f);
	case RK_NOT:
		return !node_eval(r, n->a, f);
	case RK_GROUP:
		return f->in_group(f->arg, n->name);
	case RK_CMP:
		return cmp_eval(n, f->value(f->arg, n->name));
	}
	GH_PANIC("rule node kind %d", (int)n->kind);
}

bool
gh_access_rule_eval(const struct gh_access_rule *r,
    const struct gh_access_facts *f)
{
	return node_eval(r, r->root, f);
}

bool
gh_access_rule_builtin(const char *name)
{
	return strcmp(name, "username") == 0 || strcmp(name, "email") == 0 ||
	    strcmp(name, "display_name") == 0 || strcmp(name, "state") == 0;
}
