/* gguf_tmpfile.c - the gguf writer's temporary files, made so that nothing outlives a crash: the
 * spill file and the output under construction are anonymous (O_TMPFILE in the output folder,
 * or a created-then-unlinked file where the filesystem lacks O_TMPFILE); the finished output is
 * linked in under ".NAME.tmp.PID.N" and renamed into place at once. Leftovers of that last
 * instant, or of a named temporary on a filesystem without O_TMPFILE, carry the writer's pid:
 * the next writer into the folder removes those whose process is gone (docs/formats.md). */
#define _GNU_SOURCE
#include "gguf_writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* folder and base name of path ("." for a bare name) */
static void split(const char *path, char *dir, size_t nd, const char **base) {
    const char *slash = strrchr(path, '/');
    if (!slash) { snprintf(dir, nd, "."); *base = path; return; }
    size_t n = (size_t)(slash - path);
    snprintf(dir, nd, "%.*s", (int)(n ? n : 1), n ? path : "/");
    *base = slash + 1;
}

int gw_anon_open(const char *path, int *named) {
    char dir[PATH_MAX];
    const char *base;
    split(path, dir, sizeof dir, &base);
    *named = 0;
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT) return -1;
    char t[PATH_MAX + 64];
    snprintf(t, sizeof t, "%s/.%s.data.%ld.XXXXXX", dir, base, (long)getpid());
    fd = mkstemp(t);
    if (fd < 0) return -1;
    unlink(t); /* gone from the folder at once; the descriptor keeps the data */
    *named = 1;
    return fd;
}

int gw_commit(int fd, const char *path) {
    char dir[PATH_MAX], tmp[PATH_MAX + 96], proc[64];
    const char *base;
    split(path, dir, sizeof dir, &base);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    for (unsigned seq = 0; seq < 100; seq++) {
        snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld.%u", dir, base, (long)getpid(), seq);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) {
            if (rename(tmp, path) != 0) {
                int e = errno;
                unlink(tmp);
                return e;
            }
            return 0;
        }
        if (errno != EEXIST) return errno;
    }
    return EEXIST;
}

void gw_sweep(const char *path) {
    char dir[PATH_MAX], pfx[PATH_MAX];
    const char *base;
    split(path, dir, sizeof dir, &base);
    snprintf(pfx, sizeof pfx, ".%s.", base);
    size_t np = strlen(pfx);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, pfx, np) != 0) continue;
        const char *tag = n + np; /* "data.PID.XXXXXX" or "tmp.PID.N" */
        const char *p = !strncmp(tag, "data.", 5) ? tag + 5 : !strncmp(tag, "tmp.", 4) ? tag + 4 : NULL;
        if (!p) continue;
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p || *end != '.' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* its writer may still run */
        char full[PATH_MAX + 256];
        snprintf(full, sizeof full, "%s/%s", dir, n);
        unlink(full);
    }
    closedir(d);
}
