# Included by CMake after each project() of whisper-rs-sys's bundled whisper.cpp
# (CMAKE_PROJECT_INCLUDE, set in .cargo/config.toml and passed on by its build script).
#
# Why: whisper.cpp computes the decoder's logits for every token of a call but copies
# out only the last row. Knowledge-base scoring (src/stt/forced.rs) needs every row, so
# that one decoder call scores a whole phrasing instead of one token. This edits the
# build's own copy of the sources (in cargo's OUT_DIR), only in the public
# whisper_decode_with_state, which whisper_full does not use. The gateway checks at
# start that the rows are there (src/stt/forced.rs, `rows_check`) and falls back to one
# token per call when they are not.
set(_voicebot_src "${CMAKE_SOURCE_DIR}/src/whisper.cpp")
if(EXISTS "${_voicebot_src}")
  file(READ "${_voicebot_src}" _voicebot_text)
  set(_voicebot_from "    whisper_batch_prep_legacy(state->batch, tokens, n_tokens, n_past, 0);\n\n    whisper_kv_cache_seq_rm(state->kv_self, 0, n_past, -1);")
  set(_voicebot_to "    whisper_batch_prep_legacy(state->batch, tokens, n_tokens, n_past, 0);\n    for (int i = 0; i < n_tokens; ++i) { state->batch.logits[i] = 1; } // voicebot: every row\n\n    whisper_kv_cache_seq_rm(state->kv_self, 0, n_past, -1);")
  string(FIND "${_voicebot_text}" "voicebot: every row" _voicebot_done)
  if(_voicebot_done EQUAL -1)
    string(FIND "${_voicebot_text}" "${_voicebot_from}" _voicebot_at)
    if(_voicebot_at EQUAL -1)
      message(WARNING "voicebot: whisper_decode_with_state not as expected; logits stay last-row only")
    else()
      string(REPLACE "${_voicebot_from}" "${_voicebot_to}" _voicebot_text "${_voicebot_text}")
      file(WRITE "${_voicebot_src}" "${_voicebot_text}")
      message(STATUS "voicebot: whisper_decode_with_state keeps every row of logits")
    endif()
  endif()
endif()
