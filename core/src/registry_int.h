/* registry_int.h - what the plugin search (plugin_search.c) needs from the registry (registry.c)
 * beyond the public API in bt/bt.h. */
#ifndef BT_REGISTRY_INT_H
#define BT_REGISTRY_INT_H
#include "bt/bt.h"

#include <stddef.h>

/* record a refusal ("path: reason") in the registry's reject list */
void   bt_registry_add_reject(bt_registry *reg, const char *msg);
/* 1 if the folder (a realpath) was not scanned yet, and is now marked as scanned */
int    bt_registry_claim_dir(bt_registry *reg, const char *real);
/* the libbt-*.so names in a folder, sorted; caller frees each and the array (NULL if none) */
char **bt_registry_list_dir(const char *real, size_t *n);

#endif
