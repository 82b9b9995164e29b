/* test_loader.c - the plugin loader refuses broken plugins with a message naming the file and
 * the reason, and still loads the good ones. */
#include "bt/bt.h"
#include "../bt_test.h"

#include <string.h>

static const char *dir;

static bt_status load(bt_registry *reg, const char *sub, const char *file, bt_err *err) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, file);
    bt_err_clear(err);
    return bt_registry_load_file(reg, path, err);
}

#define EXPECT_REFUSED(sub, file, status, substr)                                   \
    do {                                                                            \
        bt_err e;                                                                   \
        bt_status st = load(reg, sub, file, &e);                                    \
        CHECK_EQ(st, status);                                                       \
        CHECK(strstr(e.msg, substr) != NULL);                                       \
        CHECK(strstr(e.msg, file) != NULL);                                         \
        if (!strstr(e.msg, substr)) fprintf(stderr, "  message was: %s\n", e.msg);  \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    dir = argv[1];
    bt_registry *reg;
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    bt_err e;
    CHECK_EQ(load(reg, "ok", "libbt-quantizer-fixture-ok.so", &e), BT_OK);
    CHECK_EQ(bt_registry_count(reg), 1);
    const struct bt_plugin_entry *pe = bt_registry_find(reg, BT_KIND_QUANTIZER, "fixture-ok");
    CHECK(pe != NULL);
    if (pe) CHECK(strcmp(pe->desc->options[0].name, "level") == 0);
    char major_msg[64];
    snprintf(major_msg, sizeof major_msg, "ABI major %d, host has %d", BT_ABI_MAJOR + 1, BT_ABI_MAJOR);
    EXPECT_REFUSED("abi_major", "libbt-quantizer-fixture-abimajor.so", BT_E_ABI, major_msg);
    EXPECT_REFUSED("abi_minor", "libbt-quantizer-fixture-abiminor.so", BT_E_ABI, "newer than the host");
    EXPECT_REFUSED("truncated", "libbt-quantizer-fixture-truncated.so", BT_E_ABI, "descriptor truncated");
    EXPECT_REFUSED("no_symbol", "libbt-quantizer-fixture-nosym.so", BT_E_PLUGIN, "no 'bt_plugin_init' symbol");
    EXPECT_REFUSED("init_fails", "libbt-quantizer-fixture-initfail.so", BT_E_PLUGIN, "init failed");
    EXPECT_REFUSED("dup", "libbt-quantizer-fixture-ok.so", BT_E_PLUGIN, "duplicate quantizer plugin 'fixture-ok'");
    EXPECT_REFUSED("badname", "libbt-quantizer-something-else.so", BT_E_PLUGIN, "file name does not match");
    EXPECT_REFUSED("garbage", "libbt-quantizer-garbage.so", BT_E_PLUGIN, "cannot load");
    CHECK_EQ(bt_registry_count(reg), 1);
    CHECK_EQ(bt_registry_reject_count(reg), 8);
    bt_registry_free(reg);

    /* scanning folders: refusals do not stop the good plugin from loading */
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    const char *subs[] = {"abi_major", "garbage", "ok", "truncated", "dup"};
    int loaded = 0;
    for (int i = 0; i < 5; i++) {
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, subs[i]);
        loaded += bt_registry_scan_dir(reg, p);
    }
    CHECK_EQ(loaded, 1);
    CHECK_EQ(bt_registry_reject_count(reg), 4);
    CHECK(bt_registry_find(reg, BT_KIND_QUANTIZER, "fixture-ok") != NULL);

    /* an instance gets its option defaults and validated values */
    bt_optset *o = bt_optset_new(bt_registry_find(reg, BT_KIND_QUANTIZER, "fixture-ok")->desc->options);
    CHECK_EQ(bt_opt_int(o, "level"), 3);
    bt_err_clear(&e);
    CHECK_EQ(bt_optset_set(o, "level", "12", NULL, &e), BT_E_INVAL);
    CHECK(strstr(e.msg, "out of range") != NULL);
    CHECK_EQ(bt_optset_set(o, "level", "x", NULL, &e), BT_E_INVAL);
    CHECK_EQ(bt_optset_set(o, "nope", "1", NULL, &e), BT_E_INVAL);
    CHECK_EQ(bt_optset_set(o, "level", "7", NULL, &e), BT_OK);
    CHECK_EQ(bt_opt_int(o, "level"), 7);
    struct bt_quantizer *q;
    CHECK_EQ(bt_quantizer_open(reg, "fixture-ok", o, &q, &e), BT_OK);
    bt_quantizer_close(q);
    bt_registry_free(reg);
    TEST_DONE();
}
