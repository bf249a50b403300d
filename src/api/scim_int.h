/* scim_int.h: what scim.c (Users, lists, discovery) shares with
 * scim_groups.c (Groups); not for other files. */
#ifndef GH_API_SCIM_INT_H
#define GH_API_SCIM_INT_H

#include "api/api_int.h"
#include "scim/scim.h"

#define SCIM_CT "application/scim+json"
#define SCIM_MEMBERS_MAX 10000	/* members of a group in one resource */

/* A list request: filter, startIndex and count (scim_page_read). */
struct scim_page {
	int64_t start;		/* 1-based */
	int64_t count;
	struct gh_scim_filter *filter;	/* owned; NULL without a filter */
	bool no_members;	/* excludedAttributes=members */
};

/* Builds the resource with id (*out owned by the caller). */
typedef gh_err (*scim_resource_fn)(struct api_ctx *ctx, const char *id,
    bool members, json_t **out);

/* Responses: body is consumed; errors in the RFC 7644 section 3.12 shape. */
void scim_respond(struct gh_http_req *req, unsigned status, json_t *body);
void scim_error(struct gh_http_req *req, unsigned status, const char *type,
    const char *fmt, ...) GH_PRINTF(4, 5);
void scim_err(struct gh_http_req *req, gh_err err);
/* Commits (or rolls back and answers); true when committed. */
bool scim_finish(struct api_ctx *ctx, gh_err err);

/* ctx_open plus the bearer token; on failure it has answered and closed. */
bool scim_open(struct gh_app *app, struct gh_http_req *req,
    struct api_ctx *ctx);
/* The JSON body, or NULL after answering 400. */
json_t *scim_body(struct gh_http_req *req);

void scim_location(struct api_ctx *ctx, const char *kind, const char *id,
    char out[static 512]);
gh_err scim_add_meta(struct api_ctx *ctx, json_t *r, const char *type,
    const char *kind, const char *id, int64_t created, int64_t updated);
/* If-Match: true when absent, "*" or current; else answers 412. */
bool scim_if_match(struct api_ctx *ctx, json_t *current);
/* Answers status with r, its ETag and (for 201) Location. */
void scim_respond_resource(struct api_ctx *ctx, unsigned status, json_t *r);
/* Adds {"from", "to"} under field to changes when they differ. */
void scim_diff_str(json_t *changes, const char *field, const char *from,
    const char *to);

/* Reads the list parameters; false after answering 400. */
bool scim_page_read(struct gh_http_req *req, struct scim_page *pg);
/* Answers a ListResponse from table's rows (fast: see scim.c). */
void scim_list(struct api_ctx *ctx, const struct scim_page *pg,
    const char *table, scim_resource_fn fn, const char *fast);

/* Registers the Groups routes (scim_groups.c). */
gh_err scim_routes_groups(struct gh_http_router *r);

#endif
