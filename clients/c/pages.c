/*
 * Paginated subscriptions (DESIGN §13, "Pagination"), on the query set
 * of client.c: one db/paginate query of its own per page.  Page 0 starts
 * at the start of the index, page i at the end page i - 1 reached in its
 * first result (the server pins that end for the page's later results).
 * Once a page has its first result, its query is re-added after a
 * reconnect with that end as endCursor, so the page covers the same
 * interval of the index as before.
 *
 * The caller gets the pages' documents concatenated, once every page has
 * a value, with a status: exhausted when the last page says isDone.
 * Bounded by the caller: one page per tvx_paginate or tvx_load_more, at
 * most TVX_MAX_PAGES.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tvx_int.h"

#define TVX_MAX_PAGES	4096	/* pages of one paginated subscription */

struct page {
	struct tvx_pages	*pp;
	struct tvx_sub		*sub;
	char			*cursor;	/* where it starts, or NULL */
	char			*end;		/* pinned end, once known */
	int			 n;		/* numItems */
	cJSON			*items;		/* its documents, or NULL */
	int			 done;		/* isDone of its last result */
	int64_t			 ts;
};

struct tvx_pages {
	struct tvx_ctx		*ctx;
	cJSON			*base;		/* table, index, range, order */
	tvx_pages_cb		*cb;
	void			*arg;
	struct page		**pages;
	int			 npages;
};

/* The args of a page: base, numItems, cursor, and endCursor if given. */
static char *
page_args(struct tvx_pages *pp, const char *cursor, int n, const char *end)
{
	struct tvx_buf	 b = { 0 };
	cJSON		*a;
	char		*text;

	if ((a = cJSON_Duplicate(pp->base, 1)) == NULL)
		return NULL;
	cJSON_AddItemToObject(a, "numItems", cJSON_CreateNumber(n));
	cJSON_AddItemToObject(a, "cursor", cursor != NULL ?
	    cJSON_CreateString(cursor) : cJSON_CreateNull());
	if (end != NULL)
		cJSON_AddItemToObject(a, "endCursor", cJSON_CreateString(end));
	tvx_json_print(&b, a);
	cJSON_Delete(a);
	text = tvx_buf_steal(&b);
	return text;
}

static enum tvx_page_status
status(struct tvx_pages *pp)
{
	int	 i;

	for (i = 0; i < pp->npages; i++)
		if (pp->pages[i]->items == NULL)
			return TVX_PAGES_LOADING;
	return pp->pages[pp->npages - 1]->done ? TVX_PAGES_EXHAUSTED :
	    TVX_PAGES_CAN_LOAD_MORE;
}

enum tvx_page_status
tvx_pages_status(struct tvx_pages *pp)
{
	return status(pp);
}

static void
emit(struct tvx_pages *pp)
{
	struct tvx_buf	 b = { 0 };
	struct tvx_error err;
	const cJSON	*d;
	int64_t		 ts = 0;
	int		 i, first = 1;

	if (status(pp) == TVX_PAGES_LOADING)
		return;
	tvx_buf_addc(&b, '[');
	for (i = 0; i < pp->npages; i++) {
		if (pp->pages[i]->ts > ts)
			ts = pp->pages[i]->ts;
		cJSON_ArrayForEach(d, pp->pages[i]->items) {
			if (!first)
				tvx_buf_addc(&b, ',');
			first = 0;
			tvx_json_print(&b, d);
		}
	}
	tvx_buf_addc(&b, ']');
	if (b.failed) {
		err.code = TVX_ERR_CLIENT;
		err.kind = "Client";
		err.message = "out of memory";
		err.data = NULL;
		pp->cb(pp->ctx, pp->arg, NULL, TVX_PAGES_LOADING, ts, &err);
	} else
		pp->cb(pp->ctx, pp->arg, b.data, status(pp), ts, NULL);
	tvx_buf_free(&b);
}

static void
page_update(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct page	*p = arg;
	struct tvx_pages *pp = p->pp;
	const cJSON	*items, *cont, *done;
	const char	*why;
	char		*readd;
	cJSON		*v;

	if (err != NULL) {
		cJSON_Delete(p->items);
		p->items = NULL;
		pp->cb(ctx, pp->arg, NULL, TVX_PAGES_LOADING, ts, err);
		return;
	}
	v = tvx_json_parse(value, strlen(value), TVX_JSON_DEPTH, &why);
	items = tvx_json_get(v, "page");
	cont = tvx_json_get(v, "continueCursor");
	done = tvx_json_get(v, "isDone");
	if (!cJSON_IsArray(items) || !cJSON_IsString(cont) ||
	    !cJSON_IsBool(done)) {
		struct tvx_error	 e = { TVX_ERR_CLIENT, "Client",
		    "db/paginate answered no page", NULL };

		cJSON_Delete(v);
		pp->cb(ctx, pp->arg, NULL, TVX_PAGES_LOADING, ts, &e);
		return;
	}
	if (p->end == NULL) {
		/* The first result: its end is this page's from now on. */
		if ((p->end = strdup(cont->valuestring)) != NULL &&
		    (readd = page_args(pp, p->cursor, p->n, p->end)) != NULL) {
			tvx_sub_readd_args(p->sub, readd);
			free(readd);
		}
	}
	cJSON_Delete(p->items);
	p->items = cJSON_DetachItemFromObjectCaseSensitive(v, "page");
	p->done = cJSON_IsTrue(done);
	p->ts = ts;
	cJSON_Delete(v);
	emit(pp);
}

static int
add_page(struct tvx_pages *pp, const char *cursor, int n)
{
	struct page	*p, **np;
	char		*args;

	if (pp->npages >= TVX_MAX_PAGES) {
		errno = ENOSPC;
		return -1;
	}
	if ((np = realloc(pp->pages, (size_t)(pp->npages + 1) *
	    sizeof(*np))) == NULL)
		return -1;
	pp->pages = np;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	p->pp = pp;
	p->n = n;
	if ((cursor != NULL && (p->cursor = strdup(cursor)) == NULL) ||
	    (args = page_args(pp, cursor, n, NULL)) == NULL) {
		free(p->cursor);
		free(p);
		return -1;
	}
	p->sub = tvx_subscribe_own(pp->ctx, "db/paginate", args, page_update,
	    p);
	free(args);
	if (p->sub == NULL) {
		free(p->cursor);
		free(p);
		return -1;
	}
	pp->pages[pp->npages++] = p;
	return 0;
}

struct tvx_pages *
tvx_paginate(struct tvx_ctx *ctx, const char *args, int initial,
    tvx_pages_cb *cb, void *arg)
{
	struct tvx_pages	*pp;
	const char		*why;

	if (cb == NULL || initial < 1) {
		errno = EINVAL;
		return NULL;
	}
	if ((pp = calloc(1, sizeof(*pp))) == NULL)
		return NULL;
	pp->ctx = ctx;
	pp->cb = cb;
	pp->arg = arg;
	if (args == NULL)
		args = "{}";
	pp->base = tvx_json_parse(args, strlen(args), TVX_JSON_DEPTH, &why);
	if (!cJSON_IsObject(pp->base) ||
	    tvx_json_get(pp->base, "numItems") != NULL ||
	    tvx_json_get(pp->base, "cursor") != NULL ||
	    tvx_json_get(pp->base, "endCursor") != NULL) {
		cJSON_Delete(pp->base);
		free(pp);
		errno = EINVAL;
		return NULL;
	}
	if (add_page(pp, NULL, initial) == -1) {
		tvx_pages_free(pp);
		return NULL;
	}
	return pp;
}

int
tvx_load_more(struct tvx_pages *pp, int n)
{
	struct page	*last = pp->pages[pp->npages - 1];

	if (n < 1) {
		errno = EINVAL;
		return -1;
	}
	if (last->end == NULL || status(pp) != TVX_PAGES_CAN_LOAD_MORE) {
		errno = EAGAIN;
		return -1;
	}
	return add_page(pp, last->end, n);
}

void
tvx_pages_free(struct tvx_pages *pp)
{
	int	 i;

	if (pp == NULL)
		return;
	for (i = 0; i < pp->npages; i++) {
		tvx_unsubscribe(pp->pages[i]->sub);
		free(pp->pages[i]->cursor);
		free(pp->pages[i]->end);
		cJSON_Delete(pp->pages[i]->items);
		free(pp->pages[i]);
	}
	free(pp->pages);
	cJSON_Delete(pp->base);
	free(pp);
}
