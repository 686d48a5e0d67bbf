# scripts/build-rocksdb.sh --stock passes this file as CMAKE_PROJECT_INCLUDE when it configures the
# unmodified RocksDB 10.1.3 tree (CMake runs it at the end of RocksDB's project() call), so that
# tree, with no change to its source, also builds the test driver tests/driver/ringmerge_driver.cc
# (RINGMERGE_DRIVER_SRC) against the stock librocksdb.a. The target is added at the end of the
# top-level CMakeLists.txt (a deferred call), where and as rocksdb-patch/ adds it to the patched
# tree:
#
#   add_executable(ringmerge_driver ${RINGMERGE_DIR}/tests/driver/ringmerge_driver.cc)
#   target_link_libraries(ringmerge_driver ${ROCKSDB_LIB} ${THIRDPARTY_LIBS})
#
# so both drivers compile with the same flags, defines and include directories and link the same
# third-party libraries; they differ only in the librocksdb.a they link (and the patched one's
# THIRDPARTY_LIBS add libringmerge.a and its system libraries). Nothing else in the tree changes:
# its objects compile with the same command lines as without this file (and hit the same ccache).
if(NOT CMAKE_CURRENT_SOURCE_DIR STREQUAL CMAKE_SOURCE_DIR OR RINGMERGE_STOCK_DRIVER_SCHEDULED)
  return()
endif()
if(NOT RINGMERGE_DRIVER_SRC OR NOT EXISTS "${RINGMERGE_DRIVER_SRC}")
  message(FATAL_ERROR "stock-driver.cmake: RINGMERGE_DRIVER_SRC (the driver's .cc) is not set or missing")
endif()
set(RINGMERGE_STOCK_DRIVER_SCHEDULED ON)

function(ringmerge_add_stock_driver)
  add_executable(ringmerge_driver ${RINGMERGE_DRIVER_SRC})
  target_link_libraries(ringmerge_driver ${ROCKSDB_LIB} ${THIRDPARTY_LIBS})
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL ringmerge_add_stock_driver)
