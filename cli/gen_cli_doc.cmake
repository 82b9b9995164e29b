# gen_cli_doc.cmake - writes docs/cli.md from `bt-pipeline help --markdown` (target cli-doc).
execute_process(COMMAND ${EXE} help --markdown OUTPUT_FILE ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "bt-pipeline help --markdown failed (${rc})")
endif()
