/* Status codes shared by every clpar call: 0 is success, negative is an error.
 * OpenCL's own codes (-1..-72) and CLBlast's (-1024.., -2039..-2050) pass through
 * unchanged, so a failing clEnqueue or CLBlast call is reported with its real number;
 * clpar's own errors live at -3000 and below. One table gives name and message. */
#ifndef CLPAR_STATUS_H
#define CLPAR_STATUS_H

#include "clpar/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int clpar_status;

#define CLPAR_OK 0
#define CLPAR_EINVAL (-3001)   /* an argument or option is out of range or malformed */
#define CLPAR_ENOMEM (-3002)   /* host memory allocation failed */
#define CLPAR_EIO (-3003)      /* a file could not be opened, read or written */
#define CLPAR_EFORMAT (-3004)  /* a file's contents are malformed or truncated */
#define CLPAR_ENODEV (-3005)   /* no such device, or the spec selects none */
#define CLPAR_ESHAPE (-3006)   /* tensor shapes disagree with the model */
#define CLPAR_EBUILD (-3007)   /* an OpenCL program failed to build (see the detail message) */
#define CLPAR_EDEVMEM (-3008)  /* the device cannot hold an allocation of that size */
#define CLPAR_EABORTED (-3010) /* stopped because another rank failed */
#define CLPAR_EPROCESS (-3011) /* an MPI call failed, or another process of the run did */

/* Short symbolic name of a status ("CL_OUT_OF_RESOURCES", "CLPAR_EINVAL", ...).
 * Never NULL; the string is static. */
CLPAR_API const char *clpar_status_name(clpar_status status);

/* One-sentence description of a status. Never NULL; the string is static. */
CLPAR_API const char *clpar_status_message(clpar_status status);

/* The detailed message of the last error raised on the calling thread, naming the file,
 * device or option involved ("train-images-idx3-ubyte.gz: bad magic 0x00000000").
 * Valid until the next failing clpar call on this thread. Empty when none. */
CLPAR_API const char *clpar_last_error(void);

/* The library speaks in configuration fields, the tools in flags. A detail message marks
 * each field it names ("dp", "optim.lr", "stage_layers"); clpar_last_error shows the bare
 * name ("dp 3 is larger than batch 2"), and this returns the message with every field
 * replaced by rename(field, user), or left as it is where rename returns NULL, so a tool
 * says "--dp 3 is larger than --batch 2". Valid until the next call on this thread. */
typedef const char *(*clpar_field_name_fn)(const char *field, void *user);
CLPAR_API const char *clpar_last_error_renamed(clpar_field_name_fn rename, void *user);

#ifdef __cplusplus
}
#endif
#endif
