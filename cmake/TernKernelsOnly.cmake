# Dependencies of a TERN_KERNELS_ONLY build: Catch2 v2 (header-only) for the kernel tests, nothing
# else. In a cross build the package's include directory is the host's /usr/include, whose C
# library headers must not reach the cross compiler: the tests see a directory holding catch2/ only.
if(NOT TERN_BUILD_TESTS)
  return()
endif()
find_package(Catch2 2 REQUIRED)
if(CMAKE_CROSSCOMPILING)
  get_target_property(catch2_dirs Catch2::Catch2 INTERFACE_INCLUDE_DIRECTORIES)
  find_path(TERN_CATCH2_DIR catch2/catch.hpp PATHS ${catch2_dirs} NO_DEFAULT_PATH
            NO_CMAKE_FIND_ROOT_PATH REQUIRED)
  set(catch2_only ${CMAKE_BINARY_DIR}/catch2-include)
  file(MAKE_DIRECTORY ${catch2_only})
  file(CREATE_LINK ${TERN_CATCH2_DIR}/catch2 ${catch2_only}/catch2 SYMBOLIC)
  set_target_properties(Catch2::Catch2 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${catch2_only})
endif()
