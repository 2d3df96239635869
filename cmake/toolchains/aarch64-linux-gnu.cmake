# Cross build for 64-bit ARM Linux with Debian's g++-aarch64-linux-gnu; tests run under qemu-user.
# Used by the `aarch64` preset (kernels only: the host libraries of the engine are x86 packages).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Header-only packages (Catch2 v2) are found in the host's /usr/lib/cmake.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# Static executables need no ARM sysroot at run time: ctest, catch_discover_tests and a plain
# `qemu-aarch64 build/aarch64/tests/test_kernels_isa` all work. QEMU_CPU=cortex-a53 (no dotprod)
# or QEMU_CPU=max (dotprod) picks the emulated CPU.
set(CMAKE_EXE_LINKER_FLAGS_INIT -static)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
