/* chat_tool.c - renders a conversation with runtime/model/bt_chat.c for test_chat.py (which
 * compares it with jinja2 rendering the template). Arguments: a template file (its family is
 * recognised) or "family:NAME", the BOS and EOS texts, 1/0 for the generation prompt. stdin:
 * one message per line, "role<TAB>content" with \n written as the two characters \ and n.
 * stdout: the rendered text; stderr: "family NAME" or the error. */
#include "bt_chat.h"
#include "bt_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: chat_tool TEMPLATE|family:NAME BOS EOS GEN < messages\n"); return 2; }
    int family;
    if (!strncmp(argv[1], "family:", 7)) {
        family = bt_chat_family_by_name(argv[1] + 7);
    } else {
        char *t = NULL;
        size_t len;
        bt_err err;
        bt_err_clear(&err);
        if (bt_file_read_all(argv[1], &t, &len, &err)) { fprintf(stderr, "%s\n", err.msg); return 2; }
        family = bt_chat_detect(t);
        free(t);
    }
    fprintf(stderr, "family %s\n", bt_chat_family_name(family));
    struct bt_chat_msg msgs[64];
    char *lines[64];
    int n = 0;
    char buf[8192];
    while (n < 64 && fgets(buf, sizeof buf, stdin)) {
        buf[strcspn(buf, "\n")] = 0;
        char *tab = strchr(buf, '\t');
        if (!tab) continue;
        char *s = strdup(buf), *c = s + (tab - buf) + 1, *w = c;
        c[-1] = 0;
        for (char *r = c; *r; r++) /* "\n" -> newline */
            if (r[0] == '\\' && r[1] == 'n') { *w++ = '\n'; r++; }
            else *w++ = *r;
        *w = 0;
        lines[n] = s;
        msgs[n] = (struct bt_chat_msg){s, c};
        n++;
    }
    char *out = NULL;
    bt_err err;
    bt_err_clear(&err);
    bt_status st = bt_chat_render(family, msgs, n, atoi(argv[4]), argv[2], argv[3], &out, &err);
    if (st) fprintf(stderr, "error: %s\n", err.msg);
    else fputs(out, stdout);
    free(out);
    for (int i = 0; i < n; i++) free(lines[i]);
    return st ? 1 : 0;
}
