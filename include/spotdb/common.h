/**
 * @file spotdb/common.h
 * @brief Export macro and C++ guards shared by every libspotdb header.
 *
 * Thread safety: this header declares no functions.
 */
#ifndef SPOTDB_COMMON_H
#define SPOTDB_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Only symbols marked SPOTDB_API leave the shared library; everything else
 * is compiled with hidden visibility. */
/** @def SPOTDB_API
 *  Marks a function exported from the shared library (default visibility
 *  with GCC and Clang); every public function carries it. */
#if defined(_WIN32)
#  define SPOTDB_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define SPOTDB_API __attribute__((visibility("default")))
#else
#  define SPOTDB_API
#endif

/** @def SPOTDB_BEGIN_DECLS
 *  Opens the `extern "C"` block of a header when it is compiled as C++;
 *  nothing in C.
 *  @def SPOTDB_END_DECLS
 *  Closes the block SPOTDB_BEGIN_DECLS opened. */
#ifdef __cplusplus
#  define SPOTDB_BEGIN_DECLS extern "C" {
#  define SPOTDB_END_DECLS }
#else
#  define SPOTDB_BEGIN_DECLS
#  define SPOTDB_END_DECLS
#endif

#endif /* SPOTDB_COMMON_H */
