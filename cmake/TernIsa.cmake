# Per-ISA kernel sources: each ISA directory is compiled with its own flags only, never the whole
# project (a scalar file built with -mavx2 could silently run AVX instructions on any CPU).
#
#   tern_add_isa(<target> <isa> DIR <dir> FLAGS <flag>...)
#
# compiles <dir>/*.cpp into an object library tern_kernels_<isa> with FLAGS, adds its objects to
# <target>, and defines TERN_HAVE_<ISA> on <target> so that the dispatcher (kernels/tables.cpp)
# registers the ISA's table. The ISA is left out, with a message, when the compiler rejects a flag
# or the directory has no sources yet. TERN_ISA_OBJECT_LIBS lists the object libraries built, for
# the test that checks they share no inline code with the rest (tests/check_isa_symbols.cmake).
include(CheckCXXCompilerFlag)

set(TERN_ISA_OBJECT_LIBS "" CACHE INTERNAL "per-ISA kernel object libraries")

function(tern_add_isa target isa)
  cmake_parse_arguments(ARG "" "DIR" "FLAGS" ${ARGN})
  string(TOUPPER "${isa}" upper)
  file(GLOB sources CONFIGURE_DEPENDS ${ARG_DIR}/*.cpp)
  if(NOT sources)
    message(STATUS "tern: ISA ${isa}: no sources in ${ARG_DIR}, not built")
    return()
  endif()
  foreach(flag ${ARG_FLAGS})
    string(MAKE_C_IDENTIFIER "TERN_CXX_HAS${flag}" var)
    check_cxx_compiler_flag(${flag} ${var})
    if(NOT ${var})
      message(STATUS "tern: ISA ${isa}: compiler rejects ${flag}, not built")
      return()
    endif()
  endforeach()
  set(lib tern_kernels_${isa})
  add_library(${lib} OBJECT ${sources})
  target_link_libraries(${lib} PRIVATE tern_quant)
  target_compile_options(${lib} PRIVATE ${ARG_FLAGS} -ffp-contract=off)
  tern_set_warnings(${lib})
  target_sources(${target} PRIVATE $<TARGET_OBJECTS:${lib}>)
  target_compile_definitions(${target} PRIVATE TERN_HAVE_${upper}=1)
  set(TERN_ISA_OBJECT_LIBS ${TERN_ISA_OBJECT_LIBS} ${lib} CACHE INTERNAL "")
  message(STATUS "tern: ISA ${isa} built with ${ARG_FLAGS}")
endfunction()

# The processor family of the target (not of the build machine, for cross builds).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
  set(TERN_ARCH_X86 ON)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(TERN_ARCH_ARM64 ON)
endif()
