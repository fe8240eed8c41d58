/*
 * The msgr2 connection state machine, declared once.
 *
 * Client:  NONE -> START_CONNECT -> CONNECTING (tcp) -> BANNER_CONNECTING
 *          -> HELLO_CONNECTING -> AUTH_CONNECTING -> AUTH_CONNECTING_SIGN
 *          -> SESSION_CONNECTING | SESSION_RECONNECTING -> READY
 * Server:  NONE -> START_ACCEPT -> BANNER_ACCEPTING -> HELLO_ACCEPTING
 *          -> AUTH_ACCEPTING -> AUTH_ACCEPTING_SIGN -> SESSION_ACCEPTING
 *          -> READY
 * Faults:  any handshake state or READY -> START_CONNECT (reconnect, after
 *          a backoff in WAIT or immediately), STANDBY (nothing to send, or a
 *          server policy), or CLOSED (lossy, mark_down, shutdown).
 *          STANDBY -> START_CONNECT when something is queued (clients);
 *          STANDBY, WAIT, START_CONNECT or any handshake state -> READY when
 *          the peer's SESSION_RECONNECT is accepted and its socket moves
 *          into this connection (reuse).
 *
 * X(name, allowed next states as a bitmask of S_(...) terms)
 * The mask is checked by conn_set_state in every build, as curl's mstate().
 */
#ifndef MSGR_CONN_FSM_H
#define MSGR_CONN_FSM_H

/* clang-format off */
#define MSGR_CONN_STATES(X)                                                   \
    X(NONE,                 S_(START_CONNECT) | S_(START_ACCEPT) | S_(CLOSED)) \
    X(START_CONNECT,        S_(CONNECTING) | S_(WAIT) | S_(STANDBY) | S_(CLOSED) | S_(READY)) \
    X(CONNECTING,           S_(BANNER_CONNECTING) | FAULTS)                   \
    X(BANNER_CONNECTING,    S_(HELLO_CONNECTING) | FAULTS)                    \
    X(HELLO_CONNECTING,     S_(AUTH_CONNECTING) | FAULTS)                     \
    X(AUTH_CONNECTING,      S_(AUTH_CONNECTING_SIGN) | FAULTS)                \
    X(AUTH_CONNECTING_SIGN, S_(SESSION_CONNECTING) | S_(SESSION_RECONNECTING) | FAULTS) \
    X(SESSION_CONNECTING,   S_(READY) | FAULTS)                               \
    X(SESSION_RECONNECTING, S_(READY) | S_(SESSION_CONNECTING) | FAULTS)     \
    X(START_ACCEPT,         S_(BANNER_ACCEPTING) | FAULTS)                    \
    X(BANNER_ACCEPTING,     S_(HELLO_ACCEPTING) | FAULTS)                     \
    X(HELLO_ACCEPTING,      S_(AUTH_ACCEPTING) | FAULTS)                      \
    X(AUTH_ACCEPTING,       S_(AUTH_ACCEPTING_SIGN) | FAULTS)                 \
    X(AUTH_ACCEPTING_SIGN,  S_(SESSION_ACCEPTING) | FAULTS)                   \
    X(SESSION_ACCEPTING,    S_(READY) | FAULTS)                               \
    X(READY,                FAULTS)                                           \
    X(STANDBY,              S_(START_CONNECT) | S_(READY) | S_(CLOSED) | S_(STANDBY)) \
    X(WAIT,                 S_(START_CONNECT) | S_(STANDBY) | S_(CLOSED) | S_(READY)) \
    X(CLOSED,               0)
/* clang-format on */

enum msgr_conn_state {
#define MSGR_CONN_STATE_ENUM_(name, next) MSGR_CONN_##name,
    MSGR_CONN_STATES(MSGR_CONN_STATE_ENUM_)
#undef MSGR_CONN_STATE_ENUM_
    MSGR_CONN_NSTATES
};

#define S_(name) (1u << MSGR_CONN_##name)
/* Where any live state may go on a fault, a stop or a reuse. */
#define FAULTS                                                                 \
    (S_(START_CONNECT) | S_(WAIT) | S_(STANDBY) | S_(CLOSED) | S_(READY))

/* The name of a state ("READY"). */
const char *msgr__conn_state_name(int state);
/* Allowed-next bitmask of a state. */
unsigned msgr__conn_state_next(int state);

#endif
