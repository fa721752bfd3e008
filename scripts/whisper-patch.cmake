# Included by CMake after each project() of whisper-rs-sys's bundled whisper.cpp
# (CMAKE_PROJECT_INCLUDE, set in .cargo/config.toml and passed on by its build script).
# It edits the build's own copy of the sources (in cargo's OUT_DIR), only on the path of
# the public whisper_decode_with_state, which whisper_full does not take.
#
# 1. Every row. whisper.cpp computes the decoder's logits for every token of a call but
#    copies out only the last row. Knowledge-base scoring (src/stt/forced.rs) needs every
#    row, so that one decoder call scores a whole phrasing instead of one token. The
#    gateway checks at start that the rows are there (`rows_come_back`) and falls back to
#    one token per call when they are not.
# 2. Part of the vocabulary. Projecting each token onto all 51,865 vocabulary entries is
#    over half of a decoder call's work; the scoring needs the log-probabilities of its
#    phrasings' tokens only, normalised over the tokens a caller's speech could plausibly
#    be. `whisper_voicebot_vocab(below, extra, n)` (src/stt/vocab.rs) narrows the logits
#    of this thread's following whisper_decode_with_state calls to tokens [0, below) then
#    `extra`, in that order; (0, NULL, 0) widens them again. The gateway links against it,
#    so this edit must apply: the build stops when it does not.
# 3. A tree of tokens in one call. `whisper_voicebot_tree(parent, n)` makes this thread's
#    next whisper_decode_with_state call of n tokens take them as a tree: token i follows
#    token parent[i] of the same call (an earlier one), or the cache's tokens when -1. Each
#    sits at its depth's position and attends to its ancestors only (the attention mask),
#    so the knowledge base's phrasings, which share prefixes, are scored in one call where
#    runs took one per branch (src/stt/trie.rs). The gateway checks at start that a tree
#    scores as the same tokens fed one path at a time (`forced::feeding`).
# 4. The last row only, in whisper_full. It computes the logits of every token of a call
#    though it reads the last row only: for the domain prompt (~65 tokens in Danish, ~35
#    in English) that is 65 × 51,865 × 512 multiply-adds thrown away on every turn. When
#    a call wants the last row alone, only that row is projected onto the vocabulary.
# 5. A barrier that yields. ggml's threads wait for each other at every node of a graph
#    by spinning. When a decode runs on both cores (a lone caller's turn, `[stt]
#    idle_threads`) and any other thread wants a core (another call's decode starting,
#    speech synthesis, RTP), a waiting thread spun away the time slice its partner
#    needed: turns took seconds longer, not less. It now yields the core after ~1024
#    spins (tens of microseconds).
set(_voicebot_src "${CMAKE_SOURCE_DIR}/src/whisper.cpp")

# Replaces `from` by `to` in the source text once; `marker` (in `to`) says it is done.
function(_voicebot_edit what from to marker required)
  string(FIND "${_voicebot_text}" "${marker}" _done)
  if(NOT _done EQUAL -1)
    return()
  endif()
  string(FIND "${_voicebot_text}" "${from}" _at)
  if(_at EQUAL -1)
    if(required)
      message(FATAL_ERROR "voicebot: whisper.cpp not as expected (${what})")
    endif()
    message(WARNING "voicebot: whisper.cpp not as expected (${what}); left as it is")
    return()
  endif()
  string(REPLACE "${from}" "${to}" _new "${_voicebot_text}")
  set(_voicebot_text "${_new}" PARENT_SCOPE)
  message(STATUS "voicebot: whisper.cpp edited (${what})")
endfunction()

if(EXISTS "${_voicebot_src}")
  file(READ "${_voicebot_src}" _voicebot_text)
  set(_voicebot_before "${_voicebot_text}")

  _voicebot_edit("every row of logits"
[=[
    whisper_batch_prep_legacy(state->batch, tokens, n_tokens, n_past, 0);

    whisper_kv_cache_seq_rm(state->kv_self, 0, n_past, -1);]=]
[=[
    whisper_batch_prep_legacy(state->batch, tokens, n_tokens, n_past, 0);
    for (int i = 0; i < n_tokens; ++i) { state->batch.logits[i] = 1; } // voicebot: every row

    whisper_kv_cache_seq_rm(state->kv_self, 0, n_past, -1);]=]
    "voicebot: every row" FALSE)

  _voicebot_edit("vocabulary subset: the setting"
[=[
static void whisper_batch_prep_legacy(]=]
[=[
// voicebot: logits over part of the vocabulary (scripts/whisper-patch.cmake)
static thread_local int32_t voicebot_below = 0;
static thread_local std::vector<int32_t> voicebot_extra;
static thread_local bool voicebot_in_decode = false;

extern "C" WHISPER_API void whisper_voicebot_vocab(int32_t below, const int32_t * extra, int32_t n_extra) {
    voicebot_below = below;
    voicebot_extra.assign(extra, extra + n_extra);
}

static bool voicebot_narrow(bool worst_case) {
    return voicebot_in_decode && !worst_case && (voicebot_below > 0 || !voicebot_extra.empty());
}

static void whisper_batch_prep_legacy(]=]
    "voicebot: logits over part" TRUE)

  _voicebot_edit("a tree of tokens: the setting"
[=[
static void whisper_batch_prep_legacy(]=]
[=[
// voicebot: a tree of tokens in one decoder call (scripts/whisper-patch.cmake)
static thread_local std::vector<int32_t> voicebot_parent;

extern "C" WHISPER_API void whisper_voicebot_tree(const int32_t * parent, int32_t n) {
    voicebot_parent.assign(parent, parent + n);
}

static bool voicebot_tree(int n_tokens) {
    return voicebot_in_decode && n_tokens > 0 && (int) voicebot_parent.size() == n_tokens;
}

static void whisper_batch_prep_legacy(]=]
    "voicebot: a tree of tokens in one" TRUE)

  _voicebot_edit("vocabulary subset: the graph"
[=[
    struct ggml_tensor * logits = ggml_mul_mat(ctx0, model.d_te, cur);
]=]
[=[
    struct ggml_tensor * logits = nullptr;
    if (voicebot_narrow(worst_case)) { // voicebot: narrowed projection
        if (voicebot_below > 0) {
            struct ggml_tensor * head = ggml_view_2d(ctx0, model.d_te, model.d_te->ne[0], voicebot_below, model.d_te->nb[1], 0);
            logits = ggml_mul_mat(ctx0, head, cur);
        }
        if (!voicebot_extra.empty()) {
            struct ggml_tensor * ids = ggml_new_tensor_1d(ctx0, GGML_TYPE_I32, voicebot_extra.size());
            ggml_set_name(ids, "voicebot_extra");
            ggml_set_input(ids);
            struct ggml_tensor * more = ggml_mul_mat(ctx0, ggml_get_rows(ctx0, model.d_te, ids), cur);
            logits = logits ? ggml_concat(ctx0, logits, more, 0) : more;
        }
    } else {
        logits = ggml_mul_mat(ctx0, model.d_te, cur);
    }
]=]
    "voicebot: narrowed projection" TRUE)

  _voicebot_edit("the last row only: the graph"
[=[
    //cur = ggml_view_2d(ctx0, cur, cur->ne[0], 1, cur->nb[1], (cur->ne[1] - 1)*cur->nb[1]);
]=]
[=[
    //cur = ggml_view_2d(ctx0, cur, cur->ne[0], 1, cur->nb[1], (cur->ne[1] - 1)*cur->nb[1]);
    if (!worst_case && !voicebot_in_decode && batch.n_tokens > 1) { // voicebot: last row only
        bool last_only = batch.logits[batch.n_tokens - 1] != 0;
        for (int i = 0; i + 1 < batch.n_tokens; ++i) {
            last_only = last_only && batch.logits[i] == 0;
        }
        if (last_only) {
            cur = ggml_view_2d(ctx0, cur, cur->ne[0], 1, cur->nb[1], (cur->ne[1] - 1)*cur->nb[1]);
        }
    }
]=]
    "voicebot: last row only" TRUE)

  _voicebot_edit("vocabulary subset: its input"
[=[
            struct ggml_tensor * KQ_mask = ggml_graph_get_tensor(gf, "KQ_mask");
]=]
[=[
            if (struct ggml_tensor * ids = ggml_graph_get_tensor(gf, "voicebot_extra")) { // voicebot: input
                ggml_backend_tensor_set(ids, voicebot_extra.data(), 0, ggml_nbytes(ids));
            }
            struct ggml_tensor * KQ_mask = ggml_graph_get_tensor(gf, "KQ_mask");
]=]
    "voicebot: input" TRUE)

  _voicebot_edit("vocabulary subset: rows as wide as computed"
[=[
        ggml_backend_tensor_get(logits, logits_out.data() + (n_vocab*i), sizeof(float)*(n_vocab*i), sizeof(float)*n_vocab);]=]
[=[
        const int64_t n_out = logits->ne[0]; // voicebot: row width
        const int64_t from = i - (n_tokens - logits->ne[1]); // the last row alone: row 0
        ggml_backend_tensor_get(logits, logits_out.data() + (n_out*i), sizeof(float)*(n_out*from), sizeof(float)*n_out);]=]
    "voicebot: row width" TRUE)

  _voicebot_edit("vocabulary subset: only in whisper_decode_with_state"
[=[
    whisper_kv_cache_seq_rm(state->kv_self, 0, n_past, -1);

    if (!whisper_decode_internal(*ctx, *state, state->batch, n_threads, false, nullptr, nullptr)) {]=]
[=[
    whisper_kv_cache_seq_rm(state->kv_self, 0, n_past, -1);

    voicebot_in_decode = true; // voicebot: only here
    const bool voicebot_ok = whisper_decode_internal(*ctx, *state, state->batch, n_threads, false, nullptr, nullptr);
    voicebot_in_decode = false;
    if (!voicebot_ok) {]=]
    "voicebot: only here" TRUE)

  _voicebot_edit("a tree of tokens: positions"
[=[
    voicebot_in_decode = true; // voicebot: only here
]=]
[=[
    voicebot_in_decode = true; // voicebot: only here
    if (voicebot_tree(n_tokens)) { // voicebot: tree positions
        for (int i = 0; i < n_tokens; ++i) {
            const int32_t p = voicebot_parent[i];
            if (p >= i) { voicebot_in_decode = false; return 1; } // parents come first
            state->batch.pos[i] = p < 0 ? n_past : state->batch.pos[p] + 1;
        }
    }
]=]
    "voicebot: tree positions" TRUE)

  _voicebot_edit("a tree of tokens: the mask"
[=[
                        if (!kv_self.cells[i].has_seq_id(seq_id) || kv_self.cells[i].pos > pos) {
                            data[h*(n_kv*n_tokens) + j*n_kv + i] = -INFINITY;
                        }
                    }
]=]
[=[
                        if (!kv_self.cells[i].has_seq_id(seq_id) || kv_self.cells[i].pos > pos) {
                            data[h*(n_kv*n_tokens) + j*n_kv + i] = -INFINITY;
                        }
                    }
                    if (voicebot_tree(n_tokens)) { // voicebot: tree mask
                        // The call's tokens sit in cells [head, head + n_tokens): each sees
                        // its own ancestors there, besides the cache's tokens before them.
                        float * row = data + h*(n_kv*n_tokens) + j*n_kv + kv_self.head;
                        for (int k = 0; k < n_tokens; ++k) { row[k] = -INFINITY; }
                        for (int k = j; k >= 0; k = voicebot_parent[k]) { row[k] = 0.0f; }
                    }
]=]
    "voicebot: tree mask" TRUE)

  if(NOT _voicebot_text STREQUAL _voicebot_before)
    file(WRITE "${_voicebot_src}" "${_voicebot_text}")
  endif()
endif()

set(_voicebot_src "${CMAKE_SOURCE_DIR}/ggml/src/ggml-cpu/ggml-cpu.c")
if(EXISTS "${_voicebot_src}")
  file(READ "${_voicebot_src}" _voicebot_text)
  set(_voicebot_before "${_voicebot_text}")

  _voicebot_edit("a barrier that yields"
[=[
    // wait for other threads
    while (atomic_load_explicit(&tp->n_barrier_passed, memory_order_relaxed) == n_passed) {
        ggml_thread_cpu_relax();
    }]=]
[=[
    // wait for other threads
    for (int spins = 0; atomic_load_explicit(&tp->n_barrier_passed, memory_order_relaxed) == n_passed; ) {
        ggml_thread_cpu_relax();
        if (++spins == 1024) { spins = 0; sched_yield(); } // voicebot: yield while waiting
    }]=]
    "voicebot: yield while waiting" TRUE)

  if(NOT _voicebot_text STREQUAL _voicebot_before)
    file(WRITE "${_voicebot_src}" "${_voicebot_text}")
  endif()
endif()
