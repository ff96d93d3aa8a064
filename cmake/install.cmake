# Installation and the exported CMake package.
#
# After `cmake --install build --prefix /opt/w4a16`, a downstream project does
#   find_package(w4a16 REQUIRED)            # with CMAKE_PREFIX_PATH=/opt/w4a16
#   target_link_libraries(app PRIVATE w4a16::w4a16)
# and can run the CLI as w4a16::cli. Layout (GNUInstallDirs):
#   bin/w4a16                        the CLI
#   include/w4a16/*.h, *.hpp         the public headers (C++ and plain C)
#   lib/libw4a16.a                   the library (static unless BUILD_SHARED_LIBS)
#   lib/cmake/w4a16/                 w4a16Config.cmake, w4a16ConfigVersion.cmake, w4a16Targets*.cmake
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The C header repeats the version as macros for C callers; refuse to build a package whose
# header disagrees with project().
file(STRINGS ${PROJECT_SOURCE_DIR}/include/w4a16/w4a16.h _w4a16_version_lines REGEX "^#define W4A16_VERSION_")
foreach(_part MAJOR MINOR PATCH)
  string(REGEX MATCH "W4A16_VERSION_${_part} ([0-9]+)" _ "${_w4a16_version_lines}")
  list(APPEND _w4a16_header_version "${CMAKE_MATCH_1}")
endforeach()
list(JOIN _w4a16_header_version "." _w4a16_header_version)
if(NOT _w4a16_header_version VERSION_EQUAL PROJECT_VERSION)
  message(FATAL_ERROR "include/w4a16/w4a16.h says version ${_w4a16_header_version}, "
                      "CMakeLists.txt says ${PROJECT_VERSION}: update both")
endif()

set(W4A16_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/w4a16 CACHE STRING
    "Where to install w4a16Config.cmake, relative to the prefix")

install(TARGETS w4a16
  EXPORT w4a16Targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  # Adds the include directory to the exported target's interface even when src/CMakeLists.txt's
  # $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}> was expanded before GNUInstallDirs was included.
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set_target_properties(w4a16_cli PROPERTIES EXPORT_NAME cli)  # w4a16::cli
install(TARGETS w4a16_cli EXPORT w4a16Targets RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/w4a16
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")

install(EXPORT w4a16Targets NAMESPACE w4a16:: DESTINATION ${W4A16_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/w4a16Config.cmake.in
  ${PROJECT_BINARY_DIR}/w4a16Config.cmake
  INSTALL_DESTINATION ${W4A16_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/w4a16ConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/w4a16Config.cmake ${PROJECT_BINARY_DIR}/w4a16ConfigVersion.cmake
  DESTINATION ${W4A16_INSTALL_CMAKEDIR})

# The package test: install this build into a scratch prefix, then configure, build and run
# tests/package (a downstream project that uses both headers) against it.
if(W4A16_BUILD_TESTS)
  # A list would be split into several ctest arguments; run.cmake turns '|' back into ';'.
  string(REPLACE ";" "|" _w4a16_prefix_path "${CMAKE_PREFIX_PATH}")
  add_test(NAME install_find_package
    COMMAND ${CMAKE_COMMAND}
      -DW4A16_BINARY_DIR=${PROJECT_BINARY_DIR}
      -DW4A16_PACKAGE_SOURCE_DIR=${PROJECT_SOURCE_DIR}/tests/package
      -DW4A16_WORK_DIR=${PROJECT_BINARY_DIR}/package-test
      -DW4A16_CONFIG=$<CONFIG>
      -DW4A16_GENERATOR=${CMAKE_GENERATOR}
      -DW4A16_C_COMPILER=${CMAKE_C_COMPILER}
      -DW4A16_CXX_COMPILER=${CMAKE_CXX_COMPILER}
      -DW4A16_SANITIZE=${W4A16_SANITIZE}
      "-DW4A16_PREFIX_PATH=${_w4a16_prefix_path}"
      -P ${PROJECT_SOURCE_DIR}/tests/package/run.cmake)
  set_tests_properties(install_find_package PROPERTIES LABELS package TIMEOUT 120)
endif()
