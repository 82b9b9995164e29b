/* fuzz_util.h - shared by the fuzz targets (tests/fuzz/fuzz_*.c): a minimal struct bt_host for
 * the reader plugins compiled into a target, a per-process scratch folder for parsers that take
 * a path, splitting one input into several files, and driving a reader over everything. */
#ifndef BT_FUZZ_UTIL_H
#define BT_FUZZ_UTIL_H

#include "bt/bt_plugin.h"

#include <stddef.h>
#include <stdint.h>

/* libFuzzer entry points (the replay driver calls them too) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

extern const struct bt_host fz_host; /* log to nowhere, aligned alloc counted in fz_live */
extern long fz_live;                 /* fz_host allocations not yet freed */

/* the scratch folder (created once, removed at exit) */
const char *fz_dir(void);
/* write size bytes as fz_dir()/name; returns the path (static storage, one per call site is
 * enough: valid until the next fz_write) or aborts if the disk refuses */
const char *fz_write(const char *name, const uint8_t *data, size_t size);
/* remove fz_dir()/name if present */
void fz_unlink(const char *name);

/* with $BT_FUZZ_VERBOSE set (the replay driver), print what an input gave: "ok" or the error */
void fz_note(const char *what, bt_status st, const char *msg);

/* split data at every FZ_SEP into at most max parts; returns the number of parts (>= 1) */
#define FZ_SEP "\n--8<--\n"
size_t fz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, size_t max);

/* open path with the reader descriptor d, get every tensor and key, decode every tensor with
 * read_f32 (in row chunks), release, close. Aborts if the reader breaks its contract (a failed
 * open without a message, tensors inconsistent with their size, leaked host allocations). */
void fz_drive_reader(const struct bt_plugin *d, const char *path);

#endif
