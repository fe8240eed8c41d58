/*
 * msgr error codes.
 *
 * Functions return 0 or a negative value. OS errors are -errno exactly so
 * that the simulated stack can return the very codes the kernel would and
 * the recovery paths under test are the real ones. Codes of our own live
 * below -4000 so they never collide with an errno.
 */
#ifndef MSGR_ERR_H
#define MSGR_ERR_H

/* clang-format off */
#define MSGR_ERR_MAP(X)                                                        \
    X(BAD_BANNER,      -4001, "peer sent a banner that is not msgr2")          \
    X(BAD_CRC,         -4002, "frame crc mismatch")                            \
    X(BAD_FRAME,       -4003, "malformed frame")                               \
    X(TOO_BIG,         -4004, "frame or segment exceeds the configured bound") \
    X(PROTO,           -4005, "protocol violation: frame not valid in state")  \
    X(FEATURES,        -4006, "peer lacks required features")                  \
    X(AUTH,            -4007, "authentication failed or method not allowed")   \
    X(SESSION_RESET,   -4008, "session reset by peer")                         \
    X(SHUTDOWN,        -4009, "messenger is shutting down")                    \
    X(CLOSED,          -4010, "connection is closed")                          \
    X(DECODE,          -4011, "payload does not decode")                       \
    X(WRONG_PEER,      -4012, "peer is not the entity we dialled")             \
    X(ABORTED,         -4013, "frame aborted by sender")                       \
    X(STATE,           -4014, "call not valid in the current state")        \
    X(INJECTED,        -4015, "fault injected at a protocol breakpoint")
/* clang-format on */

enum msgr_err {
#define MSGR_ERR_ENUM_(name, value, msg) MSGR_E##name = (value),
    MSGR_ERR_MAP(MSGR_ERR_ENUM_)
#undef MSGR_ERR_ENUM_
};

/* A message for any code this library returns: ours or -errno. */
const char *msgr_strerror(int err);
/* The symbolic name ("BAD_CRC", "ECONNRESET"); "?" when unknown. */
const char *msgr_err_name(int err);

#endif
