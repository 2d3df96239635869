# Test script: the objects of one ISA's kernels (OBJECTS, '|'-separated) may export only symbols in
# their own namespace tern::kernels::<ISA>. An exported inline function or template instance (a
# weak symbol) compiled with, say, AVX-512 flags could be the copy the linker keeps for every
# caller and crash an AVX2-only CPU (ruy's path.h explains the hazard).
#   cmake -DNM=nm -DISA=avx512 -DOBJECTS=a.o|b.o -P check_isa_symbols.cmake
string(REPLACE "|" ";" objects "${OBJECTS}")
set(bad "")
foreach(obj ${objects})
  execute_process(COMMAND ${NM} -C --defined-only ${obj} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${obj}")
  endif()
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line ${lines})
    # "<address> <type> <name>": upper-case types (and u, v, w) are visible to the linker.
    if(line MATCHES "^[0-9a-fA-F]* ([A-Zuvw]) (.*)$")
      set(name "${CMAKE_MATCH_2}")
      if(NOT name MATCHES "^tern::kernels::${ISA}::")
        string(APPEND bad "\n  ${obj}: ${CMAKE_MATCH_1} ${name}")
      endif()
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "ISA ${ISA} objects export symbols outside tern::kernels::${ISA}:${bad}")
endif()
message(STATUS "ISA ${ISA}: ${objects} export only tern::kernels::${ISA} symbols")
