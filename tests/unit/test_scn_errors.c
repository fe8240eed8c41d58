/*
 * Every error the scenario front end can report: each case is a small file,
 * the line and column the first error must point at, and a fragment of its
 * message. Also: all errors of a file are reported, in source order, and
 * the cap.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scn/scn.h"

#define N3 "node osd.[0..2] policy lossless_peer\n"

struct error_case {
    const char *src;
    uint32_t line, col;
    const char *msg;
};

/* clang-format off */
static const struct error_case cases[] = {
    /* lexer */
    {N3 "at 0 start all \\", 2, 16, "'\\' at the end of the file"},
    {N3 "at 0 start \\ all", 2, 12, "stray '\\'"},
    {"scenario \"open\n", 1, 10, "unterminated string"},
    {"scenario \"" "0123456789012345678901234567890123456789012345678901234567890123"
     "0123456789012345678901234567890123456789012345678901234567890123"
     "0123456789012345678901234567890123456789012345678901234567890123"
     "0123456789012345678901234567890123456789012345678901234567890123"
     "0123456789012345678901234567890123456789012345678901234567890123"
     "0123456789012345678901234567890123456789012345678901234567890123"
     "0123456789012345678901234567890123456789012345678901234567890123"
     "0123456789012345678901234567890123456789012345678901234567890123\"\n",
     1, 10, "string too long"},
    {N3 "at 0 start \x01osd.0\n", 2, 12, "unexpected control character 0x01"},
    {"-> osd.0\n", 1, 1, "expected a statement, got '->'"},

    /* statements */
    {"sede 3\n", 1, 1, "unknown statement 'sede' (did you mean 'seed'?)"},
    {"frobnicate\n", 1, 1, "unknown statement 'frobnicate'"},
    {N3 "kill osd.0\n", 2, 1, "'kill' starts an action: it needs a time"},
    {N3 "osd.0 send osd.1\n", 2, 1, "'osd.0' starts an action"},
    {N3 "at 0 start all\nseed 3\n", 3, 1, "'seed' is a header statement"},
    {N3 "at 0 start all\nbreak osd.0 at hello fault\n", 3, 1,
     "must be a timeline action"},
    {"seed 1\nseed 2\n", 2, 1, "'seed' given twice (first at line 1)"},
    {"scenario \"a\"\nscenario \"b\"\n", 2, 1, "'scenario' given twice"},
    {"stack sim\nstack sim\n", 2, 1, "'stack' given twice"},
    {"duration 1s\nduration 2s\n", 2, 1, "'duration' given twice"},
    {"workers 1\nworkers 2\n", 2, 1, "'workers' given twice"},
    {"scenario title\n", 1, 10, "expected a quoted title"},
    {"seed -1\n", 1, 6, "expected a seed (a whole number), got '-1'"},
    {"seed 1.5\n", 1, 6, "expected a seed (a whole number)"},
    {"seed 99999999999999999999\n", 1, 6, "expected a seed"},
    {"seed\n", 1, 5, "expected a seed (a whole number), got the end of the line"},
    {"seed 1 2\n", 1, 8, "unexpected '2' after the seed"},
    {"stack sym\n", 1, 7, "unknown stack 'sym' (did you mean 'sim'?)"},
    {"duration 0\n", 1, 10, "the duration must be longer than 0"},
    {"workers 0\n", 1, 9, "a worker count must be between 1 and 64"},
    {"workers 65\n", 1, 9, "between 1 and 64"},

    /* values */
    {N3 "at 250 start all\n", 2, 4, "expected a time like 1.5s or +100ms, got '250'"},
    {N3 "at soon start all\n", 2, 4, "expected a time like 1.5s or +100ms, got 'soon'"},
    {N3 "at 1mss start all\n", 2, 4, "unknown unit 'mss' in '1mss'"},
    {N3 "at 1mss start all\n", 2, 4, "(did you mean 'ms'?)"},
    {N3 "at 1.5ns start all\n", 2, 4, "'1.5ns' is finer than one nanosecond"},
    {N3 "at 99999999999m start all\n", 2, 4, "'99999999999m' is too large"},
    {N3 "at 1.0000000001s start all\n", 2, 4, "expected a time"},
    {N3 "at 0 osd.0 send osd.1 size 4096\n", 2, 28,
     "expected a size like 4KiB, got '4096' (add a unit: B KiB MiB GiB)"},
    {N3 "at 0 osd.0 send osd.1 size 4KB\n", 2, 28,
     "unknown unit 'KB' in '4KB'; expected a size like 4KiB (did you mean 'KiB'?)"},
    {N3 "at 0 osd.0 send osd.1 size 0.3B\n", 2, 28, "finer than one byte"},
    {N3 "at 0 osd.0 send osd.1 size 2GiB\n", 2, 23, "more than 1GiB"},
    {N3 "at 0 bandwidth osd.0 -> osd.1 100\n", 2, 31,
     "expected a bandwidth like 100Mbit, got '100'"},
    {N3 "at 0 bandwidth osd.0 -> osd.1 0Mbit\n", 2, 31, "a bandwidth must be above 0"},
    {N3 "at 0 drop osd.0 -> osd.1 150%\n", 2, 26, "probability '150%' is above 100%"},
    {N3 "at 0 drop osd.0 -> osd.1 1.5\n", 2, 26, "above 100% (write a percentage with '%')"},
    {N3 "at 0 drop osd.0 -> osd.1 0.0000001\n", 2, 26, "finer than one part per million"},
    {N3 "at 0 drop osd.0 -> osd.1 often\n", 2, 26,
     "expected a probability like 30% or 0.3, got 'often'"},
    {N3 "at 0 osd.0 send osd.1 rate 100\n", 2, 28, "expected a rate like 100/s, got '100'"},
    {N3 "at 0 osd.0 send osd.1 rate 0/s\n", 2, 28, "a rate must be above 0"},
    {N3 "at 0 osd.0 send osd.1 rate 0.0001/s\n", 2, 28, "finer than 0.001/s"},
    {N3 "at 0 osd.0 send osd.1 rate 99999999999999999/s\n", 2, 28, "is too large"},
    {N3 "at 0 osd.0 send osd.1 count 0\n", 2, 29, "a message count must be between 1"},
    {N3 "at 0 osd.0 send osd.1 every 0\n", 2, 29, "'every' must be longer than 0"},

    /* node sets */
    {N3 "at 0 start osd\n", 2, 12, "expected a node like osd.3"},
    {N3 "at 0 start osdd.1\n", 2, 12,
     "unknown entity type 'osdd' in 'osdd.1' (one of mon, osd, mds, mgr, client) (did you mean 'osd'?)"},
    {N3 "at 0 start verylongtypename.1\n", 2, 12, "unknown entity type 'verylongtypename'"},
    {N3 "at 0 start osd.[0-2]\n", 2, 12, "bad range 'osd.[0-2]'"},
    {N3 "at 0 start osd.[2..0]\n", 2, 12, "empty range 'osd.[2..0]'"},
    {"node osd.[0..100000] policy lossless_peer\n", 1, 6, "is too large"},
    {N3 "at 0 start osd.a/b\n", 2, 12, "bad node id in 'osd.a/b'"},
    {N3 "at 0 start osd.0,,osd.1\n", 2, 12, "empty item in node list"},
    {N3 "at 0 start osd.9\n", 2, 12, "unknown node 'osd.9' (not declared with 'node')"},
    {"node mon.alpha policy lossless_peer\nat 0 start mon.alpah\n", 2, 12,
     "unknown node 'mon.alpah' (not declared with 'node') (did you mean 'mon.alpha'?)"},
    {N3 "at 0 start mon.*\n", 2, 12, "node set 'mon.*' matches no declared node"},
    {"at 0 start all\n", 1, 12, "node set 'all' matches no declared node"},
    {N3 "at 0 start osd.[1..5]\n", 2, 12, "node 'osd.3' of range 'osd.[1..5]' is not declared"},
    {N3 "node osd.1 policy lossy_client\n", 2, 6, "node 'osd.1' declared twice (first at line 1)"},
    {"node osd.* policy lossless_peer\n", 1, 6, "'osd.*' cannot declare nodes"},
    {"node all policy lossless_peer\n", 1, 6, "'all' cannot declare nodes"},
    {"node osd.[0..1] policy lossless_peer addr v2:10.0.0.1:6800\n", 1, 43,
     "'addr' gives one node's address"},
    {"node osd.0 policy lossless_peer addr 10.0.0.1\n", 1, 38, "expected an address like"},
    {"node osd.0 policy lossless_peer addr v2:10.0.0.300:1\n", 1, 38, "expected an address"},
    {"node osd.0 policy lossless_peer addr [::1:1\n", 1, 38, "expected an address"},
    {"node osd.0 policy lossless_peer addr 1.2.3.4:99999\n", 1, 38, "expected an address"},
    {"node osd.0 policy lossless_peer workers 100\n", 1, 41, "between 1 and 64"},
    {"node osd.0 policy lossy_clent\n", 1, 19,
     "unknown policy 'lossy_clent' (did you mean 'lossy_client'?)"},
    {"node osd.0 lossy_client\n", 1, 12, "expected 'policy', got 'lossy_client'"},
    {"node osd.0 policy lossy_client extra\n", 1, 32, "unexpected 'extra' after the node declaration"},

    /* link, policy, config */
    {N3 "link default\n", 2, 13, "expected link options"},
    {N3 "link default latency 1ms latency 2ms\n", 2, 26, "'latency' given twice"},
    {N3 "link default latncy 1ms\n", 2, 14, "unknown link option 'latncy' (did you mean 'latency'?)"},
    {N3 "link osd.0 osd.1 latency 1ms\n", 2, 12, "expected '->' or '<->', got 'osd.1'"},
    {N3 "policy osd.0 <-> osd.1 lossy_client\n", 2, 14, "this is one-way: use '->'"},
    {N3 "config osd.0 keepalive_intervall 1s\n", 2, 14,
     "unknown config key 'keepalive_intervall' (did you mean 'keepalive_interval'?)"},
    {N3 "config osd.0 keepalive_interval 10\n", 2, 33, "expected a duration like 250ms, got '10'"},
    {N3 "config osd.0 throttle_bytes 10\n", 2, 29, "expected a size like 4KiB"},
    {N3 "config osd.0 throttle_messages 1s\n", 2, 32, "expected a number (a whole number), got '1s'"},
    {N3 "config osd.0 crc maybe\n", 2, 18, "unknown value for 'crc' (on or off) 'maybe'"},
    {N3 "config osd.0 crc on off\n", 2, 21, "unexpected 'off' after the value"},

    /* actions */
    {N3 "at 0 dorp osd.0 -> osd.1 30%\n", 2, 6, "unknown fault 'dorp' (did you mean 'drop'?)"},
    {N3 "at 0 stat all\n", 2, 6, "unknown action 'stat' (did you mean 'start'?)"},
    {N3 "at 0\n", 2, 5, "expected an action, got the end of the line"},
    {N3 "at 0 osd.0\n", 2, 11, "expected what the node does"},
    {N3 "at 0 osd.0 sned osd.1\n", 2, 12, "unknown node action 'sned' (did you mean 'send'?)"},
    {N3 "at 0 osd.0 send osd.1 cuont 3\n", 2, 23,
     "unexpected 'cuont' in 'send' (expected count, size, every, rate or priority) (did you mean 'count'?)"},
    {N3 "at 0 osd.0 send osd.1 count 1 count 2\n", 2, 31, "'count' given twice"},
    {N3 "at 0 osd.0 send osd.1 every 1ms rate 5/s\n", 2, 33, "'every' and 'rate' cannot both"},
    {N3 "at 0 osd.0 send osd.1 rate 5/s every 1ms\n", 2, 32, "'every' and 'rate' cannot both"},
    {N3 "at 0 osd.0 send osd.1 priority 300\n", 2, 32, "a priority (0..255"},
    {N3 "at 0 osd.0 bind 1.2.3.4:5 extra\n", 2, 27, "unexpected 'extra' after the address"},
    {N3 "at 0 osd.0 connect osd.1 osd.2\n", 2, 26, "unexpected 'osd.2' after the node set"},
    {N3 "at 0 osd.0 mark_down_all osd.1\n", 2, 26, "unexpected 'osd.1' after 'mark_down_all'"},
    {N3 "at 0 restart osd.0 same_nonse\n", 2, 20, "unexpected 'same_nonse' after 'restart'"},
    {N3 "at 0 kill osd.0 prob 5%\n", 2, 17, "'prob' does not apply to 'kill' (it takes for)"},
    {N3 "at 0 kill osd.0 soon\n", 2, 17, "unexpected 'soon' after 'kill' (expected for)"},
    {N3 "at 0 reset osd.0 <-> osd.1 for 1s for 2s\n", 2, 35, "'for' given twice"},
    {N3 "at 0 reset osd.0 <-> osd.1 for 0\n", 2, 32, "'for' must be longer than 0"},
    {N3 "at 0 blackhole osd.0 -> osd.1 type zero\n", 2, 36, "expected a message type like 0x7f00"},
    {N3 "at 0 blackhole osd.0 -> osd.1 type 70000\n", 2, 36, "expected a message type"},
    {N3 "at 0 pause osd.0\n", 2, 6, "'pause' needs 'for T'"},
    {N3 "at 0 drop osd.0 -> osd.1\n", 2, 6, "'drop' needs a probability"},
    {N3 "at 0 drop osd.0 -> osd.1 for 1s\n", 2, 6, "'drop' needs a probability"},
    {N3 "at 0 drop osd.0 -> osd.1 5% prob 5%\n", 2, 29, "'prob' does not apply to 'drop'"},
    {N3 "at 0 corrupt osd.0 -> osd.1\n", 2, 6, "'corrupt' needs 'prob P'"},
    {N3 "at 0 delay osd.0 -> osd.1 1ms jitter 1ms type 3\n", 2, 42, "'type' does not apply to 'delay'"},
    {N3 "at 0 partition osd.0 osd.1\n", 2, 22, "expected '|', '->' or '<->', got 'osd.1'"},
    {N3 "at 0 drop osd.0 - osd.1 1%\n", 2, 17, "expected '->' or '<->', got '-'"},
    {N3 "at 0 heal dorp\n", 2, 11,
     "expected a fault kind or a node set after 'heal', got 'dorp' (did you mean 'drop'?)"},
    {N3 "at 0 drop osd.0 -> osd.1 1%\nat 1s heal drop osd.0 osd.1\n", 3, 23,
     "unexpected 'osd.1' after 'heal'"},
    {N3 "at 0 chaos all rate 1/s\n", 2, 16, "expected 'kinds', got 'rate'"},
    {N3 "at 0 chaos all kinds drop,rest rate 1/s\n", 2, 22,
     "unknown fault kind 'rest' in 'drop,rest' (did you mean 'reset'?)"},
    {N3 "at 0 chaos all kinds\n", 2, 21, "expected fault kinds like drop,reset"},
    {N3 "at 0 chaos all kinds drop rate 1/s from 5s until 2s\n", 2, 22,
     "chaos 'until' must be after its 'from'"},
    {N3 "at 0 chaos all kinds drop rate 1/s soon\n", 2, 36, "unexpected 'soon' after 'chaos'"},

    /* timeline */
    {N3 "at +1s start all\n", 2, 4, "relative time '+...' before any absolute 'at'"},
    {N3 "at 1s start all\nat +17592186044415s kill osd.0\n", 3, 4, "is too large"},
    {"duration 18000000000s\n" N3 "at 10000000000s start all\nat +10000000000s kill osd.0\n",
     4, 4, "time overflows"},
    {"node osd.[0..9999] policy lossless_peer\nnode mon.a policy lossless_peer\n", 2, 6,
     "too many nodes (10000 at most)"},
    {N3 "every 1s from 5s until 2s osd.0 keepalive osd.1\n", 2, 7, "'until' is before 'from'"},
    {N3 "every 0 osd.0 keepalive osd.1\n", 2, 7, "the period of 'every' must be longer than 0"},
    {N3 "at 61s kill osd.0\n", 2, 4, "time 61s is after the end of the run (duration 60s, the default)"},
    {"duration 1.5s\n" N3 "at 1.75s kill osd.0\n", 3, 4,
     "time 1.75s is after the end of the run (duration 1.5s)"},
    {"duration 10s\n" N3 "every 1s until 20s osd.0 keepalive osd.1\n", 3, 7,
     "'until' 20s is after the end of the run"},
    {"duration 10s\n" N3 "at 0 chaos all kinds drop rate 1/s from 11s\n", 3, 6,
     "chaos 'from' 11s is after the end"},
    {"duration 10s\n" N3 "at 0 chaos all kinds drop rate 1/s until 12s\n", 3, 6,
     "chaos 'until' 12s is after the end"},
    {"duration 10s\n" N3 "expect state osd.0 -> osd.1 open at 10.5s\n", 3, 1,
     "expectation time 10.5s is after the end"},

    /* heal */
    {N3 "at 1s heal\n", 2, 7, "nothing to heal: no fault could be active at 1s"},
    {N3 "at 1s drop osd.0 -> osd.1 1%\nat 2s heal partition\n", 3, 7,
     "nothing to heal: no partition fault could be active at 2s"},
    {N3 "at 1s drop osd.0 -> osd.1 1% for 500ms\nat 2s heal drop\n", 3, 7,
     "no drop fault could be active at 2s"},
    {N3 "at 3s drop osd.0 -> osd.1 1%\nat 2s heal drop\n", 3, 7, "no drop fault could be active"},
    {N3 "at 2s heal drop\nat 2s drop osd.0 -> osd.1 1%\n", 2, 7, "no drop fault could be active"},
    {N3 "at 1s drop osd.0 -> osd.1 1%\nat 2s heal osd.2\n", 3, 7,
     "no fault touching osd.2 could be active at 2s"},
    {N3 "on osd.0 reset heal kill\n", 2, 16, "nothing to heal: no kill fault anywhere in the scenario"},
    {N3 "at 0 chaos osd.0 kinds drop rate 1/s from 5s\nat 2s heal drop\n", 3, 7,
     "no drop fault could be active at 2s"},

    /* breakpoints and release */
    {N3 "break osd.0 at hello\n", 2, 21, "expected a breakpoint action (fault, stop, block or stall)"},
    {N3 "break osd.0 at hello freeze\n", 2, 22, "unknown breakpoint action 'freeze'"},
    {N3 "break osd.0 at helo fault\n", 2, 16, "unknown protocol step 'helo' (did you mean 'hello'?)"},
    {N3 "break osd.0 hello fault\n", 2, 13, "expected 'at', got 'hello'"},
    {N3 "break osd.0 at hello round 0 fault\n", 2, 28, "a round must be between 1"},
    {N3 "break osd.0 at hello fault now\n", 2, 28, "unexpected 'now' after the breakpoint action"},
    {N3 "at 1s release osd.0 at banner\n", 2, 7, "'release' without a matching 'break osd.0 at banner"},
    {N3 "break osd.0 at banner fault\nat 1s release osd.0 at banner\n", 3, 7,
     "only block and stall wait for a release"},
    {N3 "break osd.0 -> osd.1 at banner block\nat 1s release osd.0 -> osd.2 at banner\n", 3, 7,
     "'release' without a matching 'break osd.0 -> osd.2 at banner"},
    {N3 "break osd.0 at banner block\nat 1s release osd.0 at hello\n", 3, 7, "without a matching"},
    {N3 "at 1s release osd.0 at banner now\n", 2, 31, "unexpected 'now' after the step"},

    /* triggers */
    {N3 "on osd.0 conect kill osd.1\n", 2, 10, "expected an event"},
    {N3 "on osd.0 conect kill osd.1\n", 2, 10, "(did you mean 'connect'?)"},
    {N3 "on osd.0 -> osd.1 state sleeping kill osd.1\n", 2, 25, "unknown connection state 'sleeping'"},
    {N3 "on osd.0 -> osd.1 open kill osd.1\n", 2, 19, "expected 'state', got 'open'"},
    {N3 "on osd.0 delivered 0 from osd.1 kill osd.1\n", 2, 20, "a message count must be between 1"},
    {N3 "on osd.0 delivered 5 osd.1 kill osd.1\n", 2, 22, "expected 'from', got 'osd.1'"},
    {N3 "on osd.0 breakpoint client_ident kill osd.1\n", 2, 1,
     "no 'break' on osd.0 at client_ident for this trigger to wait for"},
    {N3 "on osd.0 connect\n", 2, 17, "expected an action, got the end of the line"},

    /* expectations */
    {N3 "expect delivred osd.0 -> osd.1 all\n", 2, 8,
     "unknown expectation 'delivred' (did you mean 'delivered'?)"},
    {N3 "expect no state osd.0 -> osd.1 open\n", 2, 11, "expected 'event' after 'expect no'"},
    {N3 "expect delivered osd.0 -> osd.1\n", 2, 32, "expected 'all exactly_once in_order'"},
    {N3 "expect delivered osd.0 -> osd.1 in_ordr\n", 2, 33,
     "unknown delivery property 'in_ordr' (did you mean 'in_order'?)"},
    {N3 "expect delivered osd.0 <-> osd.1 all\n", 2, 24, "this is one-way: use '->'"},
    {N3 "expect delivered osd.0 -> osd.1 >= 101%\n", 2, 36, "above 100%"},
    {N3 "expect state osd.0 -> osd.1 up\n", 2, 29, "unknown connection state 'up'"},
    {N3 "expect reconnects osd.0 -> osd.1 = 1\n", 2, 34, "expected a comparison (== != < <= > >=), got '='"},
    {N3 "expect resets osd.0 -> osd.1 == many\n", 2, 33, "expected a count (a whole number)"},
    {N3 "expect event osd.0 disconnect\n", 2, 20, "unknown dispatcher event 'disconnect'"},
    {N3 "expect latency osd.0 -> osd.1 p0 < 1ms\n", 2, 31, "expected a percentile like p99 or max, got 'p0'"},
    {N3 "expect latency osd.0 -> osd.1 p101 < 1ms\n", 2, 31, "expected a percentile"},
    {N3 "expect latency osd.0 -> osd.1 median < 1ms\n", 2, 31, "expected a percentile"},
    {N3 "expect latency osd.0 -> osd.1 p99 < 1\n", 2, 37, "expected a duration like 250ms"},
    {N3 "expect connections osd.0 -> osd.1 alive == 1\n", 2, 35,
     "unknown connection object state 'alive'"},
    {N3 "expect frames osd.0 -> osd.1 banner sent == 1\n", 2, 30, "'banner' is a socket step, not a frame tag"},
    {N3 "expect frames osd.0 -> osd.1 hello got == 1\n", 2, 36, "expected 'sent' or 'received', got 'got'"},
    {N3 "expect frames osd.0 -> osd.1 helo sent == 1\n", 2, 30, "unknown frame tag 'helo' (did you mean 'hello'?)"},
    {N3 "expect trace_hash xyz\n", 2, 19, "expected a hexadecimal fingerprint"},
    {N3 "expect trace_hash\n", 2, 18, "expected a hexadecimal fingerprint, got the end of the line"},
    {N3 "expect trace_hash abc def\n", 2, 23, "unexpected 'def' after the fingerprint"},
    {N3 "expect connections osd.0 == 1 at 1s later\n", 2, 37, "unexpected 'later' after the expectation"},
};
/* clang-format on */

static void
test_each_error(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct error_case *ec = &cases[i];
        struct scn_plan *p = NULL;
        struct scn_diags d;
        int rc = scn_compile("e.scn", ec->src, strlen(ec->src), &p, &d);
        bool ok = rc == -EINVAL && p == NULL && d.n >= 1 &&
                  d.v[0].loc.line == ec->line && d.v[0].loc.col == ec->col &&
                  strstr(d.v[0].msg, ec->msg) != NULL;
        if (!ok) {
            failures++;
            fprintf(stderr, "case %zu: want %u:%u '%s'\n  got rc %d:\n", i,
                    ec->line, ec->col, ec->msg, rc);
            scn_diags_print(&d, "  e.scn", stderr);
        }
        scn_plan_free(p);
    }
    assert_int_equal(failures, 0);
}

/* A NUL byte is data, not the end of the text: an error, and the lexer
 * moves on (it once looped forever on one). */
static void
test_nul_bytes(void **state)
{
    (void)state;
    static const char word[] = "seed 1\0 2\n";
    static const char str[] = "scenario \"a\0b\"\n";
    struct scn_plan *p = NULL;
    struct scn_diags d;
    assert_int_equal(scn_compile("e.scn", word, sizeof(word) - 1, &p, &d),
                     -EINVAL);
    assert_int_equal(d.v[0].loc.col, 7);
    assert_non_null(strstr(d.v[0].msg, "unexpected control character 0x00"));
    assert_int_equal(scn_compile("e.scn", str, sizeof(str) - 1, &p, &d),
                     -EINVAL);
    assert_int_equal(d.v[0].loc.col, 12);
    assert_non_null(strstr(d.v[0].msg, "control character 0x00 in a string"));
}

/* Every broken line is reported, not only the first, in source order
 * (check errors found after parse errors are sorted in). */
static void
test_all_errors_reported(void **state)
{
    (void)state;
    const char *src = N3
        "at 0 start osd.7\n"          /* check: line 2 */
        "at 1s dorp osd.0 -> osd.1\n" /* parse: line 3 */
        "at 2s kill osd.0 for 3\n"    /* parse: line 4 */
        "expect trace_hash nothex\n"; /* parse: line 5 */
    struct scn_plan *p = NULL;
    struct scn_diags d;
    assert_int_equal(scn_compile("e.scn", src, strlen(src), &p, &d), -EINVAL);
    assert_int_equal(d.total, 4);
    assert_int_equal(d.n, 4);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(d.v[i].loc.line, i + 2);

    char buf[2048];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    assert_non_null(f);
    scn_diags_print(&d, "x/e.scn", f);
    fclose(f);
    assert_non_null(strstr(buf, "x/e.scn:2:12: error: unknown node 'osd.7'"));
    assert_non_null(strstr(buf, "x/e.scn:3:7: error: unknown fault 'dorp' "
                                "(did you mean 'drop'?)\n"));
}

static void
test_error_cap(void **state)
{
    (void)state;
    char src[8192] = "";
    for (int i = 0; i < SCN_MAX_DIAGS + 10; i++)
        strcat(src, "bogus\n");
    struct scn_plan *p = NULL;
    struct scn_diags d;
    assert_int_equal(scn_compile("e.scn", src, strlen(src), &p, &d), -EINVAL);
    assert_int_equal(d.n, SCN_MAX_DIAGS);
    assert_int_equal(d.total, SCN_MAX_DIAGS + 10);
    char buf[16384];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    scn_diags_print(&d, "e.scn", f);
    fclose(f);
    assert_non_null(strstr(buf, "e.scn: 10 more errors not shown\n"));
}

static void
test_file_errors(void **state)
{
    (void)state;
    struct scn_plan *p = NULL;
    struct scn_diags d;
    assert_int_equal(scn_compile_file("/nonexistent/x.scn", &p, &d), -ENOENT);
    assert_null(p);
    assert_int_equal(d.total, 0);

    char path[] = "/tmp/test_scn_errorsXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("node osd.0 policy lossless_peer\nat 0 start osd.0\n", f);
    fclose(f);
    assert_int_equal(scn_compile_file(path, &p, &d), 0);
    assert_non_null(p);
    assert_string_equal(p->path, path);
    assert_int_equal(p->n_timeline, 1);
    scn_plan_free(p);
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_error),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_file_errors),
    };
    return cmocka_run_group_tests_name("scn_errors", tests, NULL, NULL);
}
