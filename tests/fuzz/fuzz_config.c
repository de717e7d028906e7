/*
 * Fuzz harness for the configuration parser: arbitrary bytes go through
 * config_parse and the result is freed.  An accepted text must leave a
 * configuration that passes the parser's own range and cross-field rules,
 * and every refusal must come with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	 cf;
	char		 err[256];
	size_t		 i;

	config_defaults(&cf);
	err[0] = '\0';
	if (config_parse(&cf, (const char *)data, size, "fuzz.conf", err,
	    sizeof(err)) == 0) {
		if (cf.norigins > CONFIG_MAX_ORIGINS ||
		    cf.chunk_bytes > cf.max_message_bytes ||
		    cf.output_soft_limit > cf.output_hard_limit ||
		    cf.ping_interval_us >= cf.idle_timeout_us ||
		    cf.max_queries < 1 || cf.max_document_depth < 1 ||
		    cf.token != NULL)
			abort();
		for (i = 0; i < cf.norigins; i++)
			if (cf.origins[i] == NULL ||
			    strncmp(cf.origins[i], "http", 4) != 0)
				abort();
	} else if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	config_free(&cf);
	return 0;
}
