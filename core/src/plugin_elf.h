/* plugin_elf.h - check a plugin file before dlopen runs any of its code: an ELF shared object for
 * this machine whose dynamic symbol table exports bt_plugin_init and nothing else
 * (docs/plugins-trust.md). */
#ifndef BT_PLUGIN_ELF_H
#define BT_PLUGIN_ELF_H

#include <stddef.h>

enum {
    BT_ELF_OK = 0,
    BT_ELF_NOT_PLUGIN_FILE = 1, /* unreadable, not ELF, wrong class/byte order/machine/type */
    BT_ELF_NO_INIT = 2,         /* no exported bt_plugin_init function */
    BT_ELF_EXTRA_EXPORT = 3,    /* exports other symbols besides it */
};

/* 0 if path passes; else one of the codes above with the reason in why (why_n bytes). Reads
 * the file only (section headers, .dynsym, its string table), every offset bounds-checked. */
int bt_plugin_elf_check(const char *path, char *why, size_t why_n);

#endif
