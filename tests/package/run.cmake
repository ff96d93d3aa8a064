# The ctest `install_find_package` (registered in cmake/install.cmake): installs the current
# build into a scratch prefix, then configures, builds and runs the downstream project in this
# folder against it, the way a user of the package would.
#
#   cmake -DW4A16_BINARY_DIR=<build> -DW4A16_PACKAGE_SOURCE_DIR=<this folder> -DW4A16_WORK_DIR=<scratch>
#         [-DW4A16_CONFIG=Release] [-DW4A16_GENERATOR=...] [-DW4A16_C_COMPILER=...] [-DW4A16_CXX_COMPILER=...]
#         [-DW4A16_SANITIZE=ON] [-DW4A16_PREFIX_PATH=a|b] -P run.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var W4A16_BINARY_DIR W4A16_PACKAGE_SOURCE_DIR W4A16_WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()

set(prefix ${W4A16_WORK_DIR}/prefix)
set(build ${W4A16_WORK_DIR}/build)
file(REMOVE_RECURSE ${W4A16_WORK_DIR})

function(step name)
  message(STATUS "[package] ${name}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[package] ${name} failed (${rc}):\n${ARGN}\n${out}")
  endif()
  message("${out}")
endfunction()

set(config_args)
if(W4A16_CONFIG)
  set(config_args --config ${W4A16_CONFIG})
endif()

# 1. Install.
step("install into ${prefix}" ${CMAKE_COMMAND} --install ${W4A16_BINARY_DIR} --prefix ${prefix} ${config_args})
foreach(file include/w4a16/w4a16.h include/w4a16/w4a16.hpp include/w4a16/float16.hpp)
  if(NOT EXISTS ${prefix}/${file})
    message(FATAL_ERROR "[package] ${file} was not installed")
  endif()
endforeach()
file(GLOB_RECURSE config_files ${prefix}/*/w4a16Config.cmake)
file(GLOB cli ${prefix}/bin/w4a16 ${prefix}/bin/w4a16.exe)
if(NOT config_files OR NOT cli)
  message(FATAL_ERROR "[package] w4a16Config.cmake or bin/w4a16 was not installed")
endif()

# 2. Configure the downstream project with the compilers (and sanitizer) of the main build:
# a library built with ASan/UBSan can only be linked into a program built the same way.
string(REPLACE "|" ";" prefix_path "${prefix};${W4A16_PREFIX_PATH}")
set(configure_args -S ${W4A16_PACKAGE_SOURCE_DIR} -B ${build} "-DCMAKE_PREFIX_PATH=${prefix_path}")
if(W4A16_GENERATOR)
  list(APPEND configure_args -G ${W4A16_GENERATOR})
endif()
if(W4A16_CONFIG)
  list(APPEND configure_args -DCMAKE_BUILD_TYPE=${W4A16_CONFIG})
endif()
foreach(lang C CXX)
  if(W4A16_${lang}_COMPILER)
    list(APPEND configure_args -DCMAKE_${lang}_COMPILER=${W4A16_${lang}_COMPILER})
  endif()
endforeach()
if(W4A16_SANITIZE)
  # The same flags as the top-level CMakeLists.txt uses for W4A16_SANITIZE.
  set(flags "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined")
  list(APPEND configure_args "-DCMAKE_C_FLAGS=${flags}" "-DCMAKE_CXX_FLAGS=${flags}"
       "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined")
endif()
step("configure ${W4A16_PACKAGE_SOURCE_DIR}" ${CMAKE_COMMAND} ${configure_args})

# 3. Build and run both programs.
step("build" ${CMAKE_COMMAND} --build ${build} ${config_args})
foreach(program package_cpp package_c)
  file(GLOB exe ${build}/${program} ${build}/${program}.exe ${build}/${W4A16_CONFIG}/${program}.exe)
  if(NOT exe)
    message(FATAL_ERROR "[package] ${program} was not built")
  endif()
  step("run ${program}" ${exe})
endforeach()
message(STATUS "[package] OK")
