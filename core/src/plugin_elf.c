/* plugin_elf.c - read a plugin's ELF header and dynamic symbol table without loading it, so a
 * file that is not a bt plugin is refused before dlopen runs its constructors. Every offset,
 * size and string index read from the file is checked against the file's size. Names reserved
 * for the toolchain (a leading "__" or "_" + capital, and the linker's _init _fini _edata _end)
 * are tolerated beside bt_plugin_init; anything else exported is refused. */
#include "plugin_elf.h"
#include "bt/bt_plugin.h" /* BT_PLUGIN_INIT_SYMBOL */

#include <elf.h>
#include <fcntl.h>
#include <link.h> /* ElfW: the native ELF class */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NATIVE_CLASS (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_DATA ELFDATA2LSB
#else
#define NATIVE_DATA ELFDATA2MSB
#endif

/* e_machine of the running program (0 if it cannot be read: the machine is then not checked) */
static unsigned host_machine(void) {
    ElfW(Ehdr) eh;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, &eh, sizeof eh);
    close(fd);
    if (n != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return 0;
    return eh.e_machine;
}

/* [off, off + len) lies inside a file of size bytes */
static int in_file(uint64_t off, uint64_t len, uint64_t size) {
    return off <= size && len <= size - off;
}

static int reserved_name(const char *s) {
    if (s[0] == '_' && (s[1] == '_' || (s[1] >= 'A' && s[1] <= 'Z'))) return 1;
    return !strcmp(s, "_init") || !strcmp(s, "_fini") || !strcmp(s, "_edata") || !strcmp(s, "_end");
}

static int fail(char *why, size_t n, int code, const char *msg) {
    snprintf(why, n, "%s", msg);
    return code;
}

/* the dynamic symbols of the mapped file m (size bytes) */
static int check_symbols(const uint8_t *m, uint64_t size, char *why, size_t wn) {
    const ElfW(Ehdr) *eh = (const void *)m;
    uint64_t shnum = eh->e_shnum;
    if (eh->e_shoff == 0)
        return fail(why, wn, BT_ELF_NOT_PLUGIN_FILE, "not an ELF shared object: no section headers");
    if (eh->e_shentsize != sizeof(ElfW(Shdr)) || !in_file(eh->e_shoff, sizeof(ElfW(Shdr)), size))
        return fail(why, wn, BT_ELF_NOT_PLUGIN_FILE, "not an ELF shared object: bad section headers");
    const ElfW(Shdr) *sh = (const void *)(m + eh->e_shoff);
    if (shnum == 0) shnum = sh[0].sh_size; /* extended numbering */
    if (shnum == 0 || shnum > size / sizeof(ElfW(Shdr)) ||
        !in_file(eh->e_shoff, shnum * sizeof(ElfW(Shdr)), size))
        return fail(why, wn, BT_ELF_NOT_PLUGIN_FILE, "not an ELF shared object: section headers "
                    "extend past the end of the file");
    unsigned n_init = 0, n_other = 0;
    char other[128] = "";
    for (uint64_t i = 0; i < shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM) continue;
        const ElfW(Shdr) *sy = &sh[i];
        if (sy->sh_entsize != sizeof(ElfW(Sym)) || !in_file(sy->sh_offset, sy->sh_size, size) ||
            sy->sh_link == 0 || sy->sh_link >= shnum)
            return fail(why, wn, BT_ELF_NOT_PLUGIN_FILE, "corrupt dynamic symbol table");
        const ElfW(Shdr) *st = &sh[sy->sh_link];
        if (st->sh_type != SHT_STRTAB || !in_file(st->sh_offset, st->sh_size, size) || st->sh_size == 0)
            return fail(why, wn, BT_ELF_NOT_PLUGIN_FILE, "corrupt dynamic string table");
        const char *strs = (const char *)(m + st->sh_offset);
        const ElfW(Sym) *sym = (const void *)(m + sy->sh_offset);
        uint64_t nsym = sy->sh_size / sizeof(ElfW(Sym));
        for (uint64_t k = 1; k < nsym; k++) { /* entry 0 is the null symbol */
            unsigned bind = ELF64_ST_BIND(sym[k].st_info), vis = ELF64_ST_VISIBILITY(sym[k].st_other);
            if (sym[k].st_shndx == SHN_UNDEF) continue; /* an import */
            if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) continue;
            if (vis != STV_DEFAULT && vis != STV_PROTECTED) continue;
            if (sym[k].st_name >= st->sh_size ||
                !memchr(strs + sym[k].st_name, 0, st->sh_size - sym[k].st_name))
                return fail(why, wn, BT_ELF_NOT_PLUGIN_FILE, "corrupt dynamic symbol name");
            const char *name = strs + sym[k].st_name;
            if (!strcmp(name, BT_PLUGIN_INIT_SYMBOL) && ELF64_ST_TYPE(sym[k].st_info) == STT_FUNC) n_init++;
            else if (!reserved_name(name) && n_other++ == 0) snprintf(other, sizeof other, "%s", name);
        }
    }
    if (n_init == 0)
        return fail(why, wn, BT_ELF_NO_INIT, "no '" BT_PLUGIN_INIT_SYMBOL "' symbol (not a bt plugin)");
    if (n_other) {
        snprintf(why, wn, "exports '%s'%s besides '" BT_PLUGIN_INIT_SYMBOL "' (a bt plugin exports "
                 "only that symbol)", other, n_other > 1 ? " and others" : "");
        return BT_ELF_EXTRA_EXPORT;
    }
    return BT_ELF_OK;
}

int bt_plugin_elf_check(const char *path, char *why, size_t why_n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(why, why_n, BT_ELF_NOT_PLUGIN_FILE, "cannot open the file");
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fail(why, why_n, BT_ELF_NOT_PLUGIN_FILE, "not a regular file");
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < sizeof(ElfW(Ehdr))) {
        close(fd);
        return fail(why, why_n, BT_ELF_NOT_PLUGIN_FILE, "not an ELF file (too short)");
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return fail(why, why_n, BT_ELF_NOT_PLUGIN_FILE, "cannot map the file");
    const ElfW(Ehdr) *eh = map;
    unsigned mach = host_machine();
    int rc;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        rc = fail(why, why_n, BT_ELF_NOT_PLUGIN_FILE, "not an ELF file");
    else if (eh->e_ident[EI_CLASS] != NATIVE_CLASS || eh->e_ident[EI_DATA] != NATIVE_DATA ||
             eh->e_ident[EI_VERSION] != EV_CURRENT)
        rc = fail(why, why_n, BT_ELF_NOT_PLUGIN_FILE, "ELF class or byte order of another machine");
    else if (eh->e_type != ET_DYN)
        rc = fail(why, why_n, BT_ELF_NOT_PLUGIN_FILE, "not an ELF shared object");
    else if (mach && eh->e_machine != mach) {
        snprintf(why, why_n, "built for another machine (ELF machine %u, this one is %u)",
                 (unsigned)eh->e_machine, mach);
        rc = BT_ELF_NOT_PLUGIN_FILE;
    } else
        rc = check_symbols(map, size, why, why_n);
    munmap(map, (size_t)size);
    return rc;
}
