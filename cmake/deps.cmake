# The third-party dependencies: nlohmann_json, CLI11 and fmt (header-only) here, GoogleTest through
# w4a16_find_gtest() (called from tests/CMakeLists.txt).
#
# Default: the installed packages, through find_package (on Debian: scripts/deps.sh).
# With -DW4A16_DEPS_DIR=<folder> (the layout that scripts/gpu-deps.sh writes, for a machine without
# the -dev packages: scripts/gpu-check.sh), no find_package is called for them; the same target
# names are defined from that folder instead:
#   nlohmann_json::nlohmann_json  <folder>/nlohmann_json/include
#   CLI11::CLI11                  <folder>/CLI11/include
#   fmt::fmt-header-only          <folder>/fmt/include, FMT_HEADER_ONLY=1
#   GTest::gtest, GTest::gtest_main   built from <folder>/googletest (gtest only, nothing installed)
set(W4A16_DEPS_DIR "" CACHE PATH
    "Folder with the dependencies copied by scripts/gpu-deps.sh; empty: find_package")

if(NOT W4A16_DEPS_DIR)
  find_package(nlohmann_json 3.11 REQUIRED)
  find_package(CLI11 2.1 REQUIRED)
  find_package(fmt 9 REQUIRED)
else()
  get_filename_component(_w4a16_deps "${W4A16_DEPS_DIR}" ABSOLUTE BASE_DIR "${PROJECT_SOURCE_DIR}")
  if(NOT IS_DIRECTORY "${_w4a16_deps}")
    message(FATAL_ERROR "W4A16_DEPS_DIR=${W4A16_DEPS_DIR} is not a folder (scripts/gpu-deps.sh writes it)")
  endif()

  # Reads the version a header declares; refuses a header older than what find_package would ask.
  function(_w4a16_header_version name header minimum)
    set(file "${_w4a16_deps}/${header}")
    if(NOT EXISTS "${file}")
      message(FATAL_ERROR "W4A16_DEPS_DIR: ${file} is missing (run scripts/gpu-deps.sh)")
    endif()
    file(READ "${file}" text)
    if(name STREQUAL "nlohmann_json")
      string(REGEX MATCH "NLOHMANN_JSON_VERSION_MAJOR ([0-9]+)" _ "${text}")
      set(major "${CMAKE_MATCH_1}")
      string(REGEX MATCH "NLOHMANN_JSON_VERSION_MINOR ([0-9]+)" _ "${text}")
      set(version "${major}.${CMAKE_MATCH_1}")
    elseif(name STREQUAL "CLI11")
      string(REGEX MATCH "CLI11_VERSION \"([0-9.]+)\"" _ "${text}")
      set(version "${CMAKE_MATCH_1}")
    elseif(name STREQUAL "fmt")
      string(REGEX MATCH "FMT_VERSION ([0-9]+)" _ "${text}")  # major * 10000 + minor * 100 + patch
      math(EXPR version_major "${CMAKE_MATCH_1} / 10000")
      math(EXPR version_minor "(${CMAKE_MATCH_1} / 100) % 100")
      set(version "${version_major}.${version_minor}")
    endif()
    if(NOT version OR version VERSION_LESS minimum)
      message(FATAL_ERROR "W4A16_DEPS_DIR: ${name} '${version}' in ${file}, need ${minimum} or newer")
    endif()
    message(STATUS "w4a16: ${name} ${version} from ${W4A16_DEPS_DIR}")
  endfunction()
  _w4a16_header_version(nlohmann_json nlohmann_json/include/nlohmann/detail/abi_macros.hpp 3.11)
  _w4a16_header_version(CLI11 CLI11/include/CLI/Version.hpp 2.1)
  _w4a16_header_version(fmt fmt/include/fmt/core.h 9)

  # IMPORTED, like the targets find_package defines: their include folders count as system headers
  # (no warnings from inside them), and install(EXPORT) may name them without exporting them.
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_w4a16_deps}/nlohmann_json/include")
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  set_target_properties(CLI11::CLI11 PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_w4a16_deps}/CLI11/include")
  add_library(fmt::fmt-header-only INTERFACE IMPORTED)
  set_target_properties(fmt::fmt-header-only PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_w4a16_deps}/fmt/include"
    INTERFACE_COMPILE_DEFINITIONS "FMT_HEADER_ONLY=1")
endif()

# GoogleTest: GTest::gtest and GTest::gtest_main. A macro, so that find_package's results land in
# the caller's scope exactly as the plain call did.
macro(w4a16_find_gtest)
  if(NOT W4A16_DEPS_DIR)
    find_package(GTest REQUIRED)
  elseif(NOT TARGET GTest::gtest)
    if(NOT EXISTS "${_w4a16_deps}/googletest/CMakeLists.txt")
      message(FATAL_ERROR "W4A16_DEPS_DIR: ${_w4a16_deps}/googletest is missing (run scripts/gpu-deps.sh)")
    endif()
    # gtest only (no gmock), nothing installed; googletest's option() calls take these (CMP0077).
    set(BUILD_GMOCK OFF)
    set(INSTALL_GTEST OFF)
    # EXCLUDE_FROM_ALL: built only as a dependency of the tests that link it. googletest's own
    # library targets define the aliases GTest::gtest and GTest::gtest_main.
    add_subdirectory("${_w4a16_deps}/googletest" "${PROJECT_BINARY_DIR}/_deps/googletest" EXCLUDE_FROM_ALL)
    if(NOT TARGET GTest::gtest OR NOT TARGET GTest::gtest_main)
      message(FATAL_ERROR "W4A16_DEPS_DIR: googletest did not define GTest::gtest and GTest::gtest_main")
    endif()
  endif()
endmacro()
