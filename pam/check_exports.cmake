# cmake -DMODULE=path/pam_jitgate.so -P check_exports.cmake
# Fails unless the module's dynamic symbol table defines exactly the three
# pam_sm_* entry points (nm -D --defined-only).
execute_process(COMMAND nm -D --defined-only ${MODULE}
  OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm failed on ${MODULE}")
endif()
string(REGEX MATCHALL "[^\n]+" lines "${out}")
set(names "")
foreach(line IN LISTS lines)
  string(REGEX REPLACE "^.* " "" name "${line}")
  list(APPEND names ${name})
endforeach()
list(SORT names)
set(want "pam_sm_acct_mgmt;pam_sm_authenticate;pam_sm_setcred")
if(NOT names STREQUAL want)
  message(FATAL_ERROR "pam_jitgate.so exports [${names}], want exactly [${want}]")
endif()
message(STATUS "exports: ${names}")
