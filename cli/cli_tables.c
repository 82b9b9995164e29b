/* cli_tables.c - every sub-command of bt-pipeline as data: its arguments and its option table.
 * The parser, each `--help`, the overview and docs/cli.md (`bt-pipeline help --markdown`) are all
 * made from these tables (cli_args.c); the commands read their values by long name. */
#include "cli_args.h"

#define END {0}
#define RANGE_NONE 0, -1

const struct bt_cli_opt bt_cli_global_opts[] = {
    {"quiet", 'q', BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL, "no progress or summary output"},
    {"verbose", 'v', BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL, "more log output (twice: debug)"},
    {"plugin-dir", 0, BT_CLI_PATH, 0, "DIR", NULL, RANGE_NONE, NULL, "search DIR for plugins first (it must exist)"},
    {"override", 0, BT_CLI_STR, 0, "NAMES", NULL, RANGE_NONE, NULL,
     "plugins in user folders that may replace built-in ones ([kind:]name, comma separated; docs/plugins-trust.md)"},
    {"help", 'h', BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL, "show this help and exit"},
    END,
};

/* options shared by the model commands */
#define OPT_MODEL(what) {"model", 'm', BT_CLI_PATH, 1, "MODEL", NULL, RANGE_NONE, NULL, what}
#define OPT_THREADS {"threads", 't', BT_CLI_INT, 0, "N", "0", 0, 256, NULL, "worker threads (0 = all cores)"}
#define OPT_BACKEND                                                                               \
    {"backend", 0, BT_CLI_STR, 0, "B[:k=v,...]", "auto", RANGE_NONE, NULL,                        \
     "compute backend (auto, cpu, cpu-avx2, opencl, ...) and its options (`bt-pipeline plugins`)"}, \
    {"device", 0, BT_CLI_STR, 0, "N", NULL, RANGE_NONE, NULL, "the backend's device option"}
/* the gguf reader's option for bitnet.cpp I2_S files */
#define OPT_READER                                                                                \
    {"i2s-layout", 0, BT_CLI_ENUM, 0, "L", "x86", RANGE_NONE, "x86|arm|x86-1x4",                  \
     "code order of a bitnet.cpp I2_S .gguf (the build that wrote it; docs/formats.md)"}

static const struct bt_cli_opt run_opts[] = {END};
static const struct bt_cli_opt none_opts[] = {END};
static const struct bt_cli_opt inspect_opts[] = {
    {"json", 0, BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL, "print the metadata and tensors as JSON"},
    END,
};

static const struct bt_cli_opt tokenize_opts[] = {
    OPT_MODEL("HF model folder (tokenizer.json) or any model file a reader opens"),
    {"special", 0, BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL, "parse special tokens (<|...|>) in the text"},
    END,
};

static const struct bt_cli_opt eval_opts[] = {
    OPT_MODEL("model to score (HF folder, .safetensors or .gguf)"),
    {"text", 'f', BT_CLI_PATH, 1, "FILE", NULL, RANGE_NONE, NULL, "UTF-8 text to score"},
    {"ctx", 'c', BT_CLI_INT, 0, "N", "512", 2, 1 << 20, NULL, "window length in tokens, BOS included"},
    {"compare", 0, BT_CLI_PATH, 0, "ORIG", NULL, RANGE_NONE, NULL, "also score ORIG: ratio, KLD, top-1 agreement"},
    {"report", 0, BT_CLI_PATH, 0, "FILE", NULL, RANGE_NONE, NULL, "write the results as JSON (- = stdout; with -q nothing else goes there)"},
    {"scoring", 0, BT_CLI_ENUM, 0, "S", "all", RANGE_NONE, "all|second_half|llama",
     "score every token, the second half of each window, or llama-perplexity's chunks"},
    {"tokenize", 0, BT_CLI_ENUM, 0, "T", "paragraphs", RANGE_NONE, "paragraphs|whole",
     "encode paragraph by paragraph (reference method) or the whole text at once"},
    {"max-windows", 0, BT_CLI_INT, 0, "N", "0", 0, 1e9, NULL, "stop after N windows (0 = all)"},
    {"rope", 0, BT_CLI_ENUM, 0, "R", "exact", RANGE_NONE, "exact|bf16", "bf16: rope frequencies rounded like HF on bf16 checkpoints"},
    {"act", 0, BT_CLI_ENUM, 0, "A", "f32", RANGE_NONE, "f32|q8|auto", "activations of integer-dot matmuls"},
    OPT_BACKEND,
    OPT_READER,
    OPT_THREADS,
    END,
};

static const struct bt_cli_opt generate_opts[] = {
    OPT_MODEL("model to run (HF folder, .safetensors or .gguf)"),
    {"prompt", 'p', BT_CLI_STR, 0, "TEXT", NULL, RANGE_NONE, NULL, "the prompt (- = read it from stdin)"},
    {"prompt-file", 'f', BT_CLI_PATH, 0, "FILE", NULL, RANGE_NONE, NULL, "read the prompt from FILE (- = stdin)"},
    {"n-predict", 'n', BT_CLI_INT, 0, "N", "64", 1, 1 << 20, NULL, "tokens to generate (per turn in chat mode)"},
    {"ctx", 'c', BT_CLI_INT, 0, "N", "0", 0, 1 << 20, NULL, "context (KV cache) length; 0 = the model's, at most 4096"},
    {"temp", 0, BT_CLI_FLOAT, 0, "T", "0", 0, 100, NULL, "temperature (0 = greedy)"},
    {"top-k", 0, BT_CLI_INT, 0, "K", "0", 0, 1 << 30, NULL, "sample among the K most likely tokens (0 = all)"},
    {"top-p", 0, BT_CLI_FLOAT, 0, "P", "1", 0, 1, NULL, "nucleus sampling: the smallest set with this mass"},
    {"min-p", 0, BT_CLI_FLOAT, 0, "P", "0", 0, 1, NULL, "drop tokens below P times the most likely one's probability"},
    {"repeat-penalty", 0, BT_CLI_FLOAT, 0, "R", "1", 0, 100, NULL, "divide (positive) logits of recent tokens by R (1 = off)"},
    {"repeat-last-n", 0, BT_CLI_INT, 0, "N", "64", 0, 1 << 20, NULL, "how many recent tokens the penalty looks at"},
    {"seed", 's', BT_CLI_INT, 0, "S", "random", 0, 9.2e18, NULL, "sampling seed (a random one is printed to stderr)"},
    {"interactive", 'i', BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL,
     "read the user's turns from stdin, one per line, and answer each (chat mode)"},
    {"chat", 0, BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL, "wrap the prompt in the model's chat template"},
    {"chat-template", 0, BT_CLI_ENUM, 0, "NAME", "model", RANGE_NONE, "model|llama3|chatml|llama2|gemma|phi3|zephyr",
     "chat template: the model's own (recognised by family) or a family by name"},
    {"system", 0, BT_CLI_STR, 0, "TEXT", NULL, RANGE_NONE, NULL, "system message in chat mode"},
    {"ignore-eos", 0, BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL, "keep generating after the end-of-sequence token"},
    OPT_BACKEND,
    OPT_READER,
    OPT_THREADS,
    END,
};

static const struct bt_cli_opt calibrate_opts[] = {
    OPT_MODEL("original model (HF folder, .safetensors or .gguf)"),
    {"text", 'f', BT_CLI_PATH, 1, "FILE", NULL, RANGE_NONE, NULL, "calibration text (training-domain, not the eval text)"},
    {"out", 'o', BT_CLI_PATH, 1, "FILE", NULL, RANGE_NONE, NULL, "calibration file to write (BTCAL1)"},
    {"ctx", 'c', BT_CLI_INT, 0, "N", "512", 2, 1 << 20, NULL, "window length"},
    {"windows", 0, BT_CLI_INT, 0, "N", "0", 0, 1e9, NULL, "windows to use (0 = all)"},
    {"diag-only", 0, BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL, "store only diag(X^T X) (enough for column weights, not second_order)"},
    OPT_BACKEND,
    OPT_READER,
    OPT_THREADS,
    END,
};

static const struct bt_cli_opt quantize_opts[] = {
    {"calibration", 0, BT_CLI_PATH, 0, "FILE", NULL, RANGE_NONE, NULL,
     "calibration file from `bt-pipeline calibrate`: second-order (GPTQ-style) quantization with it"},
    {"keep", 0, BT_CLI_STR, 0, "PATTERNS", "*embed_tokens* lm_head *norm* token_embd output", RANGE_NONE, NULL,
     "space-separated glob patterns of tensors left unquantized"},
    {"keep-type", 0, BT_CLI_ENUM, 0, "T", "f16", RANGE_NONE, "f16|bf16|f32|q8_0", "type of the kept 2-D tensors"},
    {"report", 0, BT_CLI_PATH, 0, "FILE", NULL, RANGE_NONE, NULL, "write the conversion report as JSON"},
    {"backend", 0, BT_CLI_STR, 0, "B", "auto", RANGE_NONE, NULL, "compute backend for k-means (vq types)"},
    {"print-ini", 0, BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL, "print the equivalent INI file and exit (nothing is converted)"},
    OPT_THREADS,
    END,
};

static const struct bt_cli_opt help_opts[] = {
    {"markdown", 0, BT_CLI_FLAG, 0, NULL, NULL, RANGE_NONE, NULL, "print the reference of every command as markdown (docs/cli.md)"},
    END,
};

const struct bt_cli_cmd bt_cli_commands[] = {
    {"run", "FILE.ini", 1, 1, "run a pipeline (convert, eval, ...) described by an INI file (- = read it from stdin)",
     run_opts, "Relative paths in the INI resolve against its folder (against the current folder for `-`)."},
    {"quantize", "IN OUT TYPE", 3, 3, "convert a model in one line: the pipeline an INI with these values would run",
     quantize_opts,
     "TYPE: `tq2_0`, `tq1_0` (one ternary plane, absmean quantizer with least-squares scales, llama.cpp types); "
     "`mtq1`..`mtq4` (N ternary planes, residual quantizer, bt's MTQ); `auto:B` (residual planes chosen per "
     "tensor for a mean of B bits/weight); `vq2` (VPTQ-style vectors of 4 weights, 256 centroids: about 2 "
     "bits/weight); `f16`, `bf16`, `q8_0` (no quantizer: every tensor in that type). With `--calibration` "
     "the quantizer runs second-order. `--print-ini` shows the INI; `bt-pipeline run` on it gives the same file."},
    {"plugins", "", 0, 0, "list loaded plugins (kind, name, version, ABI, options)", none_opts, NULL},
    {"inspect", "FILE", 1, 1, "show metadata and tensors of a safetensors model or GGUF file", inspect_opts, NULL},
    {"tokenize", "FILE", 1, 1, "print the token ids of FILE (- = stdin), space separated, no BOS", tokenize_opts, NULL},
    {"eval", "", 0, 0, "perplexity of a model on a text, and KLD / top-1 agreement against another", eval_opts, NULL},
    {"generate", "", 0, 0, "generate text from a prompt, or chat with the model (--chat, -i)", generate_opts,
     "The prompt comes from -p, -f or, when neither is given and stdin is not a terminal, stdin. "
     "Output streams token by token to stdout; timings and the seed go to stderr. With `--chat` the "
     "prompt is wrapped in the model's chat template (GGUF `tokenizer.chat_template` or "
     "tokenizer_config.json `chat_template`), recognised as one of the families llama3, chatml, "
     "llama2 ([INST]), gemma, phi3, zephyr; another template is refused, naming it, unless "
     "`--chat-template NAME` picks a family. `-i` reads one user turn per line from stdin and keeps "
     "the conversation in the context. Sampling order: repeat penalty, top-k, temperature, min-p, top-p."},
    {"calibrate", "", 0, 0, "collect per-layer input Gram matrices X^T X for second-order quantization", calibrate_opts, NULL},
    {"ini-reference", "", 0, 0, "every INI key of every section and plugin, as markdown", none_opts, NULL},
    {"help", "[COMMAND]", 0, 1, "this overview, or a command's help", help_opts, NULL},
    {0},
};
