/*
 * Error names and messages.
 *
 * Our own codes come from MSGR_ERR_MAP so the enum and the strings cannot
 * drift. For -errno we keep a fixed table instead of calling strerror():
 * strerror() may return a buffer shared between threads, and strerror_r()
 * differs between glibc and POSIX; fixed strings are thread-safe and the
 * same on every machine, which keeps logs and traces comparable.
 */
#include <errno.h>
#include <stddef.h>

#include "msgr/err.h"

/*
 * The errnos a messenger can plausibly return. EWOULDBLOCK and ENOTSUP are
 * left out: on Linux they equal EAGAIN and EOPNOTSUPP and would be duplicate
 * case labels.
 */
/* clang-format off */
#define MSGR_ERRNO_MAP(X)                                                      \
    X(EPERM,           "Operation not permitted")                              \
    X(ENOENT,          "No such file or directory")                            \
    X(EINTR,           "Interrupted system call")                              \
    X(EIO,             "Input/output error")                                   \
    X(EBADF,           "Bad file descriptor")                                  \
    X(EAGAIN,          "Resource temporarily unavailable")                     \
    X(ENOMEM,          "Cannot allocate memory")                               \
    X(EACCES,          "Permission denied")                                    \
    X(EFAULT,          "Bad address")                                          \
    X(EBUSY,           "Device or resource busy")                              \
    X(EEXIST,          "File exists")                                          \
    X(EINVAL,          "Invalid argument")                                     \
    X(ENFILE,          "Too many open files in system")                        \
    X(EMFILE,          "Too many open files")                                  \
    X(ENOSPC,          "No space left on device")                              \
    X(EPIPE,           "Broken pipe")                                          \
    X(ERANGE,          "Numerical result out of range")                        \
    X(EDEADLK,         "Resource deadlock avoided")                            \
    X(ENOSYS,          "Function not implemented")                             \
    X(ENODATA,         "No data available")                                    \
    X(ETIME,           "Timer expired")                                        \
    X(EPROTO,          "Protocol error")                                       \
    X(EBADMSG,         "Bad message")                                          \
    X(EOVERFLOW,       "Value too large for defined data type")                \
    X(ENOTSOCK,        "Socket operation on non-socket")                       \
    X(EDESTADDRREQ,    "Destination address required")                         \
    X(EMSGSIZE,        "Message too long")                                     \
    X(EPROTOTYPE,      "Protocol wrong type for socket")                       \
    X(ENOPROTOOPT,     "Protocol not available")                               \
    X(EPROTONOSUPPORT, "Protocol not supported")                               \
    X(EOPNOTSUPP,      "Operation not supported")                              \
    X(EAFNOSUPPORT,    "Address family not supported by protocol")             \
    X(EADDRINUSE,      "Address already in use")                               \
    X(EADDRNOTAVAIL,   "Cannot assign requested address")                      \
    X(ENETDOWN,        "Network is down")                                      \
    X(ENETUNREACH,     "Network is unreachable")                               \
    X(ENETRESET,       "Network dropped connection on reset")                  \
    X(ECONNABORTED,    "Software caused connection abort")                     \
    X(ECONNRESET,      "Connection reset by peer")                             \
    X(ENOBUFS,         "No buffer space available")                            \
    X(EISCONN,         "Transport endpoint is already connected")              \
    X(ENOTCONN,        "Transport endpoint is not connected")                  \
    X(ESHUTDOWN,       "Cannot send after transport endpoint shutdown")        \
    X(ETIMEDOUT,       "Connection timed out")                                 \
    X(ECONNREFUSED,    "Connection refused")                                   \
    X(EHOSTDOWN,       "Host is down")                                         \
    X(EHOSTUNREACH,    "No route to host")                                     \
    X(EALREADY,        "Operation already in progress")                        \
    X(EINPROGRESS,     "Operation now in progress")                            \
    X(ESTALE,          "Stale file handle")                                    \
    X(ECANCELED,       "Operation canceled")
/* clang-format on */

/* Linux errnos stay below 4096; also keeps -err clear of INT_MIN. */
#define MSGR_ERRNO_FLOOR_ (-4096)

const char *
msgr_strerror(int err)
{
    if (err == 0)
        return "success";
    switch (err) {
#define MSGR_ERR_MSG_(name, value, msg)                                        \
    case (value):                                                              \
        return (msg);
        MSGR_ERR_MAP(MSGR_ERR_MSG_)
#undef MSGR_ERR_MSG_
    default:
        break;
    }
    if (err < 0 && err > MSGR_ERRNO_FLOOR_) {
        switch (-err) {
#define MSGR_ERRNO_MSG_(name, msg)                                             \
    case name:                                                                 \
        return (msg);
            MSGR_ERRNO_MAP(MSGR_ERRNO_MSG_)
#undef MSGR_ERRNO_MSG_
        default:
            break;
        }
    }
    return "unknown error";
}

const char *
msgr_err_name(int err)
{
    if (err == 0)
        return "OK";
    switch (err) {
#define MSGR_ERR_NAME_(name, value, msg)                                       \
    case (value):                                                              \
        return #name;
        MSGR_ERR_MAP(MSGR_ERR_NAME_)
#undef MSGR_ERR_NAME_
    default:
        break;
    }
    if (err < 0 && err > MSGR_ERRNO_FLOOR_) {
        switch (-err) {
#define MSGR_ERRNO_NAME_(name, msg)                                            \
    case name:                                                                 \
        return #name;
            MSGR_ERRNO_MAP(MSGR_ERRNO_NAME_)
#undef MSGR_ERRNO_NAME_
        default:
            break;
        }
    }
    return "?";
}
