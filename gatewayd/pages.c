/*
 * Pinned live pages (DESIGN §3).  A subscribed db/paginate without
 * endCursor keeps, after its first result, the end that result reached:
 * once its execution has run successfully, its args gain that end as
 * endCursor and it is keyed again under them.  Every later run reads the
 * interval (cursor, end], so the pages of one subscription set never
 * overlap and never leave a gap however the documents move, and a client
 * that re-adds the page with that endCursor (after a reconnect) shares
 * the very same execution.  A new subscription with the original args
 * finds no execution under them and gets a first page of its own.
 *
 * The end is a property of the first result, not of a connection: every
 * subscription that shares the execution before its first run receives
 * that same first result, so all of them are pinned at the same end.
 */
#include <string.h>

#include "gatewayd.h"
#include "json.h"
#include "log.h"
#include "udf.h"

void
pages_pin(struct gateway *gw, struct exec *ex)
{
	const cJSON	*e;
	cJSON		*args;
	struct buf	 cc;
	enum json_err	 jerr;
	size_t		 off;

	if (!ex->ok || udf_lookup(ex->udf_path) != UDF_PAGINATE)
		return;
	/* The arguments are kept as the key's canonical text. */
	off = strlen(ex->udf_path) + 1;
	if ((args = json_parse(ex->key + off, ex->keylen - off,
	    JSON_MAX_DEPTH + 1, &jerr)) == NULL)
		fatalx("%s: canonical args do not parse: %s", __func__,
		    json_strerror(jerr));
	e = json_get(args, "endCursor");
	if (e != NULL && !cJSON_IsNull(e)) {
		cJSON_Delete(args);
		return;
	}
	buf_init(&cc);
	if (paginate_continue_cursor(ex->value, ex->valuelen, &cc) == -1) {
		log_warnx("%s: a page without a continueCursor", __func__);
		buf_free(&cc);
		cJSON_Delete(args);
		return;
	}
	buf_addc(&cc, '\0');
	cJSON_DeleteItemFromObjectCaseSensitive(args, "endCursor");
	cJSON_AddItemToObject(args, "endCursor", cJSON_CreateString(cc.data));
	buf_free(&cc);
	query_exec_rekey(gw, ex, args);
	cJSON_Delete(args);
}
