/*
 * Validators of the schema file (tinyvex-schema(5)): the "fields" and
 * "strict" of a table, compiled once from the schema's JSON into a tree
 * of types, then checked against documents without looking at the
 * schema's text again.
 */
#ifndef TINYVEX_VALIDATE_H
#define TINYVEX_VALIDATE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "errors.h"
#include "store.h"

#define VALIDATE_MAX_DEPTH	16	/* types nested in one another */
#define VALIDATE_MAX_NODES	4096	/* types in one table's fields */
#define VALIDATE_MAX_FIELDS	1024	/* fields of one object type */
#define VALIDATE_MAX_CHOICES	256	/* values of an enum, union members */
#define VALIDATE_MAX_LITERAL	1024	/* bytes of an enum's string value */
/*
 * JSON nesting of a schema file with validators: tables, a table, its
 * fields, and two levels for each type ({"object": {...}}).
 */
#define VALIDATE_JSON_DEPTH	(4 + 2 * VALIDATE_MAX_DEPTH + 2)
/* A data.path: VALIDATE_MAX_DEPTH + 1 names or [indexes], with dots. */
#define VALIDATE_PATH_MAX	((VALIDATE_MAX_DEPTH + 1) * \
				    (STORE_NAME_MAX + 1) + 1)

enum vkind {
	V_ANY,
	V_STRING,
	V_NUMBER,
	V_BOOLEAN,
	V_NULL,
	V_OBJECT_ANY,		/* "object": any object */
	V_ARRAY_ANY,		/* "array": any array */
	V_ENUM,			/* {"enum": [literals]} */
	V_ID,			/* {"id": TABLE} */
	V_ARRAY,		/* {"array": TYPE} */
	V_OBJECT,		/* {"object": {field: TYPE}}, "strict" */
	V_UNION,		/* {"union": [TYPE, ...]} */
};

struct vtype;

/* One declared field of an object type. */
struct vfield {
	char		 name[STORE_NAME_MAX + 1];
	struct vtype	*type;
};

/* One compiled type. */
struct vtype {
	enum vkind	 kind;
	int		 optional;	/* a field that may be absent */
	int		 strict;	/* V_OBJECT: undeclared refused */
	struct vfield	*fields;	/* V_OBJECT, in the schema's order */
	size_t		 nfields;
	struct vtype	**members;	/* V_UNION */
	size_t		 nmembers;
	struct vtype	*elem;		/* V_ARRAY */
	cJSON		*values;	/* V_ENUM: a copy of the literals */
	char		 table[STORE_NAME_MAX + 1];	/* V_ID */
};

/*
 * Compile a table's validator from its "fields" object and "strict"
 * member (either may be NULL; both NULL gives NULL and no error: the
 * table has no validator).  Returns the type of the whole document (an
 * object type whose undeclared system fields are always allowed), or
 * NULL with err (ValidationError naming the field of the schema, or
 * TooLarge past a limit above).
 */
struct vtype	*validate_compile(const cJSON *fields, const cJSON *strict,
		    struct tv_error *);
void		 validate_free(struct vtype *);

/*
 * Check a stored document (system fields included) against a compiled
 * table validator.  0 when it conforms; -1 with err a ValidationError
 * whose message names the path and whose data is {"path": PATH}: the
 * first declared field, in the schema's order, that fails (missing, of
 * another type, or failing inside), then the first undeclared field in
 * the document's order when the type is strict.
 */
int		 validate_doc(const struct vtype *, const cJSON *doc,
		    struct tv_error *);

#endif
