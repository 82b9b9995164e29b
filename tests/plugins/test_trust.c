/* test_trust.c - the plugin trust model (docs/plugins-trust.md): files that are not bt plugins are
 * refused before dlopen runs their constructors; user folders must exist, $BT_PLUGIN_PATH entries
 * must be absolute; a user plugin that would shadow a built-in one is refused unless an override
 * names it; overrides are validated. Runs from build/bin, so the built-in folder is build/lib/bt.
 * Usage: test_trust <test-plugins dir> <scratch dir> */
#include "bt/bt.h"
#include "../bt_test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *dir, *scratch;

/* load fixture sub/file with the marker armed; returns the status, *ran = the constructor ran */
static bt_status load_marked(bt_registry *reg, const char *sub, const char *file, int *ran, bt_err *e) {
    char path[1024], marker[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, file);
    snprintf(marker, sizeof marker, "%s/marker-%s", scratch, sub);
    unlink(marker);
    setenv("BT_TEST_MARKER", marker, 1);
    bt_err_clear(e);
    bt_status st = bt_registry_load_file(reg, path, e);
    *ran = access(marker, F_OK) == 0;
    unsetenv("BT_TEST_MARKER");
    return st;
}

static void test_constructors(void) {
    bt_registry *reg;
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    bt_err e;
    int ran;
    CHECK_EQ(load_marked(reg, "ctor_nosym", "libbt-quantizer-ctor-nosym.so", &ran, &e), BT_E_PLUGIN);
    CHECK(strstr(e.msg, "no 'bt_plugin_init' symbol") && strstr(e.msg, "none of its code ran"));
    CHECK(!ran); /* the constructor never ran */
    CHECK_EQ(load_marked(reg, "ctor_extra", "libbt-quantizer-ctor-extra.so", &ran, &e), BT_E_PLUGIN);
    CHECK(strstr(e.msg, "exports 'ctor_extra_export' besides 'bt_plugin_init'") != NULL);
    CHECK(!ran);
    if (ran || !strstr(e.msg, "ctor_extra_export")) fprintf(stderr, "  message was: %s\n", e.msg);
    /* what the check cannot prevent: a file that looks like a plugin is loaded, constructors run */
    CHECK_EQ(load_marked(reg, "ctor_ok", "libbt-quantizer-ctor-ok.so", &ran, &e), BT_OK);
    CHECK(ran);
    CHECK_EQ(bt_registry_count(reg), 1);
    bt_registry_free(reg);
}

/* scan with the given environment and search; returns the status, *reg kept for inspection */
static bt_status scan(const char *path_env, const char *ovr_env, const struct bt_plugin_search *s,
                      bt_registry **reg, bt_err *e) {
    if (path_env) setenv("BT_PLUGIN_PATH", path_env, 1); else unsetenv("BT_PLUGIN_PATH");
    if (ovr_env) setenv("BT_PLUGIN_OVERRIDE", ovr_env, 1); else unsetenv("BT_PLUGIN_OVERRIDE");
    CHECK_EQ(bt_registry_new(reg), BT_OK);
    bt_err_clear(e);
    bt_status st = bt_registry_scan_default(*reg, s, e);
    unsetenv("BT_PLUGIN_PATH");
    unsetenv("BT_PLUGIN_OVERRIDE");
    return st;
}

static int has_reject(bt_registry *reg, const char *a, const char *b) {
    for (uint32_t i = 0; i < bt_registry_reject_count(reg); i++)
        if (strstr(bt_registry_reject_at(reg, i), a) && strstr(bt_registry_reject_at(reg, i), b)) return 1;
    return 0;
}

/* the absmean plugin comes from the shadow fixture folder (1) or the built-in folder (0) */
static int absmean_from_user(bt_registry *reg) {
    const struct bt_plugin_entry *pe = bt_registry_find(reg, BT_KIND_QUANTIZER, "absmean");
    return pe && strstr(pe->path, "/shadow/") != NULL;
}

#define EXPECT_ERR(st, e, a, b)                                                            \
    do {                                                                                   \
        CHECK_EQ(st, BT_E_INVAL);                                                          \
        CHECK(strstr((e).msg, a) != NULL && strstr((e).msg, b) != NULL);                   \
        if (!strstr((e).msg, a) || !strstr((e).msg, b)) fprintf(stderr, "  message was: %s\n", (e).msg); \
    } while (0)

static void test_folders(void) {
    bt_registry *reg;
    bt_err e;
    char shadow[1024], missing[1024], both[2100];
    snprintf(shadow, sizeof shadow, "%s/shadow", dir);
    snprintf(missing, sizeof missing, "%s/no-such-folder", dir);

    /* nothing named: the built-ins load */
    CHECK_EQ(scan(NULL, NULL, NULL, &reg, &e), BT_OK);
    CHECK(bt_registry_find(reg, BT_KIND_QUANTIZER, "absmean") && !absmean_from_user(reg));
    bt_registry_free(reg);

    /* a relative BT_PLUGIN_PATH entry is refused, naming it */
    EXPECT_ERR(scan("/tmp:some/relative-dir", NULL, NULL, &reg, &e), e, "'some/relative-dir'", "relative");
    bt_registry_free(reg);
    /* empty entries are ignored, never the current folder */
    CHECK_EQ(scan("::", NULL, NULL, &reg, &e), BT_OK);
    bt_registry_free(reg);

    /* a missing folder named by the user is an error */
    EXPECT_ERR(scan(missing, NULL, NULL, &reg, &e), e, "BT_PLUGIN_PATH", "no-such-folder");
    bt_registry_free(reg);
    struct bt_plugin_search s = {.dir = {missing}, .dir_from = {"--plugin-dir"}};
    EXPECT_ERR(scan(NULL, NULL, &s, &reg, &e), e, "--plugin-dir", "no-such-folder");
    bt_registry_free(reg);

    /* shadowing a built-in: refused (not loaded), the built-in stays */
    CHECK_EQ(scan(shadow, NULL, NULL, &reg, &e), BT_OK);
    CHECK(!absmean_from_user(reg) && bt_registry_find(reg, BT_KIND_QUANTIZER, "absmean"));
    CHECK(has_reject(reg, "would shadow the built-in quantizer plugin 'absmean'", "override = absmean"));
    bt_registry_free(reg);
    struct bt_plugin_search sd = {.dir = {shadow}, .dir_from = {"--plugin-dir"}};
    CHECK_EQ(scan(NULL, NULL, &sd, &reg, &e), BT_OK);
    CHECK(!absmean_from_user(reg));
    bt_registry_free(reg);

    /* ... allowed when the user asks for it: by name, by kind:name, or through the environment */
    const char *ovr[] = {"absmean", "quantizer:absmean", "residual, absmean"};
    for (int i = 0; i < 3; i++) {
        struct bt_plugin_search so = {.override = {ovr[i]}, .override_from = {"[pipeline] override"}};
        bt_status st = scan(shadow, NULL, &so, &reg, &e);
        if (i < 2) {
            CHECK_EQ(st, BT_OK);
            CHECK(absmean_from_user(reg));
            CHECK(!has_reject(reg, "absmean", "duplicate"));
        } else { /* residual is not shadowed by anything: the override is refused as unused */
            EXPECT_ERR(st, e, "[pipeline] override", "'residual'");
        }
        bt_registry_free(reg);
    }
    CHECK_EQ(scan(shadow, "absmean", NULL, &reg, &e), BT_OK);
    CHECK(absmean_from_user(reg));
    bt_registry_free(reg);
    /* an override of another kind does not apply */
    struct bt_plugin_search sw = {.override = {"writer:absmean"}, .override_from = {"--override"}};
    EXPECT_ERR(scan(shadow, NULL, &sw, &reg, &e), e, "--override", "'writer:absmean'");
    CHECK(!absmean_from_user(reg));
    bt_registry_free(reg);
    /* malformed override names */
    EXPECT_ERR(scan(NULL, "Abs!", NULL, &reg, &e), e, "BT_PLUGIN_OVERRIDE", "'Abs!' is not a plugin name");
    bt_registry_free(reg);
    EXPECT_ERR(scan(NULL, "gadget:absmean", NULL, &reg, &e), e, "BT_PLUGIN_OVERRIDE", "not a plugin name");
    bt_registry_free(reg);

    /* the built-in folder named as a user folder is still the built-in folder */
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(both, sizeof both, "%s/../lib/bt:%s", exe, shadow);
    CHECK_EQ(scan(both, NULL, NULL, &reg, &e), BT_OK);
    CHECK(!absmean_from_user(reg) && has_reject(reg, "would shadow", "absmean"));
    bt_registry_free(reg);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    dir = argv[1];
    scratch = argv[2];
    test_constructors();
    test_folders();
    TEST_DONE();
}
