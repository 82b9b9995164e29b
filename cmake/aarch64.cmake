# cmake/aarch64.cmake - cross build for 64-bit ARM Linux with Debian's cross compiler
# (gcc-aarch64-linux-gnu) against the arm64 -dev packages installed through multiarch
# (dpkg --add-architecture arm64; scripts/ci_arm64.sh installs them). Executables run through
# qemu-user (the crosscompiling emulator), so ctest and the build's helper steps work too.
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(BT_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${BT_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${BT_CROSS_TRIPLE}-g++)
# headers and libraries of the arm64 packages; programs of the build machine
set(CMAKE_FIND_ROOT_PATH /usr/${BT_CROSS_TRIPLE} /usr/lib/${BT_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_LIBRARY_ARCHITECTURE ${BT_CROSS_TRIPLE})
# pkg-config answers for the arm64 .pc files only
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${BT_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
# qemu-aarch64 with the cross libc (the arm64 multiarch libraries are in /usr/lib/aarch64-linux-gnu)
find_program(BT_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(BT_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BT_QEMU_AARCH64};-L;/usr/${BT_CROSS_TRIPLE})
endif()
