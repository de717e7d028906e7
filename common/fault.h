/*
 * Storage fault injection, a testing aid.  When the environment variable
 * TINYVEX_FAULT_FILE names a file, fault_init puts a shim under SQLite
 * (a VFS wrapping the default one, and an allocator wrapping SQLite's) that
 * fails storage operations while that file says so.  Its content, read at
 * most every FAULT_POLL_US, is one word:
 *
 *   full    every write and truncate fails with SQLITE_FULL
 *   ioerr   every write, sync and truncate fails with an I/O error
 *   busy    every attempt to take a write lock fails with SQLITE_BUSY
 *   nomem   every SQLite allocation fails
 *
 * Anything else (an empty file, a missing one) injects nothing.  Without
 * the variable, or in a build without fault injection, nothing changes.
 */
#ifndef TINYVEX_FAULT_H
#define TINYVEX_FAULT_H

#define FAULT_ENV		"TINYVEX_FAULT_FILE"
#define FAULT_POLL_US		(10 * 1000)	/* re-read the file */

/*
 * Install the shim when FAULT_ENV is set.  Must run before the first
 * SQLite call of the process (it configures SQLite's allocator).
 * Returns 0 (installed, or nothing to do) or -1.
 */
int	 fault_init(void);

#endif
