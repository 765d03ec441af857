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
#if defined(_WIN32)
#  define SPOTDB_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define SPOTDB_API __attribute__((visibility("default")))
#else
#  define SPOTDB_API
#endif

#ifdef __cplusplus
#  define SPOTDB_BEGIN_DECLS extern "C" {
#  define SPOTDB_END_DECLS }
#else
#  define SPOTDB_BEGIN_DECLS
#  define SPOTDB_END_DECLS
#endif

#endif /* SPOTDB_COMMON_H */
