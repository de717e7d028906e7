/*
 * Storage fault injection under SQLite (see fault.h): a VFS that wraps the
 * default one and fails writes, syncs, truncates and write locks on
 * demand, and an allocator that wraps SQLite's and fails on demand.  The
 * demand is the content of the file named by TINYVEX_FAULT_FILE, re-read
 * at most every FAULT_POLL_US, so a test can flip it while the daemon
 * runs.  Compiled in only with the fault_injection build option; without
 * it fault_init does nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fault.h"
#include "log.h"
#include "util.h"

#ifdef TINYVEX_FAULT_INJECTION

#define FAULT_VFS_NAME	"tinyvex-fault"
#define FAULT_WORD_MAX	16		/* longest word read from the file */
#define FAULT_WAL_WRITE	0		/* the WAL write lock's -shm slot */

enum fault_kind {
	FAULT_NONE,
	FAULT_FULL,
	FAULT_IOERR,
	FAULT_BUSY,
	FAULT_NOMEM,
};

static const char *const fault_names[] = {
	[FAULT_NONE] = "none",
	[FAULT_FULL] = "full",
	[FAULT_IOERR] = "ioerr",
	[FAULT_BUSY] = "busy",
	[FAULT_NOMEM] = "nomem",
};

/* A file of the shim: its methods, then the wrapped VFS's file. */
struct fault_file {
	sqlite3_file	 base;		/* pMethods = &fault_io */
	sqlite3_file	*real;		/* the wrapped file, right after */
};

/* The shim's state: the only mutable state of this module. */
static struct {
	const char		*path;		/* the control file */
	enum fault_kind		 kind;		/* what is injected now */
	int64_t			 checked_us;	/* mono_us of the last read */
	sqlite3_vfs		*real;		/* the wrapped VFS */
	sqlite3_vfs		 vfs;		/* the shim */
	sqlite3_mem_methods	 mem;		/* SQLite's own allocator */
} fstate;

/* What the control file asks for now; re-read at most every poll. */
static enum fault_kind
fault_current(void)
{
	char		 word[FAULT_WORD_MAX];
	enum fault_kind	 kind = FAULT_NONE;
	int64_t		 now = mono_us();
	ssize_t		 n;
	size_t		 k;
	int		 fd, saved = errno;

	if (fstate.checked_us != 0 && now - fstate.checked_us < FAULT_POLL_US)
		return fstate.kind;
	fstate.checked_us = now;
	if ((fd = open(fstate.path, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, word, sizeof(word) - 1);
		close(fd);
		if (n > 0) {
			word[n] = '\0';
			word[strcspn(word, " \t\r\n")] = '\0';
			for (k = 1; k < nitems(fault_names); k++)
				if (strcmp(word, fault_names[k]) == 0)
					kind = (enum fault_kind)k;
		}
	}
	if (kind != fstate.kind)
		log_info("fault injection: %s", fault_names[kind]);
	fstate.kind = kind;
	errno = saved;
	return kind;
}

#define REAL(f)		(((struct fault_file *)(f))->real)

static int
f_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int
f_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int
f_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	switch (fault_current()) {
	case FAULT_FULL:
		return SQLITE_FULL;
	case FAULT_IOERR:
		return SQLITE_IOERR_WRITE;
	default:
		return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
	}
}

static int
f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	switch (fault_current()) {
	case FAULT_FULL:
		return SQLITE_FULL;
	case FAULT_IOERR:
		return SQLITE_IOERR_TRUNCATE;
	default:
		return REAL(f)->pMethods->xTruncate(REAL(f), size);
	}
}

static int
f_sync(sqlite3_file *f, int flags)
{
	if (fault_current() == FAULT_IOERR)
		return SQLITE_IOERR_FSYNC;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int
f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int
f_lock(sqlite3_file *f, int level)
{
	if (level > SQLITE_LOCK_SHARED && fault_current() == FAULT_BUSY)
		return SQLITE_BUSY;
	return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int
f_unlock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int
f_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int
f_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
f_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
f_device_chars(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	if (REAL(f)->pMethods->iVersion < 2)
		return SQLITE_IOERR_SHMMAP;
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

/* Busy: another writer holds the WAL write lock, as far as SQLite sees. */
static int
f_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	if (REAL(f)->pMethods->iVersion < 2)
		return SQLITE_IOERR_SHMLOCK;
	if ((flags & SQLITE_SHM_LOCK) && (flags & SQLITE_SHM_EXCLUSIVE) &&
	    off == FAULT_WAL_WRITE && fault_current() == FAULT_BUSY)
		return SQLITE_BUSY;
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void
f_shm_barrier(sqlite3_file *f)
{
	if (REAL(f)->pMethods->iVersion >= 2)
		REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
f_shm_unmap(sqlite3_file *f, int delete)
{
	if (REAL(f)->pMethods->iVersion < 2)
		return SQLITE_OK;
	return REAL(f)->pMethods->xShmUnmap(REAL(f), delete);
}

static int
f_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
	if (REAL(f)->pMethods->iVersion < 3) {
		*pp = NULL;
		return SQLITE_OK;
	}
	return REAL(f)->pMethods->xFetch(REAL(f), off, amt, pp);
}

static int
f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	if (REAL(f)->pMethods->iVersion < 3)
		return SQLITE_OK;
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods fault_io = {
	.iVersion = 3,
	.xClose = f_close,
	.xRead = f_read,
	.xWrite = f_write,
	.xTruncate = f_truncate,
	.xSync = f_sync,
	.xFileSize = f_file_size,
	.xLock = f_lock,
	.xUnlock = f_unlock,
	.xCheckReservedLock = f_check_reserved,
	.xFileControl = f_file_control,
	.xSectorSize = f_sector_size,
	.xDeviceCharacteristics = f_device_chars,
	.xShmMap = f_shm_map,
	.xShmLock = f_shm_lock,
	.xShmBarrier = f_shm_barrier,
	.xShmUnmap = f_shm_unmap,
	.xFetch = f_fetch,
	.xUnfetch = f_unfetch,
};

/* The VFS: open wraps the file; everything else is the wrapped VFS's. */

static int
v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *outflags)
{
	struct fault_file	*ff = (struct fault_file *)f;
	int			 rc;

	(void)vfs;
	ff->real = (sqlite3_file *)(ff + 1);
	ff->real->pMethods = NULL;
	rc = fstate.real->xOpen(fstate.real, name, ff->real, flags, outflags);
	ff->base.pMethods = ff->real->pMethods != NULL ? &fault_io : NULL;
	return rc;
}

static int
v_delete(sqlite3_vfs *vfs, const char *name, int syncdir)
{
	(void)vfs;
	return fstate.real->xDelete(fstate.real, name, syncdir);
}

static int
v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return fstate.real->xAccess(fstate.real, name, flags, out);
}

static int
v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return fstate.real->xFullPathname(fstate.real, name, n, out);
}

static void *
v_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return fstate.real->xDlOpen(fstate.real, name);
}

static void
v_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	fstate.real->xDlError(fstate.real, n, msg);
}

static void
(*v_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return fstate.real->xDlSym(fstate.real, h, sym);
}

static void
v_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	fstate.real->xDlClose(fstate.real, h);
}

static int
v_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fstate.real->xRandomness(fstate.real, n, out);
}

static int
v_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return fstate.real->xSleep(fstate.real, us);
}

static int
v_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return fstate.real->xCurrentTime(fstate.real, out);
}

static int
v_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fstate.real->xGetLastError(fstate.real, n, out);
}

static int
v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return fstate.real->xCurrentTimeInt64(fstate.real, out);
}

static int
v_set_syscall(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr p)
{
	(void)vfs;
	return fstate.real->xSetSystemCall(fstate.real, name, p);
}

static sqlite3_syscall_ptr
v_get_syscall(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return fstate.real->xGetSystemCall(fstate.real, name);
}

static const char *
v_next_syscall(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return fstate.real->xNextSystemCall(fstate.real, name);
}

/* The allocator: SQLite's own, failing while "nomem" is asked for. */

static void *
m_malloc(int n)
{
	if (fault_current() == FAULT_NOMEM)
		return NULL;
	return fstate.mem.xMalloc(n);
}

static void
m_free(void *p)
{
	fstate.mem.xFree(p);
}

static void *
m_realloc(void *p, int n)
{
	if (fault_current() == FAULT_NOMEM)
		return NULL;
	return fstate.mem.xRealloc(p, n);
}

static int
m_size(void *p)
{
	return fstate.mem.xSize(p);
}

static int
m_roundup(int n)
{
	return fstate.mem.xRoundup(n);
}

static int
m_init(void *arg)
{
	(void)arg;
	return fstate.mem.xInit(fstate.mem.pAppData);
}

static void
m_shutdown(void *arg)
{
	(void)arg;
	fstate.mem.xShutdown(fstate.mem.pAppData);
}

int
fault_init(void)
{
	const char		*path = getenv(FAULT_ENV);
	sqlite3_mem_methods	 mem = {
		.xMalloc = m_malloc,
		.xFree = m_free,
		.xRealloc = m_realloc,
		.xSize = m_size,
		.xRoundup = m_roundup,
		.xInit = m_init,
		.xShutdown = m_shutdown,
	};
	sqlite3_vfs		*v = &fstate.vfs;

	if (path == NULL || path[0] == '\0')
		return 0;
	fstate.path = path;
	if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &fstate.mem) != SQLITE_OK ||
	    sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK ||
	    sqlite3_initialize() != SQLITE_OK ||
	    (fstate.real = sqlite3_vfs_find(NULL)) == NULL)
		goto fail;
	v->iVersion = fstate.real->iVersion < 3 ? fstate.real->iVersion : 3;
	v->szOsFile = (int)sizeof(struct fault_file) + fstate.real->szOsFile;
	v->mxPathname = fstate.real->mxPathname;
	v->zName = FAULT_VFS_NAME;
	v->xOpen = v_open;
	v->xDelete = v_delete;
	v->xAccess = v_access;
	v->xFullPathname = v_full_pathname;
	v->xDlOpen = v_dlopen;
	v->xDlError = v_dlerror;
	v->xDlSym = v_dlsym;
	v->xDlClose = v_dlclose;
	v->xRandomness = v_randomness;
	v->xSleep = v_sleep;
	v->xCurrentTime = v_current_time;
	v->xGetLastError = v_last_error;
	v->xCurrentTimeInt64 = v_current_time64;
	v->xSetSystemCall = v_set_syscall;
	v->xGetSystemCall = v_get_syscall;
	v->xNextSystemCall = v_next_syscall;
	if (sqlite3_vfs_register(v, 1) != SQLITE_OK)
		goto fail;
	fault_current();
	log_warnx("storage fault injection on, controlled by %s (%s): "
	    "a testing aid", path, FAULT_ENV);
	return 0;
fail:
	log_warnx("%s: cannot install the storage fault injection shim",
	    __func__);
	return -1;
}

#else /* !TINYVEX_FAULT_INJECTION */

int
fault_init(void)
{
	if (getenv(FAULT_ENV) != NULL)
		log_warnx("%s is set, but this build has no storage fault "
		    "injection: ignored", FAULT_ENV);
	return 0;
}

#endif
