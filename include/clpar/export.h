/* Which symbols libclpar exports: it is built with -fvisibility=hidden, and every function of
 * the public headers is marked CLPAR_API, so `nm -D libclpar.so` lists only those. */
#ifndef CLPAR_EXPORT_H
#define CLPAR_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define CLPAR_API __attribute__((visibility("default")))
#else
#define CLPAR_API
#endif

#endif
