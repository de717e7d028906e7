/*
 * The keys of the globals table (tinyvex.db(5)), each named once so that
 * writerd, gatewayd and the tests read and write the same ones.  Every
 * value is a JSON integer.
 */
#ifndef TINYVEX_GLOBALS_H
#define TINYVEX_GLOBALS_H

#define GLOBAL_SCHEMA_VERSION	"schema_version"	/* file format */
#define GLOBAL_MAX_TS		"max_ts"	/* newest committed ts */
#define GLOBAL_CATALOG_VERSION	"catalog_version"	/* of tables, indexes */
#define GLOBAL_RETENTION_FLOOR	"retention_floor"	/* oldest readable ts */
#define GLOBAL_GC_DOCUMENTS	"gc_documents_done"	/* GC walked to ts */
#define GLOBAL_GC_INDEXES	"gc_indexes_done"	/* the same, indexes */

#endif
